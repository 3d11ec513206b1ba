"""pyODK's form management against the real server over real HTTP: creating forms from an XForm
file and from an XLSX with media attachments, updating them (new definition, attachments only,
a `version_updater`), reading them back, provisioning app users with form assignments, and what
those app users then see in the OpenRosa form list, exactly as ODK Collect would fetch it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree
from openpyxl import Workbook
from pyodk._endpoints.forms import Form
from pyodk.client import Client
from pyodk.errors import PyODKError
from tests.compat.test_pyodk import Central, central, write_config

__all__ = ["central"]  # the module-scoped live server fixture, shared with test_pyodk.py

OR = {"X-OpenRosa-Version": "1.0"}
XFORMS = "{http://openrosa.org/xforms/xformsList}"
MANIFEST = "{http://openrosa.org/xforms/xformsManifest}"

HOUSEHOLD_XFORM = """<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head>
    <h:title>Household visit</h:title>
    <model>
      <instance>
        <data id="household" version="{version}">
          <head_name/><members/><meta><instanceID/></meta>
        </data>
      </instance>
      <bind nodeset="/data/head_name" type="string" required="true()"/>
      <bind nodeset="/data/members" type="int"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/head_name"><label>Name of the head of household</label></input>
    <input ref="/data/members"><label>How many people live here?</label></input>
  </h:body>
