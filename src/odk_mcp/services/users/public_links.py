"""Public links (ODK Central's "public access links"): anonymous respondents of one form.

A link is an actor of type `public_link` holding the `pub-link` role on its form (read the
open form, create submissions) and a session that never expires; its token travels as
`?st={token}` (Enketo's web forms; as in Central, the `/v1/key/{token}/…` prefix is only for
app users).
As for app users, a sealed copy of the token lets the listing show it again while the link is
active. Deleting the link, or ending its session (`DELETE /v1/sessions/{token}`, Central's way
to revoke a link but keep it listed), stops the token at once.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.engine import RowMapping

from odk_mcp.events import record_audit
from odk_mcp.infra.sealing import Sealer
from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.db import Database
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.users.access import AccessPolicy
from odk_mcp.services.users.accounts import check_name, create_session
from odk_mcp.services.users.actor_cache import ActorCache, changing
from odk_mcp.services.users.adapters import store
from odk_mcp.services.users.adapters.tables import actors, assignments, public_links
from odk_mcp.services.users.domain import roles
from odk_mcp.services.users.ports import Catalogue
from odk_mcp.services.users.views import ActorView, PublicLinkView

creators = actors.alias("creators")


class PublicLinks:
    def __init__(
        self,
        db: Database,
        policy: AccessPolicy,
        catalogue: Catalogue,
        sealer: Sealer,
        actors: ActorCache | None = None,
    ) -> None:
        self._db = db
        self._actors = actors if actors is not None else ActorCache(0)
        self._policy = policy
        self._catalogue = catalogue
        self._sealer = sealer

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
        return PublicLinkView(ActorView.from_row(row, token=token), bool(row["once"]), creator)

    async def create(
        self, actor: Actor, project_id: int, xml_form_id: str, display_name: str, once: bool
    ) -> PublicLinkView:
        await self._check(actor, "public_link.create", project_id, xml_form_id)
        name = check_name(display_name)
        async with self._db.transaction() as conn:
            row = (
                (
                    await conn.execute(
                        actors.insert()
                        .values(
                            type="public_link",
                            display_name=name,
                            project_id=project_id,
                            created_by=actor.id if actor.id > 0 else None,
                            created_at=func.now(),
                        )
                        .returning(actors)
                    )
                )
                .mappings()
                .one()
            )
            await conn.execute(
                public_links.insert().values(
                    actor_id=row["id"], project_id=project_id, xml_form_id=xml_form_id, once=once
                )
            )
            session = await create_session(conn, row["id"], ttl=None)
            await conn.execute(
                update(actors)
                .where(actors.c.id == row["id"])
                .values(token_sealed=self._sealer.seal(session.token))
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
        return PublicLinkView(ActorView.from_row(row, token=session.token), once)

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
            await conn.execute(
                update(actors).where(actors.c.id == link_id).values(deleted_at=func.now(), token_sealed=None)
            )
            await store.end_sessions(conn, link_id)
            await conn.execute(assignments.delete().where(assignments.c.actor_id == link_id))
            await record_audit(
                conn,
                actor,
                "public_link.delete",
                "actor",
                link_id,
                project_id=project_id,
                details={"xmlFormId": xml_form_id},
            )
