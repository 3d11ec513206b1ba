"""XLSForm conversions are bounded in time and survive a crash: an upload accepted before the
server died is converted when the server starts again."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, text
from tests.api.test_forms import MD, XLSFORM_MD, project, upload
from tests.conftest import Person

from odk_mcp.bootstrap import Container
from odk_mcp.infra.blobs import FileBlobStore
from odk_mcp.services.forms.adapters.tables import conversions


@pytest.mark.parametrize("settings_overrides", [{"conversion_timeout_seconds": 0.001}])
async def test_a_conversion_past_its_time_limit_is_422_1_and_stores_no_form(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid = await project(client, admin)
    response = await upload(client, admin, pid, XLSFORM_MD.encode(), MD)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 422.1
    assert (await client.get(f"/v1/projects/{pid}/forms", headers=admin.auth)).json() == []
    async with container.db.read() as conn:
        statuses = (await conn.execute(select(conversions.c.status))).scalars().all()
    assert statuses == ["failed"]


async def test_an_upload_interrupted_by_a_crash_is_converted_on_restart(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid = await project(client, admin)
    # What a crash leaves behind: the stored upload and a conversion that was running.
    ref = FileBlobStore(container.settings.blobs).put(XLSFORM_MD.encode())
    conversion_id = uuid.uuid4()
    params: dict[str, Any] = {
        "publish": True,
        "ignoreWarnings": False,
        "fallbackId": None,
        "targetForm": None,
    }
    async with container.db.transaction() as conn:
        await conn.execute(
            insert(conversions).values(
                id=conversion_id,
                project_id=pid,
                actor_id=admin.id,
                source_sha256=ref.sha256,
                source_type="text/markdown",
                params=params,
                status="running",
                attempts=1,
                created_at=text("now() - interval '1 hour'"),
                updated_at=text("now() - interval '1 hour'"),
            )
        )
    resumed = await container.forms.uploads.resume_unfinished()
    assert resumed == 1
    await container.forms.uploads.wait_idle()
    status = await client.get(f"/v1/projects/{pid}/form-conversions/{conversion_id}", headers=admin.auth)
    assert status.json()["status"] == "done"
    form = await client.get(f"/v1/projects/{pid}/forms/md_form", headers=admin.auth)
    assert form.status_code == 200
    assert form.json()["publishedAt"] is not None
    # A second start finds nothing left to do: work is claimed once.
    assert await container.forms.uploads.resume_unfinished() == 0


async def test_a_fresh_running_conversion_is_not_stolen_by_another_process(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid = await project(client, admin)
    ref = FileBlobStore(container.settings.blobs).put(XLSFORM_MD.encode())
    async with container.db.transaction() as conn:
        await conn.execute(
            insert(conversions).values(
                id=uuid.uuid4(),
                project_id=pid,
                actor_id=admin.id,
                source_sha256=ref.sha256,
                source_type="text/markdown",
                params={"publish": False, "ignoreWarnings": False, "fallbackId": None, "targetForm": None},
                status="running",
                attempts=1,
                created_at=text("now()"),
                updated_at=text("now()"),
            )
        )
    assert await container.forms.uploads.resume_unfinished() == 0
