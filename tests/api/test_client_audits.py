"""Client audit logs in the `.csv.zip` export: a form with an `audit` question gets
`<formId> - audit.csv`, every selected submission's `audit.csv` (as ODK Collect writes it)
merged with its instance ID, the known columns in a fixed order; over HTTP on the real
services, with the files uploaded over OpenRosa."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import httpx
from tests.aggregation_forms import catch_up, subscribe
from tests.api.test_forms import XML, project, upload
from tests.api.test_openrosa import OR
from tests.conftest import Person

from odk_mcp.bootstrap import Container
from odk_mcp.services.aggregation.exports.writers.client_audits import HEADER

FORM_ID = "audited"
XFORM = f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:odk="http://www.opendatakit.org/xforms">
  <h:head><h:title>Audited</h:title>
    <model>
      <instance><data id="{FORM_ID}" version="1"><q/><meta><instanceID/><audit/></meta></data></instance>
      <bind nodeset="/data/q" type="string"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()"/>
      <bind nodeset="/data/meta/audit" type="binary" odk:location-priority="balanced"/>
    </model>
  </h:head>
  <h:body><input ref="/data/q"><label>Q</label></input></h:body>
</h:html>""".encode()

# What Collect writes: the plain log, and one with location and change tracking, a BOM, columns
# in another order, an unknown column and a blank line.
PLAIN_LOG = (
    b"event,node,start,end\nform start,,1700000000000,\nquestion,/data/q,1700000001000,1700000005000\n"
)
TRACKED_LOG = (
    "\ufeffevent,node,start,end,latitude,longitude,accuracy,user,change-reason,old-value,new-value,extra\n"
    'question,/data/q,1700000100000,1700000104000,-1.28,36.81,12.5,amina,"typo, fixed",helo,hello,x\n'
    "\n"
    "form save,,1700000106000,,,,,amina,,,,\n"
).encode()


def instance(instance_id: str, with_audit: bool) -> bytes:
    audit = "<audit>audit.csv</audit>" if with_audit else ""
    return (
        f'<data id="{FORM_ID}" version="1"><q>hello</q>'
        f"<meta><instanceID>{instance_id}</instanceID>{audit}</meta></data>"
    ).encode()


async def submit(
    client: httpx.AsyncClient, admin: Person, pid: int, instance_id: str, log: bytes | None
) -> None:
    files: dict[str, tuple[str, bytes, str]] = {
        "xml_submission_file": ("submission.xml", instance(instance_id, log is not None), "text/xml")
    }
    if log is not None:
        files["audit.csv"] = ("audit.csv", log, "text/csv")
    response = await client.post(f"/v1/projects/{pid}/submission", files=files, headers={**OR, **admin.auth})
    assert response.status_code == 201, response.text


async def audited_project(client: httpx.AsyncClient, container: Container, admin: Person) -> int:
    await subscribe(container)
    pid = await project(client, admin)
    assert (await upload(client, admin, pid, XFORM, XML, publish="true")).status_code == 200
    await submit(client, admin, pid, "uuid:plain", PLAIN_LOG)
    await submit(client, admin, pid, "uuid:none", None)
    await submit(client, admin, pid, "uuid:tracked", TRACKED_LOG)
    await catch_up(container)
    return pid


async def export(client: httpx.AsyncClient, admin: Person, pid: int, **params: Any) -> zipfile.ZipFile:
    response = await client.get(
        f"/v1/projects/{pid}/forms/{FORM_ID}/submissions.csv.zip", params=params, headers=admin.auth
    )
    assert response.status_code == 200, response.text
    return zipfile.ZipFile(io.BytesIO(response.content))


def merged(archive: zipfile.ZipFile) -> list[list[str]]:
    return list(csv.reader(io.StringIO(archive.read(f"{FORM_ID} - audit.csv").decode())))


async def test_the_logs_are_merged_with_their_instance_ids_in_central_s_columns(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await audited_project(client, container, admin)
    archive = await export(client, admin, pid)
    assert archive.namelist() == [
        f"{FORM_ID}.csv",
        f"{FORM_ID} - audit.csv",
        "media/audit.csv",
        "media/audit.csv",
    ]
    rows = merged(archive)
    assert (
        rows[0]
        == list(HEADER)
        == [
            "instance ID",
            "event",
            "node",
            "start",
            "end",
            "latitude",
            "longitude",
            "accuracy",
            "old-value",
            "new-value",
            "user",
            "change-reason",
        ]
    )
    # Newest submission first, as the export's rows; a submission without a log adds nothing.
    assert rows[1:] == [
        [
            "uuid:tracked",
            "question",
            "/data/q",
            "1700000100000",
            "1700000104000",
            "-1.28",
            "36.81",
            "12.5",
            "helo",
            "hello",
            "amina",
            "typo, fixed",
        ],
        ["uuid:tracked", "form save", "", "1700000106000", "", "", "", "", "", "", "amina", ""],
        ["uuid:plain", "form start", "", "1700000000000", "", "", "", "", "", "", "", ""],
        ["uuid:plain", "question", "/data/q", "1700000001000", "1700000005000", "", "", "", "", "", "", ""],
    ]


async def test_the_merged_log_follows_the_filter_and_stays_without_attachments(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid = await audited_project(client, container, admin)
    archive = await export(client, admin, pid, attachments="false", **{"$filter": "__id eq 'uuid:plain'"})
    assert archive.namelist() == [f"{FORM_ID}.csv", f"{FORM_ID} - audit.csv"]
    assert [r[0] for r in merged(archive)[1:]] == ["uuid:plain", "uuid:plain"]
    # Labels take the Python writer instead of PostgreSQL's COPY: the same member.
    labelled = await export(client, admin, pid, labels="true", attachments="false")
    assert merged(labelled) == merged(await export(client, admin, pid, attachments="false"))
    # No log among the selected submissions: no member, as in Central.
    none = await export(client, admin, pid, **{"$filter": "__id eq 'uuid:none'"})
    assert none.namelist() == [f"{FORM_ID}.csv"]
