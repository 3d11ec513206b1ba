"""Encrypted submissions (a form with a `base64RsaPublicKey`), over HTTP on the real services:
a Collect-like client encrypts for real (tests/odk_encryption.py); the server keeps the
envelope verbatim and every encrypted part as an attachment, so the private key's holder gets
back exactly what was typed; OData, exports and webhooks-facing snapshots say `notDecrypted`
or `missingEncryptedFormData` as ODK Central does; a malformed envelope is refused with nothing
stored."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from lxml import etree
from sqlalchemy import text
from tests.aggregation_forms import catch_up, subscribe
from tests.api.test_forms import XML, project, upload
from tests.api.test_openrosa import OR
from tests.conftest import Person
from tests.odk_encryption import KeyPair, decrypt_file, encrypt_submission

from odk_mcp.bootstrap import Container
from odk_mcp.services.submissions.bulk_reading import read_chunk

FORM_ID = "secret_survey"


def xform(public_key: str) -> bytes:
    return f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
  <h:head><h:title>Secret survey</h:title>
    <model>
      <instance>
        <data id="{FORM_ID}" version="2"><name/><age/><photo/><meta><instanceID/></meta></data>
      </instance>
      <bind nodeset="/data/name" type="string"/>
      <bind nodeset="/data/age" type="int" constraint=". &lt; 120"/>
      <bind nodeset="/data/photo" type="binary"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()"/>
      <submission base64RsaPublicKey="{public_key}" method="form-data-post"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/name"><label>Name</label></input>
    <input ref="/data/age"><label>Age</label></input>
    <upload ref="/data/photo" mediatype="image/*"><label>Photo</label></upload>
  </h:body>
</h:html>""".encode()


