"""The synthetic household survey of `odk_mcp.services.analytics.synthetic` as a real XForm,
its rows as submission XML, and helpers to load them through the HTTP API."""

from __future__ import annotations

from typing import Any

import httpx
import polars as pl

from odk_mcp.services.analytics.synthetic import survey_fields
from tests.conftest import Person

XML = {"Content-Type": "application/xml"}
FORM_ID = "survey"


def survey_xform() -> bytes:
    fields = survey_fields()
    instance = "".join(f"<{f.name}/>" for f in fields)
    binds = "".join(f'<bind nodeset="/data/{f.name}" type="{f.type}"/>' for f in fields)
    body = []
    for f in fields:
        label = f"<label>{f.labels.get('default', f.name)}</label>"
        if f.choices:
            items = "".join(
                f"<item><label>{c.value}</label><value>{c.value}</value></item>" for c in f.choices
            )
            body.append(f'<select1 ref="/data/{f.name}">{label}{items}</select1>')
        else:
            body.append(f'<input ref="/data/{f.name}">{label}</input>')
    return f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head><h:title>Household survey</h:title>
    <model>
      <instance><data id="{FORM_ID}" version="1">{instance}<meta><instanceID/></meta></data></instance>
      {binds}<bind nodeset="/data/meta/instanceID" type="string" readonly="true()"/>
    </model>
  </h:head>
  <h:body>{"".join(body)}</h:body>
</h:html>""".encode()


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
