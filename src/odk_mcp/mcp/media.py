"""Short-lived download links for submission media and finished exports, so files never travel
inside tool results (and assistants' API tokens, which REST refuses, are not needed to fetch them).

A link seals (Fernet: encrypted and authenticated, with its creation time) who asked and which
file; it is refused after `mcp_media_link_seconds`. When it is used, the actor is loaded again
and the owning service checks that actor's rights on the file as for any download, so a user
who lost access cannot use a link minted earlier.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation.exports import (
    ExportFormat,
    ExportsService,
    content_disposition,
    file_chunks,
)
from odk_mcp.services.submissions import SubmissionsService
from odk_mcp.services.users import UsersService

ROUTE = "/v1/mcp/media/{token}"
EXPORT_ROUTE = "/v1/mcp/exports/{token}"


class MediaLinks:
    def __init__(self, key: Callable[[], bytes], public_url: str, ttl_seconds: int) -> None:
        self._key = key  # read on first use: building the server does no I/O
        self._fernet_cache: Fernet | None = None
        self._base = public_url.rstrip("/")
        self.ttl_seconds = ttl_seconds

    @property
    def _fernet(self) -> Fernet:
        if self._fernet_cache is None:
            self._fernet_cache = Fernet(self._key())
        return self._fernet_cache

    def _seal(self, route: str, claim: dict[str, Any]) -> str:
        token = self._fernet.encrypt(json.dumps(claim).encode()).decode()
        return f"{self._base}{route.format(token=token)}"

    def link(self, actor: Actor, project_id: int, xml_form_id: str, instance_id: str, name: str) -> str:
        return self._seal(
            ROUTE,
            {"k": "media", "a": actor.id, "p": project_id, "f": xml_form_id, "i": instance_id, "n": name},
        )

    def export_link(self, actor: Actor, handle: str) -> str:
        return self._seal(EXPORT_ROUTE, {"k": "export", "a": actor.id, "h": handle})

    def open(self, token: str, kind: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode(), ttl=self.ttl_seconds))
        except (InvalidToken, ValueError):
            data = {}
        if len(token) > 4096 or data.get("k") != kind:
            raise Problem(problems.NOT_FOUND, "This download link is not valid or has expired.")
        return data


async def _actor(users: UsersService, claim: dict[str, Any]) -> Actor:
    actor = await users.authenticator.actor(int(claim["a"]))
    if actor is None:
        raise Problem(problems.NOT_FOUND, "This download link is not valid or has expired.")
    return actor


def media_endpoint(links: MediaLinks, users: UsersService, submissions: SubmissionsService) -> Any:
    async def download(request: Request) -> Response:
        claim = links.open(request.path_params["token"], "media")
        actor = await _actor(users, claim)
        records = submissions.records
        found = await records.attachment(actor, claim["p"], claim["f"], claim["i"], False, claim["n"])
        headers = {"ETag": f'"{found.md5}"', "Cache-Control": "private, no-store"}
        if found.size is not None:
            headers["Content-Length"] = str(found.size)
        chunks: Iterator[bytes] = records.blob_chunks(found.sha256)
        return StreamingResponse(chunks, media_type=found.content_type, headers=headers)

    return download


def export_endpoint(links: MediaLinks, users: UsersService, exports: ExportsService) -> Any:
    async def download(request: Request) -> Response:
        claim = links.open(request.path_params["token"], "export")
        actor = await _actor(users, claim)
        job, path = await exports.jobs.file(actor, claim["h"])
        headers = {
            "Content-Length": str(job.row["file_size"]),
            "Content-Disposition": content_disposition(job.row["file_name"]),
            "Cache-Control": "private, no-store",
        }
        media_type = ExportFormat(job.row["format"]).media_type
        return StreamingResponse(file_chunks(path), media_type=media_type, headers=headers)

    return download
