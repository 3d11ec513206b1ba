"""Every XLSForm of this project's corpus through the real upload API, as markdown and as
XLSX: good forms are stored with the schema pyxform's XForm yields, broken ones answer 400.15
naming the row, and nothing of theirs is stored."""

from __future__ import annotations

import io

import httpx
import pytest
from pyxform import xls2xform
from tests.api.test_forms import XLSX_TYPE, project
from tests.conftest import Person
from tests.xlsform_corpus import broken_forms, good_forms, md_to_xlsx

from odk_mcp.services.forms.api.forms import fields_json
from odk_mcp.services.forms.domain.schema import read_schema

FORMATS = {
    "md": ("text/markdown", lambda text: text.encode()),
    "xlsx": (XLSX_TYPE, md_to_xlsx),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
async def test_every_good_form_is_stored_with_its_schema(
    client: httpx.AsyncClient, admin: Person, fmt: str
) -> None:
    content_type, encode = FORMATS[fmt]
    for path in good_forms():
        text = path.read_text(encoding="utf-8")
        expected = read_schema(
            xls2xform.convert(xlsform=io.BytesIO(text.encode()), file_type=".md").xform.encode()
        )
        pid = await project(client, admin)
        response = await client.post(
            f"/v1/projects/{pid}/forms",
            content=encode(text),
            params={"publish": "true", "ignoreWarnings": "true"},
            headers={**admin.auth, "Content-Type": content_type},
        )
        assert response.status_code == 200, f"{path.name}: {response.text}"
        assert response.json()["xmlFormId"] == expected.xml_form_id, path.name
        assert response.json()["version"] == expected.version, path.name
        stored = await client.get(
            f"/v1/projects/{pid}/forms/{expected.xml_form_id}/fields", headers=admin.auth
        )
        assert stored.json() == fields_json(expected), path.name


@pytest.mark.parametrize("fmt", sorted(FORMATS))
async def test_every_broken_form_is_400_15_naming_its_row(
    client: httpx.AsyncClient, admin: Person, fmt: str
) -> None:
    content_type, encode = FORMATS[fmt]
    pid = await project(client, admin)
    for path, broken in broken_forms():
        response = await client.post(
            f"/v1/projects/{pid}/forms",
            content=encode(path.read_text(encoding="utf-8")),
            headers={**admin.auth, "Content-Type": content_type},
        )
        assert response.status_code == 400, f"{path.name}: {response.text}"
        body = response.json()
        assert body["code"] == 400.15, path.name
        assert f"[row : {broken.row}]" in body["details"]["error"], path.name
        assert broken.message.lower() in body["details"]["error"].lower(), path.name
    listed = await client.get(f"/v1/projects/{pid}/forms", headers=admin.auth)
    assert listed.json() == []
