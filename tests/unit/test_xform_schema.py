"""Reading XForms into the field schema: real forms from pyxform's corpus, and hostile XML."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pyxform import xls2xform
from tests.conftest import require_shared

from odk_mcp.services.forms.domain.safe_xml import UnsafeXml, parse_xml
from odk_mcp.services.forms.domain.schema import FormSchema, InvalidXForm, read_schema

XFORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head>
    <h:title>Household</h:title>
    <model>
      <itext>
        <translation lang="English (en)" default="true()">
          <text id="/hh/name:label"><value>Name</value></text>
        </translation>
        <translation lang="French (fr)">
          <text id="/hh/name:label"><value>Nom</value></text>
        </translation>
      </itext>
      <instance>
        <hh id="household" version="2026-01">
          <name/>
          <photo/>
          <location/>
          <member jr:template=""><age/><likes/></member>
          <meta><instanceID/></meta>
        </hh>
      </instance>
      <bind nodeset="/hh/name" type="string" required="true()"/>
      <bind nodeset="/hh/photo" type="binary"/>
      <bind nodeset="/hh/location" type="geopoint"/>
      <bind nodeset="/hh/member/age" type="int" constraint=". &lt; 120" relevant="true()"/>
      <bind nodeset="/hh/member/likes" type="string"/>
      <bind nodeset="/hh/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/hh/name"><label ref="jr:itext('/hh/name:label')"/></input>
    <upload ref="/hh/photo" mediatype="image/*"><label>Photo</label></upload>
    <input ref="/hh/location"><label>Where</label></input>
    <group ref="/hh/member"><label>Member</label>
      <repeat nodeset="/hh/member">
        <input ref="/hh/member/age"><label>Age</label></input>
        <select ref="/hh/member/likes"><label>Likes</label>
          <item><label>Rice</label><value>rice</value></item>
          <item><label>Fish</label><value>fish</value></item>
        </select>
      </repeat>
    </group>
  </h:body>
</h:html>"""


def test_schema_lists_every_field_with_type_nesting_and_rules() -> None:
    schema = read_schema(XFORM)
    assert (schema.xml_form_id, schema.version, schema.title) == ("household", "2026-01", "Household")
    assert schema.languages == ("English (en)", "French (fr)")
    by_path = {f.path: f for f in schema.fields}
    assert list(by_path) == [
        "/name",
        "/photo",
        "/location",
        "/member",
        "/member/age",
        "/member/likes",
        "/meta",
        "/meta/instanceID",
    ]
    assert by_path["/name"].labels == {"English (en)": "Name", "French (fr)": "Nom"}
    assert by_path["/name"].required == "true()"
    assert by_path["/photo"].binary and by_path["/photo"].type == "binary"
    assert by_path["/location"].type == "geopoint"
    assert by_path["/member"].type == "repeat"
    assert by_path["/member/age"].repeat == "/member"
    assert by_path["/member/age"].type == "int" and by_path["/member/age"].constraint == ". < 120"
    likes = by_path["/member/likes"]
    assert likes.select_multiple and [c.value for c in likes.choices] == ["rice", "fish"]
    assert by_path["/meta"].type == "structure" and by_path["/meta/instanceID"].readonly == "true()"


def test_schema_survives_a_json_round_trip() -> None:
    schema = read_schema(XFORM)
    assert FormSchema.from_json(schema.to_json()) == schema


def test_a_form_without_id_is_refused() -> None:
    with pytest.raises(InvalidXForm, match="id"):
        read_schema(XFORM.replace(b' id="household"', b""))


def test_not_an_xform_is_refused() -> None:
    with pytest.raises(InvalidXForm):
        read_schema(b"<data><a/></data>")


@pytest.mark.parametrize(
    "hostile",
    [
        # XXE: an external entity reading a local file.
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        # Billion laughs.
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>',
        # External DTD over the network.
        b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://example.org/evil.dtd"><r/>',
        # Not well-formed.
        b"<r><unclosed></r>",
    ],
    ids=["xxe", "billion-laughs", "external-dtd", "malformed"],
)
def test_hostile_or_malformed_xml_is_refused(hostile: bytes) -> None:
    with pytest.raises(UnsafeXml):
        parse_xml(hostile, max_bytes=1_000_000)


def test_oversize_and_overdeep_xml_is_refused() -> None:
    with pytest.raises(UnsafeXml, match="larger"):
        parse_xml(b"<r>" + b"x" * 2000 + b"</r>", max_bytes=1000)
    deep = b"<a>" * 220 + b"</a>" * 220
    with pytest.raises(UnsafeXml, match="deeper"):
        parse_xml(deep, max_bytes=1_000_000)


def _corpus() -> Path:
    return require_shared("pyxform's example forms are the real-world corpus") / "corpus" / "pyxform"


def test_every_expected_xform_in_the_corpus_reads_into_a_schema() -> None:
    outputs = sorted((_corpus() / "test_expected_output").glob("*.xml"))
    assert outputs, "the corpus has expected XForm outputs"
    for path in outputs:
        schema = read_schema(path.read_bytes())
        assert schema.fields, path.name
        assert all(f.path.startswith("/") for f in schema.fields), path.name
        repeats = {f.path for f in schema.fields if f.type == "repeat"}
        assert all(f.repeat in repeats for f in schema.fields if f.repeat), path.name


def test_xlsforms_of_the_corpus_convert_and_read_into_schemas() -> None:
    examples = sorted((_corpus() / "example_xls").glob("*.xls*"))
    converted = 0
    for path in examples:
        try:
            result = xls2xform.convert(xlsform=io.BytesIO(path.read_bytes()), file_type=path.suffix)
        except Exception:  # noqa: BLE001, S112 - the corpus holds deliberately broken forms too
            continue
        schema = read_schema(result.xform.encode())
        assert schema.fields, path.name
        converted += 1
    assert converted >= 20, f"only {converted} corpus XLSForms converted"


def _convert_md(md: str) -> FormSchema:
    return read_schema(xls2xform.convert(xlsform=io.BytesIO(md.encode()), file_type=".md").xform.encode())


def test_randomized_choice_lists_keep_their_choices() -> None:
    schema = _convert_md(
        """
| survey |
|        | type            | name | label | parameters     |
|        | select_one dirs | dir  | Which | randomize=true |
| choices |
|         | list_name | name  | label |
|         | dirs      | north | North |
|         | dirs      | south | South |
"""
    )
    field = schema.field("/dir")
    assert field is not None
    assert field.choice_list == "dirs"
    assert [c.value for c in field.choices] == ["north", "south"]


def test_labels_keep_references_to_other_fields() -> None:
    schema = _convert_md(
        """
| survey |
|        | type    | name | label                        |
|        | integer | n    | How many?                    |
|        | note    | echo | You said ${n} people.        |
"""
    )
    field = schema.field("/echo")
    assert field is not None
    assert field.labels == {"default": "You said ${n} people."}


def test_an_empty_group_is_a_structure() -> None:
    schema = _convert_md(
        """
| survey |
|        | type        | name  | label |
|        | begin group | empty | Empty |
|        | end group   |       |       |
|        | text        | after | After |
"""
    )
    field = schema.field("/empty")
    assert field is not None
    assert field.type == "structure"