</h:html>
"""

LOGO_V1 = b"\x89PNG\r\n\x1a\n logo, first edition"
LOGO_V2 = b"\x89PNG\r\n\x1a\n logo, second edition"
LOGO_V3 = b"\x89PNG\r\n\x1a\n logo, third edition"
RED = b"\x89PNG\r\n\x1a\n a red square"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def colours_xlsx(
    path: Path, version: str, title: str = "Colour survey", form_id: str | None = "colours"
) -> Path:
    """An XLSForm whose survey and choices use the `image` column, so the form expects media."""
    book = Workbook()
    survey = book.active
    assert survey is not None
    survey.title = "survey"
    survey.append(["type", "name", "label", "image", "required"])
    survey.append(["note", "intro", "Welcome to the colour survey", "logo.png", ""])
    survey.append(["select_one colours", "colour", "Favourite colour", "", "yes"])
    survey.append(["select_multiple colours", "avoid", "Colours you avoid", "", ""])
    survey.append(["text", "comment", "Anything else?", "", ""])
    choices = book.create_sheet("choices")
    choices.append(["list_name", "name", "label", "image"])
    choices.append(["colours", "red", "Red", "red.png"])
    choices.append(["colours", "green", "Green", ""])
    choices.append(["colours", "blue", "Blue", ""])
    settings = book.create_sheet("settings")
    if form_id is None:
        settings.append(["form_title", "version"])
        settings.append([title, version])
    else:
        settings.append(["form_title", "form_id", "version"])
        settings.append([title, form_id, version])
    book.save(path)
    return path


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def client(central: Central, tmp_path: Path) -> Iterator[Client]:
    project_id = central.create_project("pyODK forms")
    config = write_config(tmp_path / "pyodk_config.toml", central, project_id=project_id)
    with Client(config_path=config, cache_path=tmp_path / "pyodk_cache.toml") as opened:
        yield opened


def rest(central: Central, client: Client, path: str) -> httpx.Response:
    """A GET under the client's project with the admin's credentials (not through pyODK)."""
    response = httpx.get(
        f"{central.base_url}/v1/projects/{client.project_id}/{path}", headers=central.admin_auth
    )
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    return response


def test_create_from_an_xform_file_then_list_get_and_get_xml(
    central: Central, client: Client, tmp_path: Path
) -> None:
    definition = write(tmp_path / "household.xml", HOUSEHOLD_XFORM.replace("{version}", "2024-01").encode())

    created = client.forms.create(definition=definition)

    assert isinstance(created, Form)
    assert (created.xmlFormId, created.version, created.name) == ("household", "2024-01", "Household visit")
    assert created.hash == md5(definition.read_bytes())
    # create() posts a draft and then publishes it: the form read back is published and open.
    got = client.forms.get("household")
    assert isinstance(got, Form)
    assert got.publishedAt is not None
    assert got.state == "open"
    assert got.hash == created.hash
    assert [(f.xmlFormId, f.version) for f in client.forms.list()] == [("household", "2024-01")]
    assert client.forms.get_xml("household") == definition.read_text()
    assert client.forms.get_xml("household", encoding=None) == definition.read_bytes()
    draft = httpx.get(
        f"{central.base_url}/v1/projects/{client.project_id}/forms/household/draft",
        headers=central.admin_auth,
    )
    assert draft.status_code == 404, "publishing consumed the draft"

    # The same file again is a conflict that pyODK reports as an error.
    with pytest.raises(PyODKError, match="409"):
        client.forms.create(definition=definition)
    # An in-memory XForm string works too (pyODK sniffs the XForms namespace).
    second = client.forms.create(
        definition=HOUSEHOLD_XFORM.replace('id="household"', 'id="household_b"').replace("{version}", "1")
    )
    assert second.xmlFormId == "household_b"
    assert sorted(f.xmlFormId for f in client.forms.list()) == ["household", "household_b"]


def test_xlsx_with_attachments_then_updates_keep_every_version(
    central: Central, client: Client, tmp_path: Path
) -> None:
    logo = write(tmp_path / "logo.png", LOGO_V1)
    red = write(tmp_path / "red.png", RED)
    book = colours_xlsx(tmp_path / "colours.xlsx", version="1")

    created = client.forms.create(definition=book, attachments=[logo, red])

    assert (created.xmlFormId, created.version, created.name) == ("colours", "1", "Colour survey")
    attachments = {a["name"]: a for a in rest(central, client, "forms/colours/attachments").json()}
    assert set(attachments) == {"logo.png", "red.png"}
    assert {n: (a["exists"], a["hash"], a["type"]) for n, a in attachments.items()} == {
        "logo.png": (True, md5(LOGO_V1), "image"),
        "red.png": (True, md5(RED), "image"),
    }
    fields = {f["path"]: f for f in rest(central, client, "forms/colours/fields").json()}
    assert [c["value"] for c in fields["/colour"]["choices"]] == ["red", "green", "blue"]
    assert fields["/avoid"]["selectMultiple"] is True
    # The spreadsheet itself is kept and served back.
    assert rest(central, client, "forms/colours.xlsx").content == book.read_bytes()

    # A new definition (version 2 in the spreadsheet) with a new logo; red.png carries over.
    logo_v2 = write(tmp_path / "v2" / "logo.png", LOGO_V2)
    book_v2 = colours_xlsx(tmp_path / "colours_v2.xlsx", version="2", title="Colour survey (v2)")
    client.forms.update("colours", definition=book_v2, attachments=[logo_v2])
    assert (client.forms.get("colours").version, client.forms.get("colours").name) == (
        "2",
        "Colour survey (v2)",
    )

    # Attachments only: pyODK asks the callback for the next version from the current one.
    seen: list[str] = []

    def bump(current: str) -> str:
        seen.append(current)
        return str(int(current) + 1)

    logo_v3 = write(tmp_path / "v3" / "logo.png", LOGO_V3)
    client.forms.update("colours", attachments=[logo_v3], version_updater=bump)
    assert seen == ["2"]
    current = client.forms.get("colours")
    assert current.version == "3"
    xml = client.forms.get_xml("colours", encoding=None)
    assert isinstance(xml, bytes)
    assert current.hash == md5(xml)
    assert b'version="3"' in xml

    versions = rest(central, client, "forms/colours/versions").json()
    assert [v["version"] for v in versions] == ["3", "2", "1"]
    for version in versions:
        served = rest(central, client, f"forms/colours/versions/{version['version']}.xml").content
        assert version["hash"] == md5(served), version["version"]
        assert version["publishedAt"] is not None
    assert len({v["hash"] for v in versions}) == 3
    # Each version's definition keeps its own title; the current attachments are the newest ones.
    assert [v["name"] for v in versions] == ["Colour survey (v2)", "Colour survey (v2)", "Colour survey"]
    attachments = {a["name"]: a["hash"] for a in rest(central, client, "forms/colours/attachments").json()}
    assert attachments == {"logo.png": md5(LOGO_V3), "red.png": md5(RED)}
    assert rest(central, client, "forms/colours/attachments/logo.png").content == LOGO_V3

    # Reusing a published version is refused and leaves the form as it was.
    with pytest.raises(PyODKError, match="409"):
        client.forms.update("colours", attachments=[logo_v3], version_updater=lambda _: "2")
    assert client.forms.get("colours").version == "3"


def test_xlsx_without_a_form_id_takes_the_file_name(client: Client, tmp_path: Path) -> None:
    # pyODK sends the file name's stem as X-XlsForm-FormId-Fallback.
    book = colours_xlsx(tmp_path / "market_colours.xlsx", version="7", form_id=None)
    logo = write(tmp_path / "logo.png", LOGO_V1)
    red = write(tmp_path / "red.png", RED)
    created = client.forms.create(definition=book, attachments=[logo, red])
    assert (created.xmlFormId, created.version) == ("market_colours", "7")
    assert client.forms.get("market_colours").publishedAt is not None


def test_an_attachment_the_form_does_not_expect_fails_the_create(
    central: Central, client: Client, tmp_path: Path
) -> None:
    book = colours_xlsx(tmp_path / "colours.xlsx", version="1")
    stray = write(tmp_path / "unexpected.png", RED)
    with pytest.raises(PyODKError, match="404"):
        client.forms.create(definition=book, attachments=[stray])
    # The form exists as an unpublished draft (as on Central): nothing for devices to see.
    form = client.forms.get("colours")
    assert form.publishedAt is None
    (tablet,) = client.projects.create_app_users(display_names=["Draft tablet"], forms=["colours"])
    token = tablet.token
    listed = httpx.get(f"{central.base_url}/v1/key/{token}/projects/{client.project_id}/formList", headers=OR)
    assert listed.status_code == 200, listed.text
    assert etree.fromstring(listed.content).findall(f"{XFORMS}xform") == []


def form_list(central: Central, token: str, project_id: int) -> dict[str, etree._Element]:
    response = httpx.get(f"{central.base_url}/v1/key/{token}/projects/{project_id}/formList", headers=OR)
    assert response.status_code == 200, response.text
    assert response.headers["x-openrosa-version"] == "1.0"
    root = etree.fromstring(response.content)
    assert root.tag == f"{XFORMS}xforms"
    return {str(x.findtext(f"{XFORMS}formID")): x for x in root.findall(f"{XFORMS}xform")}


def test_app_users_from_create_app_users_see_exactly_their_forms(
    central: Central, client: Client, tmp_path: Path
) -> None:
    project_id = client.project_id
    assert project_id is not None
    client.forms.create(
        definition=write(tmp_path / "household.xml", HOUSEHOLD_XFORM.replace("{version}", "1").encode())
    )
    logo = write(tmp_path / "logo.png", LOGO_V1)
    red = write(tmp_path / "red.png", RED)
    client.forms.create(
        definition=colours_xlsx(tmp_path / "colours.xlsx", version="1"), attachments=[logo, red]
    )
    client.forms.create(
        definition=HOUSEHOLD_XFORM.replace('id="household"', 'id="unassigned"').replace("{version}", "1")
    )

    both = list(
        client.projects.create_app_users(
            display_names=["Tablet A", "Tablet B"], forms=["colours", "household"]
        )
    )
    only = list(client.projects.create_app_users(display_names=["Tablet C"], forms=["colours"]))
    none = list(client.projects.create_app_users(display_names=["Tablet D"]))
    assert [u.displayName for u in both] == ["Tablet A", "Tablet B"]
    assert all(u.projectId == project_id and u.token for u in [*both, *only, *none])

    for user in both:
        assert set(form_list(central, user.token, project_id)) == {"colours", "household"}
    assert set(form_list(central, only[0].token, project_id)) == {"colours"}
    assert form_list(central, none[0].token, project_id) == {}

    entries = form_list(central, both[0].token, project_id)
    prefix = f"{central.base_url}/v1/key/{both[0].token}/projects/{project_id}/forms"
    for form_id, entry in entries.items():
        url = entry.findtext(f"{XFORMS}downloadUrl")
        assert url == f"{prefix}/{form_id}.xml"
        downloaded = httpx.get(url)  # the key in the URL is the only credential
        assert downloaded.status_code == 200, downloaded.text
        assert entry.findtext(f"{XFORMS}hash") == "md5:" + md5(downloaded.content)
        assert entry.findtext(f"{XFORMS}hash") == "md5:" + client.forms.get(form_id).hash
        assert entry.findtext(f"{XFORMS}version") == "1"
    assert entries["household"].find(f"{XFORMS}manifestUrl") is None
    manifest_url = entries["colours"].findtext(f"{XFORMS}manifestUrl")
    assert manifest_url == f"{prefix}/colours/manifest"
    manifest = httpx.get(manifest_url, headers=OR)
    assert manifest.status_code == 200, manifest.text
    media = {
        m.findtext(f"{MANIFEST}filename"): m
        for m in etree.fromstring(manifest.content).findall(f"{MANIFEST}mediaFile")
    }
    assert set(media) == {"logo.png", "red.png"}
    for name, content in (("logo.png", LOGO_V1), ("red.png", RED)):
        assert media[name].findtext(f"{MANIFEST}hash") == "md5:" + md5(content)
        fetched = httpx.get(str(media[name].findtext(f"{MANIFEST}downloadUrl")))
        assert fetched.status_code == 200
        assert fetched.content == content

    # An unassigned form is not even downloadable with the key.
    refused = httpx.get(f"{prefix}/unassigned.xml")
    assert refused.status_code == 403, refused.text
    # After an update through pyODK the device sees the new hash on its next form list.
    client.forms.update(
        "household",
        definition=write(tmp_path / "household2.xml", HOUSEHOLD_XFORM.replace("{version}", "2").encode()),
    )
    updated = form_list(central, both[1].token, project_id)["household"]
    assert updated.findtext(f"{XFORMS}version") == "2"
    assert updated.findtext(f"{XFORMS}hash") == "md5:" + md5(
        HOUSEHOLD_XFORM.replace("{version}", "2").encode()
    )
