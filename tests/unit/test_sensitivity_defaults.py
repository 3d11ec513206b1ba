"""Default sensitivity of fields, guessed from their names and types (pure, no database)."""

from __future__ import annotations

import pytest

from odk_mcp.services.forms import Field, FormSchema
from odk_mcp.services.forms.domain.sensitivity import default_reason, effective


def field(name: str, type_: str = "string", binary: bool = False) -> Field:
    return Field(path=f"/{name}", name=name, type=type_, repeat=None, binary=binary, select_multiple=False)


@pytest.mark.parametrize(
    ("name", "type_", "reason"),
    [
        ("respondent_name", "string", "person name"),
        ("firstName", "string", "person name"),
        ("hh_head_full_name", "string", "person name"),
        ("surname", "string", "person name"),
        ("village_name", "string", None),
        ("school_name", "string", None),
        ("phone", "string", "phone number"),
        ("mobile_number", "string", "phone number"),
        ("email", "string", "email address"),
        ("national_id", "string", "identity number"),
        ("gps", "geopoint", "precise location"),
        ("plot", "geoshape", "precise location"),
        ("age", "int", None),
        ("named", "string", None),
    ],
)
def test_defaults_follow_names_and_types(name: str, type_: str, reason: str | None) -> None:
    assert default_reason(field(name, type_)) == reason


def test_media_is_sensitive_by_default_and_a_setting_wins_over_the_default() -> None:
    schema = FormSchema(
        xml_form_id="f",
        version="1",
        title="t",
        languages=(),
        fields=(field("photo", "binary", binary=True), field("phone"), field("age", "int")),
    )
    flags = {f.path: (f.sensitive, f.source) for f in effective(schema, {"/phone": False, "/age": True})}
    assert flags == {"/photo": (True, "default"), "/phone": (False, "setting"), "/age": (True, "setting")}
