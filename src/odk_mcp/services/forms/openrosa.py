"""OpenRosa form discovery for ODK Collect and Enketo: the form list and manifests.

Documents are built with lxml (never by string concatenation), so form names and ids
with XML special characters are escaped correctly.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from lxml import etree
from sqlalchemy import func, select

from odk_mcp.kernel import problems
from odk_mcp.kernel.access import Authorizer
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.kernel.tokens import hash_token
from odk_mcp.services.forms.adapters import store
from odk_mcp.services.forms.adapters.tables import form_attachments, forms
from odk_mcp.services.forms.catalog import FormAccess
from odk_mcp.services.forms.datasets import DatasetAttachments, link_datasets
from odk_mcp.services.forms.views import AttachmentView, FormView

XFORMS_LIST = "http://openrosa.org/xforms/xformsList"
MANIFEST = "http://openrosa.org/xforms/xformsManifest"


@dataclass(frozen=True)
class ListedForm:
    form: FormView
    has_media: bool


def _child(parent: etree._Element, tag: str, text: str) -> None:
    etree.SubElement(parent, tag).text = text


def form_list_xml(listed: list[ListedForm], base_url: str, draft: bool = False, query: str = "") -> bytes:
    """`<xforms>` with one `<xform>` per form; `manifestUrl` only for forms expecting media.
    `query` ends every URL (a public link's `?st=…`, which its client must send again)."""
    root = etree.Element(f"{{{XFORMS_LIST}}}xforms", nsmap={None: XFORMS_LIST})  # type: ignore[dict-item]
    for item in listed:
        form = item.form
        path = f"{base_url}/projects/{form.project_id}/forms/{form.xml_form_id}"
        if draft:
            path += "/draft"
        xform = etree.SubElement(root, f"{{{XFORMS_LIST}}}xform")
        _child(xform, f"{{{XFORMS_LIST}}}formID", form.xml_form_id)
        _child(xform, f"{{{XFORMS_LIST}}}name", form.name or form.xml_form_id)
        _child(xform, f"{{{XFORMS_LIST}}}version", form.version or "")
        _child(xform, f"{{{XFORMS_LIST}}}hash", f"md5:{form.hash}")
        _child(
            xform,
            f"{{{XFORMS_LIST}}}downloadUrl",
            f"{base_url}/projects/{form.project_id}/forms/{form.xml_form_id}"
            + (("/draft.xml") if draft else ".xml")
            + query,
        )
        if item.has_media:
            _child(xform, f"{{{XFORMS_LIST}}}manifestUrl", path + "/manifest" + query)
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=True))


def manifest_xml(
    attachments: list[AttachmentView], attachments_url: str, datasets_url: str | None = None, query: str = ""
) -> bytes:
    """`<manifest>` with one `<mediaFile>` per attachment whose content is present; entity
    lists are `type="entityList"`, with the `integrityUrl` offline entities check."""
    root = etree.Element(f"{{{MANIFEST}}}manifest", nsmap={None: MANIFEST})  # type: ignore[dict-item]
    for attachment in attachments:
        if not attachment.exists:
            continue
        media = etree.SubElement(root, f"{{{MANIFEST}}}mediaFile")
        if attachment.dataset:
            media.set("type", "entityList")
        _child(media, f"{{{MANIFEST}}}filename", attachment.name)
        _child(media, f"{{{MANIFEST}}}hash", f"md5:{attachment.md5}")
        _child(media, f"{{{MANIFEST}}}downloadUrl", f"{attachments_url}/{attachment.name}{query}")
        if attachment.dataset and datasets_url is not None:
            dataset = quote(attachment.name.removesuffix(".csv"), safe="")
            _child(media, f"{{{MANIFEST}}}integrityUrl", f"{datasets_url}/{dataset}/integrity{query}")
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=True))


class Discovery:
    """Which forms and attachments a device sees."""

    def __init__(
        self, db: Database, authorizer: Authorizer, datasets: DatasetAttachments | None = None
    ) -> None:
        self._db = db
        self._access = FormAccess(authorizer)
        self._datasets = datasets

    async def form_list(self, actor: Actor, project_id: int, form_id: str | None = None) -> list[ListedForm]:
        """Open, published forms the actor may read."""
        if actor.anonymous:
            raise Problem(
                problems.AUTHENTICATION_REQUIRED, headers={"WWW-Authenticate": 'Basic charset="UTF-8"'}
            )
        media = (
            select(func.count())
            .where(form_attachments.c.form_def_id == forms.c.current_def_id)
            .scalar_subquery()
            .label("media")
        )
        stmt = (
            store.form_select()
            .add_columns(media)
            .where(
                forms.c.project_id == project_id,
                forms.c.deleted_at.is_(None),
                forms.c.current_def_id.is_not(None),
                forms.c.state == "open",
            )
            .order_by(forms.c.xml_form_id)
        )
        if form_id is not None:
            stmt = stmt.where(forms.c.xml_form_id == form_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [
            ListedForm(FormView.from_row(r), r["media"] > 0)
            for r in rows
            if self._access.can_read(actor, project_id, r["xml_form_id"], r["state"])
        ]

    async def draft_by_token(self, token: str, project_id: int, xml_form_id: str) -> ListedForm:
        """The draft a draft-testing token opens (404.4 when the token is stale or wrong)."""
        async with self._db.read() as conn:
            row = await store.live_form(conn, project_id, xml_form_id, draft=True)
            if row is None or row["draft_def_id"] is None:
                raise Problem(problems.DRAFT_ACCESS_FAILED)
            stored = (
                await conn.execute(select(forms.c.draft_token_hash).where(forms.c.id == row["id"]))
            ).scalar_one()
            if stored != hash_token(token):
                raise Problem(problems.DRAFT_ACCESS_FAILED)
            attachments = await store.attachments_of(conn, row["draft_def_id"])
        return ListedForm(FormView.from_row(row), bool(attachments))

    async def draft_attachments(self, token: str, project_id: int, xml_form_id: str) -> list[AttachmentView]:
        listed = await self.draft_by_token(token, project_id, xml_form_id)
        async with self._db.read() as conn:
            assert listed.form.def_id is not None
            rows = await store.attachments_of(conn, listed.form.def_id)
        views = [AttachmentView.from_row(r) for r in rows]
        return await link_datasets(self._datasets, project_id, views)

    async def draft_xml(self, token: str, project_id: int, xml_form_id: str) -> bytes:
        listed = await self.draft_by_token(token, project_id, xml_form_id)
        assert listed.form.def_id is not None
        async with self._db.read() as conn:
            definition = await store.def_row(conn, listed.form.def_id)
        assert definition is not None
        return bytes(definition["xml"])