def plaintext(instance_id: str, name: str = "Amina", age: str = "250") -> bytes:
    return (
        f'<data id="{FORM_ID}" version="2"><name>{name}</name><age>{age}</age><photo>face.jpg</photo>'
        f"<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


async def setup(client: httpx.AsyncClient, container: Container, admin: Person) -> tuple[int, KeyPair]:
    await subscribe(container)
    pair = KeyPair.new()
    pid = await project(client, admin)
    response = await upload(client, admin, pid, xform(pair.public_base64), XML, publish="true")
    assert response.status_code == 200, response.text
    return pid, pair


def post(client: httpx.AsyncClient, admin: Person, pid: int, envelope: bytes, files: dict[str, bytes]) -> Any:
    parts: dict[str, tuple[str, bytes, str]] = {
        "xml_submission_file": ("submission.xml", envelope, "text/xml")
    }
    for name, content in files.items():
        parts[name] = (name, content, "application/octet-stream")
    return client.post(f"/v1/projects/{pid}/submission", files=parts, headers={**OR, **admin.auth})


def base(pid: int) -> str:
    return f"/v1/projects/{pid}/forms/{FORM_ID}"


async def odata_system(client: httpx.AsyncClient, admin: Person, pid: int) -> dict[str, Any]:
    feed = (await client.get(f"{base(pid)}.svc/Submissions", headers=admin.auth)).json()
    [row] = feed["value"]
    return dict(row)


async def test_an_encrypted_submission_is_kept_whole_and_decrypts_to_what_was_typed(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, pair = await setup(client, container, admin)
    photo = b"\xff\xd8\xff" + bytes(range(256)) * 40
    secret = encrypt_submission(
        pair, FORM_ID, "2", "uuid:enc-1", plaintext("uuid:enc-1"), {"face.jpg": photo}
    )
    response = await post(client, admin, pid, secret.envelope, secret.files)
    assert response.status_code == 201, response.text

    one = f"{base(pid)}/submissions/uuid:enc-1"
    assert (await client.get(f"{one}.xml", headers=admin.auth)).content == secret.envelope
    listed = (await client.get(f"{one}/attachments", headers=admin.auth)).json()
    assert sorted((a["name"], a["exists"]) for a in listed) == [
        ("face.jpg.enc", True),
        ("submission.xml.enc", True),
    ]
    # Only the private key's holder reads it: byte for byte what the respondent gave.
    key = etree.fromstring(secret.envelope).findtext("{http://opendatakit.org/submissions}base64EncryptedKey")
    assert key is not None
    stored_xml = (await client.get(f"{one}/attachments/submission.xml.enc", headers=admin.auth)).content
    stored_photo = (await client.get(f"{one}/attachments/face.jpg.enc", headers=admin.auth)).content
    assert stored_xml == secret.files["submission.xml.enc"]
    assert decrypt_file(pair, key, "uuid:enc-1", 1, stored_xml) == plaintext("uuid:enc-1")
    assert decrypt_file(pair, key, "uuid:enc-1", 0, stored_photo) == photo

    # Nothing readable, so nothing flagged and no rule judged (age 250 breaks the constraint,
    # but the server cannot see it); what a decryption needs is kept with the version.
    async with container.db.read() as conn:
        stored = (
            (await conn.execute(text("SELECT data, flags, findings, encryption FROM submissions.versions")))
            .mappings()
            .one()
        )
    assert stored["data"] == {} and stored["flags"] == [] and stored["findings"] == []
    assert stored["encryption"]["key"] == key and stored["encryption"]["file"] == "submission.xml.enc"
    assert stored["encryption"]["signature"]

    await catch_up(container)
    row = await odata_system(client, admin, pid)
    assert row["__id"] == "uuid:enc-1"
    assert row["__system"]["status"] == "notDecrypted"
    assert (row["__system"]["attachmentsExpected"], row["__system"]["attachmentsPresent"]) == (2, 2)
    assert row["name"] is None and row["age"] is None
    filtered = (
        await client.get(
            f"{base(pid)}.svc/Submissions",
            params={"$filter": "__system/status eq 'notDecrypted'"},
            headers=admin.auth,
        )
    ).json()
    assert [r["__id"] for r in filtered["value"]] == ["uuid:enc-1"]

    exported = await client.get(f"{base(pid)}/submissions.csv", headers=admin.auth)
    assert exported.status_code == 200, exported.text
    header, first = list(csv.reader(io.StringIO(exported.text)))[:2]
    assert first[header.index("Status")] == "not decrypted"
    assert first[header.index("name")] == "" and first[header.index("KEY")] == "uuid:enc-1"

    # A byte-identical resend changes nothing; the same instanceID with other bytes is 409.
    again = await post(client, admin, pid, secret.envelope, secret.files)
    assert again.status_code == 201
    other = encrypt_submission(pair, FORM_ID, "2", "uuid:enc-1", plaintext("uuid:enc-1", "Bo"), {})
    conflict = await post(client, admin, pid, other.envelope, other.files)
    assert conflict.status_code == 409

    # Plain and encrypted submissions side by side (a form can lose its key in a new version):
    # `__system/status eq null` keeps the readable ones, for OData and summaries alike.
    plain = await client.post(
        f"{base(pid)}/submissions", content=plaintext("uuid:plain"), headers={**admin.auth, **XML}
    )
    assert plain.status_code == 200, plain.text
    await catch_up(container)
    readable = {"$filter": "__system/status eq null"}
    feed = (await client.get(f"{base(pid)}.svc/Submissions", params=readable, headers=admin.auth)).json()
    assert [r["__id"] for r in feed["value"]] == ["uuid:plain"]
    summary = (await client.get(f"{base(pid)}/summary", params=readable, headers=admin.auth)).json()
    assert summary["submissions"] == 1


async def test_a_split_upload_is_missing_its_data_until_the_encrypted_file_arrives(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, pair = await setup(client, container, admin)
    secret = encrypt_submission(
        pair, FORM_ID, "2", "uuid:enc-2", plaintext("uuid:enc-2"), {"face.jpg": b"jpeg"}
    )
    first = await post(client, admin, pid, secret.envelope, {"face.jpg.enc": secret.files["face.jpg.enc"]})
    assert first.status_code == 201, first.text
    await catch_up(container)
    row = await odata_system(client, admin, pid)
    assert row["__system"]["status"] == "missingEncryptedFormData"
    assert row["__system"]["attachmentsPresent"] == 1
    exported = await client.get(f"{base(pid)}/submissions.csv", headers=admin.auth)
    header, line = list(csv.reader(io.StringIO(exported.text)))[:2]
    assert line[header.index("Status")] == "missing encrypted form data"

    rest = await client.post(
        f"{base(pid)}/submissions/uuid:enc-2/attachments/submission.xml.enc",
        content=secret.files["submission.xml.enc"],
        headers={**admin.auth, "Content-Type": "application/octet-stream"},
    )
    assert rest.status_code == 200, rest.text
    await catch_up(container)
    row = await odata_system(client, admin, pid)
    assert row["__system"]["status"] == "notDecrypted"
    assert row["__system"]["attachmentsPresent"] == 2


async def test_malformed_envelopes_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, pair = await setup(client, container, admin)
    secret = encrypt_submission(pair, FORM_ID, "2", "uuid:enc-3", plaintext("uuid:enc-3"), {})
    no_key = secret.envelope.replace(b"<base64EncryptedKey>", b"<other>").replace(
        b"</base64EncryptedKey>", b"</other>"
    )
    no_file = secret.envelope.replace(b"<encryptedXmlFile>submission.xml.enc</encryptedXmlFile>", b"")
    traversal = encrypt_submission(
        pair, FORM_ID, "2", "uuid:enc-4", plaintext("uuid:enc-4"), {"../../etc/passwd": b"x"}
    )
    for envelope, files, reason in (
        (no_key, secret.files, "base64EncryptedKey"),
        (no_file, secret.files, "encryptedXmlFile"),
        (traversal.envelope, traversal.files, "unusable file"),
    ):
        response = await post(client, admin, pid, envelope, files)
        assert response.status_code == 400, response.text
        assert 'nature="error"' in response.text and reason in response.text
    async with container.db.read() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM submissions.submissions"))).scalar_one()
    assert count == 0


def test_an_import_refuses_encrypted_documents_with_a_reason() -> None:
    pair = KeyPair.new()
    secret = encrypt_submission(pair, FORM_ID, "2", "uuid:enc-5", plaintext("uuid:enc-5"), {})
    reading = read_chunk([secret.envelope], 0, FORM_ID, 1_000_000, {})
    assert reading.failure is not None and reading.documents == []
    assert "encrypted" in reading.failure.message and reading.failure.details["field"] == "encrypted"


async def test_an_encrypted_form_names_its_key_as_central_does(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, pair = await setup(client, container, admin)
    form = (await client.get(base(pid), headers=admin.auth)).json()
    assert isinstance(form["keyId"], int)
    keys = (await client.get(f"{base(pid)}/submissions/keys", headers=admin.auth)).json()
    assert keys == [{"id": form["keyId"], "public": pair.public_base64, "managed": False, "hint": None}]
    # A plain form has none; a key that is not base64 makes the XForm invalid (Collect could
    # not encrypt to it), and nothing is stored.
    plain = await upload(client, admin, pid, plaintext_form("plain_one"), XML, publish="true")
    assert plain.status_code == 200 and plain.json()["keyId"] is None
    assert (
        await client.get(f"/v1/projects/{pid}/forms/plain_one/submissions/keys", headers=admin.auth)
    ).json() == []
    bad = xform("not a key!").replace(FORM_ID.encode(), b"bad_key_form")
    refused = await upload(client, admin, pid, bad, XML, publish="true")
    assert refused.status_code == 400 and refused.json()["code"] == 400.41, refused.text
    assert (await client.get(f"/v1/projects/{pid}/forms/bad_key_form", headers=admin.auth)).status_code == 404


def plaintext_form(form_id: str) -> bytes:
    return xform("").replace(FORM_ID.encode(), form_id.encode()).replace(b' base64RsaPublicKey=""', b"")
