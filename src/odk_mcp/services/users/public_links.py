"""Public links (ODK Central's "public access links"): anonymous respondents of one form.

A link is an actor of type `public_link` holding the `pub-link` role on its form (read the
open form, create submissions) and a session that never expires; its token travels as
`?st={token}` (Enketo's web forms; as in Central, the `/v1/key/{token}/…` prefix is only for
app users). As for app users, a sealed copy of the token lets the listing show it again while the link is
active. Deleting the link, or ending its session (`DELETE /v1/sessions/{token}`, Central's way
to revoke a link but keep it listed), stops the token at once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from odk_mcp.events import record_audit
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.accounts import check_name
from odk_mcp.services.users.actor_cache import changing
from odk_mcp.services.users.adapters import store
from odk_mcp.services.users.adapters.tables import actors, public_links
from odk_mcp.services.users.app_users import TokenActors, create_token_actor, retire_token_actor
from odk_mcp.services.users.domain import roles
from odk_mcp.services.users.views import ActorView, PublicLinkView

creators = actors.alias("creators")


class PublicLinks(TokenActors):
    async def _check(self, actor: Actor, verb: str, project_id: int, xml_form_id: str) -> None:
        self._policy.require(actor, verb, project_id, xml_form_id)
        if not await self._catalogue.form_exists(project_id, xml_form_id):
            raise Problem(problems.NOT_FOUND)

    async def list_links(self, actor: Actor, project_id: int, xml_form_id: str) -> list[PublicLinkView]:
        """The form's links, active ones first, newest first."""
        await self._check(actor, "public_link.list", project_id, xml_form_id)
        stmt = (
            select(
                actors,
                public_links.c.once,
                *[c.label(f"creator_{c.name}") for c in creators.c],
            )
            .join(public_links, public_links.c.actor_id == actors.c.id)
            .outerjoin(creators, creators.c.id == actors.c.created_by)
            .where(
                public_links.c.project_id == project_id,
                public_links.c.xml_form_id == xml_form_id,
                actors.c.deleted_at.is_(None),
            )
            .order_by(actors.c.token_sealed.is_(None), actors.c.created_at.desc(), actors.c.id.desc())
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [self._view(r) for r in rows]

    def _view(self, row: RowMapping) -> PublicLinkView:
        sealed = row["token_sealed"]
        creator = None
        if row["creator_id"] is not None:
            creator = ActorView.from_row({c.name: row[f"creator_{c.name}"] for c in creators.c})
        token = self._sealer.unseal(sealed) if sealed else None
        return PublicLinkView(ActorView.from_row(row, token=token), row["once"], creator)

    async def create(
        self, actor: Actor, project_id: int, xml_form_id: str, display_name: str, once: bool
    ) -> PublicLinkView:
        await self._check(actor, "public_link.create", project_id, xml_form_id)
        name = check_name(display_name)
        async with self._db.transaction() as conn:
            row, token = await create_token_actor(conn, actor, "public_link", name, project_id, self._sealer)
            await conn.execute(
                public_links.insert().values(
                    actor_id=row["id"], project_id=project_id, xml_form_id=xml_form_id, once=once
                )
            )
            await store.insert_assignment(conn, row["id"], roles.PUBLIC_LINK.id, project_id, xml_form_id)
            await record_audit(
                conn,
                actor,
                "public_link.create",
                "actor",
                row["id"],
                project_id=project_id,
                details={"xmlFormId": xml_form_id, "displayName": name, "once": once},
            )
        return PublicLinkView(ActorView.from_row(row, token=token), once)

    async def delete(self, actor: Actor, project_id: int, xml_form_id: str, link_id: int) -> None:
        await self._check(actor, "public_link.delete", project_id, xml_form_id)
        async with changing(self._db, self._actors) as conn:
            found = (
                await conn.execute(
                    select(public_links.c.actor_id)
                    .join(actors, actors.c.id == public_links.c.actor_id)
                    .where(
                        public_links.c.actor_id == link_id,
                        public_links.c.project_id == project_id,
                        public_links.c.xml_form_id == xml_form_id,
                        actors.c.deleted_at.is_(None),
                    )
                    .with_for_update()
                )
            ).first()
            if found is None:
                raise Problem(problems.NOT_FOUND)
            await retire_token_actor(conn, link_id)
            await record_audit(
                conn,
                actor,
                "public_link.delete",
                "actor",
                link_id,
                project_id=project_id,
                details={"xmlFormId": xml_form_id},
            )
