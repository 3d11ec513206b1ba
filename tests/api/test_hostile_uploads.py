"""Hostile form uploads: XML entity attacks, zip bombs dressed as XLSX, oversized and garbage
bodies, attachment names that try to leave the blob store. Each must be refused with the right
status and problem code, store nothing (no form, no definition, no attachment blob, an XLSForm
conversion recorded as failed), and leave the server answering normally afterwards."""

from __future__ import annotations

import io
import random
import struct
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import text
from tests.api.test_forms import MD, XLSFORM_MD, XLSX_TYPE, XML, project, upload, xform
from tests.conftest import Person

from odk_mcp.bootstrap import Container

XLS_TYPE = "application/vnd.ms-excel"
ZIP_MEMBER = "xl/worksheets/sheet1.xml"
BOMB_BYTES = 400 * 1024 * 1024  # uncompressed; the default limit is 300 MB
CHUNK = b"\0" * (1024 * 1024)

PASSWD_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE h:html [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
  <h:head><h:title>&xxe;</h:title>
    <model><instance><data id="simple" version="9"><q/></data></instance></model>
  </h:head>
  <h:body><input ref="/data/q"><label>&xxe;</label></input></h:body>
</h:html>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<data id="simple"/>"""

LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b']>\n<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">'
    + b'<h:head><h:title>&lol9;</h:title><model><instance><data id="simple" version="9"><q/></data>'
    + b"</instance></model></h:head><h:body/></h:html>"
)

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE h:html SYSTEM "http://127.0.0.1:9/xhtml.dtd">
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
  <h:head><h:title>External</h:title>
    <model><instance><data id="simple" version="9"><q/></data></instance></model>
  </h:head>
  <h:body/>
</h:html>"""

# The DOCTYPE pushed past the first few kilobytes by a comment, where a quick prefix scan stops.
LATE_DOCTYPE = (
    b'<?xml version="1.0"?>\n<!--'
    + b" padding" * 1024
    + b' -->\n<!DOCTYPE h:html SYSTEM "file:///etc/passwd">\n'
    + EXTERNAL_DTD.split(b"\n", 2)[2]
)

HOSTILE_XML = {
    "xxe-file": PASSWD_XXE,
    "xxe-parameter-entity": PARAMETER_ENTITY,
    "billion-laughs": LAUGHS,
    "external-dtd": EXTERNAL_DTD,
    "late-doctype": LATE_DOCTYPE,
    # The same attacks in UTF-16, where byte-level scans for "<!DOCTYPE" see nothing.
    "xxe-utf16": PASSWD_XXE.replace(b'version="1.0"?>', b'version="1.0" encoding="UTF-16"?>')
    .decode()
    .encode("utf-16"),
    "billion-laughs-utf16": LAUGHS.replace(b'version="1.0"?>', b'version="1.0" encoding="UTF-16"?>')
    .decode()
    .encode("utf-16"),
}


# -- what got stored -------------------------------------------------------------------------------
async def rows(container: Container) -> dict[str, Any]:
    async with container.db.read() as conn:
        forms = (await conn.execute(text("SELECT count(*) FROM forms.forms"))).scalar_one()
        defs = (await conn.execute(text("SELECT count(*) FROM forms.form_defs"))).scalar_one()
        drafts = (
            await conn.execute(text("SELECT count(*) FROM forms.forms WHERE draft_def_id IS NOT NULL"))
        ).scalar_one()
        present = (
            await conn.execute(
                text("SELECT count(*) FROM forms.form_attachments WHERE blob_sha256 IS NOT NULL")
            )
        ).scalar_one()
        conversions = (
            (await conn.execute(text("SELECT status, problem FROM forms.conversions ORDER BY created_at")))
            .mappings()
            .all()
        )
    return {
        "forms": forms,
        "defs": defs,
        "drafts": drafts,
        "attachments": present,
        "conversions": [dict(c) for c in conversions],
    }


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


async def assert_nothing_stored(container: Container) -> None:
    stored = await rows(container)
    assert (stored["forms"], stored["defs"], stored["attachments"]) == (0, 0, 0), stored
    assert all(c["status"] == "failed" for c in stored["conversions"]), stored["conversions"]


async def assert_still_serving(client: httpx.AsyncClient, admin: Person, pid: int) -> None:
    """A good XForm and a good XLSForm (through the conversion worker) still go through."""
    good = await upload(client, admin, pid, xform("1"), XML, publish="true")
    assert good.status_code == 200, good.text
    converted = await upload(client, admin, pid, XLSFORM_MD.encode(), MD, publish="true")
    assert converted.status_code == 200, converted.text
    listed = await client.get(f"/v1/projects/{pid}/forms", headers=admin.auth)
    assert {"md_form", "simple"} <= {f["xmlFormId"] for f in listed.json()}


def assert_problem(response: httpx.Response, status: int, code: float) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert "root:" not in response.text, "the content of /etc/passwd leaked into the answer"
    return body


# -- XML entity attacks ------------------------------------------------------------------------
@pytest.mark.parametrize("body", HOSTILE_XML.values(), ids=HOSTILE_XML.keys())
async def test_dtds_and_entities_are_refused_as_new_forms(
    client: httpx.AsyncClient, admin: Person, container: Container, body: bytes
) -> None:
    pid = await project(client, admin)
    response = await upload(client, admin, pid, body, XML)
    details = assert_problem(response, 400, 400.1)
    assert "DTD" in details["message"]
    await assert_nothing_stored(container)
    await assert_still_serving(client, admin, pid)


@pytest.mark.parametrize("body", HOSTILE_XML.values(), ids=HOSTILE_XML.keys())
async def test_dtds_and_entities_are_refused_as_drafts(
    client: httpx.AsyncClient, admin: Person, container: Container, body: bytes
) -> None:
    pid = await project(client, admin)
    assert (await upload(client, admin, pid, xform("1"), XML, publish="true")).status_code == 200
    before = await rows(container)
    response = await client.post(
        f"/v1/projects/{pid}/forms/simple/draft", content=body, headers={**admin.auth, **XML}
    )
    assert_problem(response, 400, 400.1)
    after = await rows(container)
    assert (after["forms"], after["defs"], after["drafts"]) == (1, before["defs"], 0)
    current = await client.get(f"/v1/projects/{pid}/forms/simple.xml", headers=admin.auth)
    assert current.content == xform("1")


# -- zip bombs -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """An "XLSX" of well under 1 MB whose sheet inflates to 400 MB of zeros, written in chunks."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open(ZIP_MEMBER, "w", force_zip64=True) as member:
            for _ in range(BOMB_BYTES // len(CHUNK)):
                member.write(CHUNK)
    data = path.read_bytes()
    assert len(data) < 1_000_000
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.getinfo(ZIP_MEMBER).file_size == BOMB_BYTES
    return data


PADDING = 32 * 1024 * 1024


def padded_xlsform(declared: int | None = None) -> bytes:
    """A real XLSForm whose survey sheet carries 32 MB of whitespace (it deflates to ~30 kB).

    With `declared`, the zip headers of that sheet claim it inflates to only that many bytes:
    the pre-check trusts declared sizes, so the reader must not trust them past that point."""
    book = Workbook()
    survey = book.active
    assert survey is not None
    survey.title = "survey"
    survey.append(["type", "name", "label"])
    survey.append(["text", "q", "Question"])
    settings = book.create_sheet("settings")
    settings.append(["form_id", "version"])
    settings.append(["padded", "1"])
    source = io.BytesIO()
    book.save(source)
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(source) as original,
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for info in original.infolist():
            content = original.read(info.filename)
            if info.filename != ZIP_MEMBER:
                archive.writestr(info.filename, content)
                continue
            head, tail = content.split(b"<sheetData>", 1)
            with archive.open(ZIP_MEMBER, "w") as member:
                member.write(head + b"<sheetData>")
                for _ in range(PADDING // len(CHUNK)):
                    member.write(b" " * len(CHUNK))
                member.write(tail)
    data = bytearray(buffer.getvalue())
    if declared is not None:
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
            info = archive.getinfo(ZIP_MEMBER)
            real = info.file_size
            local = info.header_offset
        # Uncompressed size: offset 22 in the local header, 24 in the central directory entry.
        assert struct.unpack_from("<I", data, local + 22)[0] == real
        struct.pack_into("<I", data, local + 22, declared)
        entry = data.index(b"PK\x01\x02")
        while bytes(data[entry + 46 : entry + 46 + len(ZIP_MEMBER)]) != ZIP_MEMBER.encode():
            entry = data.index(b"PK\x01\x02", entry + 4)
        assert struct.unpack_from("<I", data, entry + 24)[0] == real
        struct.pack_into("<I", data, entry + 24, declared)
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
            assert archive.getinfo(ZIP_MEMBER).file_size == declared
    return bytes(data)


async def refused_conversion(container: Container) -> dict[str, Any]:
    stored = await rows(container)
    assert (stored["forms"], stored["defs"]) == (0, 0), stored
    assert [c["status"] for c in stored["conversions"]] == ["failed"], stored["conversions"]
    problem: dict[str, Any] = stored["conversions"][0]["problem"]
    return problem


async def test_a_zip_bomb_disguised_as_xlsx_is_refused_before_inflating(
    client: httpx.AsyncClient, admin: Person, container: Container, zip_bomb: bytes
) -> None:
    pid = await project(client, admin)
    response = await upload(client, admin, pid, zip_bomb, {"Content-Type": XLSX_TYPE})
    body = assert_problem(response, 400, 400.15)
    assert "more than the 300000000 allowed" in body["details"]["error"]
    problem = await refused_conversion(container)
    assert problem["code"] == 400.15
    await assert_still_serving(client, admin, pid)


@pytest.mark.parametrize("content_type", [XLS_TYPE, "application/vnd.ms-excel.sheet.macroenabled.12"])
async def test_the_zip_bomb_under_other_spreadsheet_types_is_refused(
    client: httpx.AsyncClient, admin: Person, container: Container, zip_bomb: bytes, content_type: str
) -> None:
    pid = await project(client, admin)
    response = await upload(client, admin, pid, zip_bomb, {"Content-Type": content_type})
    assert_problem(response, 400, 400.15)
    assert (await refused_conversion(container))["code"] == 400.15
    await assert_still_serving(client, admin, pid)


async def test_a_zip_member_lying_about_its_size_is_refused(
    client: httpx.AsyncClient, admin: Person, container: Container
) -> None:
    pid = await project(client, admin)
    response = await upload(client, admin, pid, padded_xlsform(declared=1024), {"Content-Type": XLSX_TYPE})
    assert_problem(response, 400, 400.15)
    assert (await refused_conversion(container))["code"] == 400.15
    # The same workbook with honest headers converts: the lie alone is what got it refused.
    honest = await upload(client, admin, pid, padded_xlsform(), {"Content-Type": XLSX_TYPE}, publish="true")
    assert honest.status_code == 200, honest.text
    assert honest.json()["xmlFormId"] == "padded"
    await assert_still_serving(client, admin, pid)


# -- oversized bodies ------------------------------------------------------------------------
SMALL = {"max_form_bytes": 2048, "max_attachment_bytes": 2048}


async def chunks(total: int, size: int = 512) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"<" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("settings_overrides", [SMALL])
@pytest.mark.parametrize("content_type", ["application/xml", XLSX_TYPE, "text/markdown"])
async def test_an_oversized_upload_is_413_declared_or_streamed(
    client: httpx.AsyncClient, admin: Person, container: Container, content_type: str
) -> None:
    pid = await project(client, admin)
    url = f"/v1/projects/{pid}/forms"
    headers = {**admin.auth, "Content-Type": content_type}
    declared = await client.post(url, content=b"x" * 4096, headers=headers)
    body = assert_problem(declared, 413, 413.1)
    assert body["details"]["limit"] == 2048
    streamed_request = client.build_request("POST", url, content=chunks(64 * 1024), headers=headers)
    assert "content-length" not in streamed_request.headers
    assert_problem(await client.send(streamed_request), 413, 413.1)
    # A Content-Length that understates the body does not get it past the limit either.
    understated = client.build_request("POST", url, content=b"y" * 4096, headers=headers)
    understated.headers["Content-Length"] = "10"
    assert_problem(await client.send(understated), 413, 413.1)
    stored = await rows(container)
    assert (stored["forms"], stored["defs"], stored["conversions"]) == (0, 0, []), stored
    # Right at the limit is fine: the server still takes forms that fit.
    assert len(xform("1")) <= 2048
    ok = await upload(client, admin, pid, xform("1"), XML, publish="true")
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("settings_overrides", [SMALL])
async def test_an_oversized_draft_or_attachment_is_413(
    client: httpx.AsyncClient, admin: Person, container: Container, settings: Any
) -> None:
    pid = await project(client, admin)
    assert (await upload(client, admin, pid, xform("1"), XML)).status_code == 200
    base = f"/v1/projects/{pid}/forms/simple/draft"
    blobs_before = files_under(settings.blobs)
    draft = client.build_request("POST", base, content=chunks(8192), headers={**admin.auth, **XML})
    assert_problem(await client.send(draft), 413, 413.1)
    for content in (b"\x89PNG" * 1024, chunks(8192)):
        attachment = await client.post(
            base + "/attachments/logo.png",
            content=content,
            headers={**admin.auth, "Content-Type": "image/png"},
        )
        assert_problem(attachment, 413, 413.1)
    assert files_under(settings.blobs) == blobs_before
    stored = await rows(container)
    assert (stored["forms"], stored["defs"], stored["attachments"]) == (1, 1, 0), stored


# -- garbage instead of a spreadsheet ---------------------------------------------------------
GARBAGE = random.Random(20240611).randbytes(4096)  # noqa: S311 - reproducible noise, not crypto
LATIN1_CSV = "survey,type,name,label\n,text,caf\xe9,Caf\xe9 au lait\n".encode("latin-1")
LATIN1_MD = (
    "| survey |\n|  | type | name | label |\n|  | text | cafe | Caf\xe9 cr\xe8me |\n"
    "| settings |\n|  | form_id |\n|  | caf\xe9 |\n"
).encode("latin-1")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (GARBAGE, "text/csv"),
        (GARBAGE, "text/markdown"),
        (LATIN1_CSV, "text/csv"),
        (LATIN1_MD, "text/markdown"),
        (b"\xef\xbb\xbf\xff\xfe\x00\x00\xc3(\xa0\xa1", "text/csv; charset=utf-8"),
        (GARBAGE, XLSX_TYPE),
        (GARBAGE, XLS_TYPE),
    ],
    ids=["noise-csv", "noise-md", "latin1-csv", "latin1-md", "bad-utf8-csv", "noise-xlsx", "noise-xls"],
)
async def test_non_utf8_or_garbage_spreadsheets_are_400_15(
    client: httpx.AsyncClient, admin: Person, container: Container, body: bytes, content_type: str
) -> None:
    pid = await project(client, admin)
    response = await upload(client, admin, pid, body, {"Content-Type": content_type})
    details = assert_problem(response, 400, 400.15)["details"]
    assert details["error"]
    assert (await refused_conversion(container))["code"] == 400.15
    await assert_still_serving(client, admin, pid)


# -- attachment names ------------------------------------------------------------------------
TRAVERSALS = {
    "encoded-slashes": ("..%2F..%2F..%2Fetc%2Fpasswd", 404, 404.1),
    "slash": ("a/b", 404, 404.1),
    "dot-dot": ("%2E%2E", 400, 400.8),
    "encoded-backslashes": ("..%5C..%5C..%5Cetc%5Cpasswd", 400, 400.8),
    "backslash-prefix": ("%5Cetc%5Cpasswd", 400, 400.8),
    "nul": ("logo.png%00.txt", 400, 400.8),
    "newline": ("logo%0A.png", 400, 400.8),
    "too-long": ("a" * 300 + ".png", 400, 400.8),
    "not-expected": ("passwd", 404, 404.1),
}


@pytest.mark.parametrize(("name", "status", "code"), TRAVERSALS.values(), ids=TRAVERSALS.keys())
async def test_attachment_names_cannot_leave_the_blob_store(
    client: httpx.AsyncClient,
    admin: Person,
    container: Container,
    settings: Any,
    tmp_path: Path,
    name: str,
    status: int,
    code: float,
) -> None:
    pid = await project(client, admin)
    assert (await upload(client, admin, pid, xform("1"), XML)).status_code == 200
    everything_before = files_under(tmp_path)
    base = f"/v1/projects/{pid}/forms/simple/draft/attachments/"
    payload = b"root:x:0:0:root:/root:/bin/bash\n"
    response = await client.post(
        base + name, content=payload, headers={**admin.auth, "Content-Type": "text/plain"}
    )
    assert_problem(response, status, code)
    # Nothing was written anywhere: not in the blob store, not beside it.
    assert files_under(tmp_path) == everything_before
    assert not any(p.read_bytes() == payload for p in files_under(tmp_path))
    stored = await rows(container)
    assert stored["attachments"] == 0, stored
    for method in ("GET", "DELETE"):
        other = await client.request(method, base + name, headers=admin.auth)
        assert other.status_code in (400, 404), (method, other.text)
    # The real attachment still works.
    good = await client.post(
        base + "logo.png", content=b"\x89PNG", headers={**admin.auth, "Content-Type": "image/png"}
    )
    assert good.status_code == 200, good.text
    assert (await rows(container))["attachments"] == 1


# -- form ids that are not usable as a URL segment -------------------------------------------
BAD_FORM_IDS = ["../../etc/passwd", "a/b", "..", "a\\b", "tab\there", "survey.xml", "survey.XLSX", "x.xls"]
NO_FORM_ID_MD = """
| survey |
|        | type | name | label    |
|        | text | q    | Question |
"""


@pytest.mark.parametrize("form_id", BAD_FORM_IDS)
async def test_form_ids_that_cannot_be_a_path_segment_are_refused(
    client: httpx.AsyncClient, admin: Person, container: Container, form_id: str
) -> None:
    pid = await project(client, admin)
    escaped = form_id.replace("\t", "&#9;")
    as_xform = xform("1").replace(b'id="simple"', f'id="{escaped}"'.encode())
    response = await upload(client, admin, pid, as_xform, XML, publish="true")
    body = assert_problem(response, 400, 400.8)
    assert body["details"] == {"field": "formId", "value": form_id}
    await assert_nothing_stored(container)
    # The XLSForm id fallback header (pyODK sends the file name) cannot smuggle one in either.
    if "\t" not in form_id:
        fallback = await upload(
            client,
            admin,
            pid,
            NO_FORM_ID_MD.encode(),
            {**MD, "X-XlsForm-FormId-Fallback": form_id},
            publish="true",
        )
        assert_problem(fallback, 400, 400.8)
        assert (await refused_conversion(container))["code"] == 400.8
    await assert_still_serving(client, admin, pid)


# -- empty bodies ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "status", "code"),
    [
        ("application/xml", 400, 400.1),
        ("text/xml", 400, 400.1),
        (XLSX_TYPE, 400, 400.15),
        ("text/csv", 400, 400.15),
        ("text/markdown", 400, 400.15),
        (None, 415, 415.1),
    ],
    ids=["xml", "text-xml", "xlsx", "csv", "md", "no-type"],
)
async def test_an_empty_upload_is_refused(
    client: httpx.AsyncClient,
    admin: Person,
    container: Container,
    content_type: str | None,
    status: int,
    code: float,
) -> None:
    pid = await project(client, admin)
    headers = {**admin.auth}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post(f"/v1/projects/{pid}/forms", content=b"", headers=headers)
    assert_problem(response, status, code)
    whitespace = await client.post(f"/v1/projects/{pid}/forms", content=b"  \n\t ", headers=headers)
    assert 400 <= whitespace.status_code < 500, whitespace.text
    await assert_nothing_stored(container)
    await assert_still_serving(client, admin, pid)


def test_the_laughs_really_are_a_bomb() -> None:
    """The billion-laughs payload is the real thing: a permissive parser would expand it to 1 GB."""
    from lxml import etree

    # Only libxml2's own amplification guard stops a parser that resolves entities.
    with pytest.raises(etree.XMLSyntaxError, match="amplification"):
        etree.fromstring(LAUGHS, parser=etree.XMLParser(resolve_entities=True))
