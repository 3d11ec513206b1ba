"""The synthetic household survey of `odk_mcp.services.analytics.synthetic` as a real XForm,
its rows as submission XML, and helpers to load them through the HTTP API."""

from __future__ import annotations

from typing import Any

import httpx
import polars as pl

from odk_mcp.services.analytics.synthetic import FORM_ID, survey_fields, survey_xform
from tests.conftest import Person

XML = {"Content-Type": "application/xml"}


def submission_xml(row: dict[str, Any]) -> bytes:
    values = "".join(
        f"<{f.name}>{'' if row.get(f.path) is None else row[f.path]}</{f.name}>" for f in survey_fields()
    )
    return (
        f'<data id="{FORM_ID}" version="1">{values}'
        f"<meta><instanceID>{row['instance_id']}</instanceID></meta></data>"
    ).encode()


async def publish_survey(client: httpx.AsyncClient, admin: Person, name: str = "Survey") -> int:
    response = await client.post("/v1/projects", json={"name": name}, headers=admin.auth)
    assert response.status_code == 200, response.text
    pid = int(response.json()["id"])
    response = await client.post(
        f"/v1/projects/{pid}/forms",
        content=survey_xform(),
        params={"publish": "true"},
        headers={**admin.auth, **XML},
    )
    assert response.status_code == 200, response.text
    return pid


async def submit_rows(client: httpx.AsyncClient, auth: dict[str, str], pid: int, frame: pl.DataFrame) -> None:
    for row in frame.iter_rows(named=True):
        response = await client.post(
            f"/v1/projects/{pid}/forms/{FORM_ID}/submissions",
            content=submission_xml(row),
            headers={**auth, **XML},
        )
        assert response.status_code == 200, response.text
