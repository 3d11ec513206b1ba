"""Queries of the forms service: forms joined with their current or draft definition."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, select, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from odk_mcp.services.forms.adapters.tables import form_attachments, form_defs, forms, keys, projects

DEF_COLUMNS = (
    form_defs.c.id.label("def_id"),
    form_defs.c.name,
    form_defs.c.version,
    form_defs.c.md5,
    form_defs.c.key_id,
    form_defs.c.published_at,
)


def form_select(draft: bool = False, def_id: Any = None) -> Select[Any]:
    """Forms with one definition: the published one (else the draft), or the draft."""
    if def_id is not None:
        join_on = form_defs.c.id == def_id
    elif draft:
        join_on = form_defs.c.id == forms.c.draft_def_id
    else:
        join_on = form_defs.c.id == forms.c.current_def_id
        join_on = join_on | (forms.c.current_def_id.is_(None) & (form_defs.c.id == forms.c.draft_def_id))
    return (
        select(
            forms.c.id,
            forms.c.project_id,
            forms.c.xml_form_id,
            forms.c.state,
            forms.c.created_at,
            forms.c.updated_at,
            forms.c.deleted_at,
            forms.c.current_def_id,
            forms.c.draft_def_id,
            *DEF_COLUMNS,
        )
        .select_from(forms)
        .join(projects, and_(projects.c.id == forms.c.project_id, projects.c.deleted_at.is_(None)))
        .outerjoin(form_defs, join_on)
    )


async def live_form(
    conn: AsyncConnection, project_id: int, xml_form_id: str, *, draft: bool = False
) -> RowMapping | None:
    stmt = form_select(draft=draft).where(
        forms.c.project_id == project_id, forms.c.xml_form_id == xml_form_id, forms.c.deleted_at.is_(None)
    )
    row: RowMapping | None = (await conn.execute(stmt)).mappings().first()
    return row


async def lock_form(conn: AsyncConnection, project_id: int, xml_form_id: str) -> RowMapping | None:
    stmt = (
        select(forms)
        .where(
            forms.c.project_id == project_id, forms.c.xml_form_id == xml_form_id, forms.c.deleted_at.is_(None)
        )
        .with_for_update()
    )
    return (await conn.execute(stmt)).mappings().first()


async def def_row(conn: AsyncConnection, def_id: int) -> RowMapping | None:
    row: RowMapping | None = (
        (await conn.execute(select(form_defs).where(form_defs.c.id == def_id))).mappings().first()
    )
    return row


async def attachments_of(conn: AsyncConnection, def_id: int) -> list[RowMapping]:
    stmt = (
        select(form_attachments)
        .where(form_attachments.c.form_def_id == def_id)
        .order_by(form_attachments.c.name)
    )
    return list((await conn.execute(stmt)).mappings().all())


_KEY_ID = text(
    "INSERT INTO forms.keys (public) VALUES (:public)"
    " ON CONFLICT (public) DO UPDATE SET public = EXCLUDED.public RETURNING id"
)


async def key_id(conn: AsyncConnection, public: str) -> int:
    """The id of this public key, stored on first use."""
    return int((await conn.execute(_KEY_ID, {"public": public})).scalar_one())


async def keys_of_form(conn: AsyncConnection, form_id: int) -> list[RowMapping]:
    """The keys of a form's published versions, oldest first."""
    used = select(form_defs.c.key_id).where(
        form_defs.c.form_id == form_id, form_defs.c.published_at.is_not(None)
    )
    stmt = select(keys.c.id, keys.c.public, keys.c.managed, keys.c.hint).where(keys.c.id.in_(used))
    return list((await conn.execute(stmt.order_by(keys.c.id))).mappings().all())
