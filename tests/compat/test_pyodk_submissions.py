"""pyODK's submission API against the real server over real HTTP: create with attachments,
list, get, edit, review, comments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pyodk.client import Client
from tests.compat.test_pyodk import Central, central, write_config

__all__ = ["central"]  # the module-scoped live server fixture, shared with test_pyodk.py

XFORM = """<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head>
    <h:title>Birds</h:title>
    <model>
      <instance>
        <data id="birds" version="1"><species/><count/><photo/><meta><instanceID/></meta></data>
      </instance>
      <bind nodeset="/data/species" type="string"/>
      <bind nodeset="/data/count" type="int"/>
      <bind nodeset="/data/photo" type="binary"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/species"><label>Species</label></input>
    <input ref="/data/count"><label>Count</label></input>
    <upload ref="/data/photo" mediatype="image/*"><label>Photo</label></upload>
  </h:body>
</h:html>
"""


def sighting(instance_id: str, count: int, deprecated: str | None = None) -> str:
    dep = f"<deprecatedID>{deprecated}</deprecatedID>" if deprecated else ""
    return (
        f'<data id="birds" version="1"><species>pigeon</species><count>{count}</count>'
        f"<photo>pigeon.jpg</photo><meta><instanceID>{instance_id}</instanceID>{dep}</meta></data>"
    )


@pytest.fixture
def client(central: Central, tmp_path: Path) -> Iterator[Client]:
    project_id = central.create_project("pyODK submissions")
    config = write_config(tmp_path / "pyodk_config.toml", central, project_id=project_id)
    definition = tmp_path / "birds.xml"
    definition.write_text(XFORM)
    with Client(config_path=config, cache_path=tmp_path / "pyodk_cache.toml") as opened:
        opened.forms.create(definition=definition, form_id="birds")
        yield opened


def test_create_with_attachment_list_get_edit_review_and_comment(
    central: Central, client: Client, tmp_path: Path
) -> None:
    photo = tmp_path / "pigeon.jpg"
    photo.write_bytes(b"\xff\xd8 a pigeon")
    created = client.submissions.create(
        xml=sighting("uuid:s1", 3), form_id="birds", device_id="phone-1", attachments=[photo]
    )
    assert created.instanceId == "uuid:s1"
    assert created.deviceId == "phone-1"
    listed = client.submissions.list(form_id="birds")
    assert [s.instanceId for s in listed] == ["uuid:s1"]
    got = client.submissions.get(form_id="birds", instance_id="uuid:s1")
    assert got.submitterId == created.submitterId

    base = f"{central.base_url}/v1/projects/{client.project_id}/forms/birds/submissions/uuid:s1"
    stored = httpx.get(base + "/attachments/pigeon.jpg", headers=central.admin_auth)
    assert stored.content == b"\xff\xd8 a pigeon"

    client.submissions.edit(
        instance_id="uuid:s1",
        xml=sighting("uuid:s2", 4, deprecated="uuid:s1"),
        form_id="birds",
        comment="Recounted.",
    )
    edited = client.submissions.get(form_id="birds", instance_id="uuid:s1")
    assert edited.reviewState == "edited"
    xml = httpx.get(base + ".xml", headers=central.admin_auth).text
    assert "<count>4</count>" in xml
    assert httpx.get(base + "/attachments/pigeon.jpg", headers=central.admin_auth).status_code == 200

    client.submissions.review(
        instance_id="uuid:s1", review_state="approved", form_id="birds", comment="Fine."
    )
    assert client.submissions.get(form_id="birds", instance_id="uuid:s1").reviewState == "approved"
    comments = client.submissions.list_comments(form_id="birds", instance_id="uuid:s1")
    assert [c.body for c in comments] == ["Recounted.", "Fine."]
    client.submissions.add_comment(form_id="birds", instance_id="uuid:s1", comment="Done.")
    assert len(client.submissions.list_comments(form_id="birds", instance_id="uuid:s1")) == 3
