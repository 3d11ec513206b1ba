"""The XLSForm corpus through pyxform and the schema reader.

Every good form converts, as markdown and as a real .xlsx, into an XForm whose field schema
has the facts listed for it in `EXPECTED`; every broken form is refused by pyxform with an
error naming the row at fault. The corpus as a whole must keep using every XLSForm question
type and the settings, columns and sheets the forms service has to handle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from pyxform.errors import PyXFormError
from pyxform.xls2xform import convert
from tests.xlsform_corpus import (
    BROKEN,
    BROKEN_DIR,
    CORPUS,
    GOOD,
    BrokenForm,
    broken_forms,
    good_forms,
    md_sheets,
    md_to_xlsx,
)

from odk_mcp.services.forms.domain.schema import Field, FormSchema, read_schema

EN, FR, SW = "English (en)", "French (fr)", "Swahili (sw)"
YN = ["yes", "no"]


@dataclass(frozen=True)
class Expect:
    """What the schema of one good form must say.

    `fields` counts every schema field: groups, repeats and the generated meta fields too.
    In `checks`, each field path maps attribute → expected value; "choices" compares the
    choice values in order and "choice_labels" the labels of some choices by value.
    """

    form_id: str
    version: str
    fields: int
    checks: dict[str, dict[str, Any]]
    title: str | None = None  # None: the title is the form id
    languages: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # paths that must not be fields


EXPECTED: dict[str, Expect] = {
    "agriculture_plots": Expect(
        "agriculture_plots",
        "2026.1.0",
        15,
        {
            "/plot": {"type": "repeat", "repeat": None},
            "/plot/boundary": {"type": "geoshape", "repeat": "/plot"},
            "/plot/area_m2": {"calculate": "area( ../boundary )"},
            "/plot/crop": {"type": "repeat", "repeat": "/plot"},
            "/plot/crop/crop_name": {
                "repeat": "/plot/crop",
                "choice_list": "crop_list",
                "choices": ["maize", "beans", "cassava", "sorghum"],
            },
            "/plot/crop/expected_kg": {"type": "decimal", "relevant": " ../share  > 0"},
        },
    ),
    "antenatal_care": Expect(
        "antenatal_care",
        "2",
        10,
        {
            "/danger_signs": {
                "select_multiple": True,
                "constraint": "not(selected(., 'none') and count-selected(.) > 1)",
                "choices": ["bleeding", "headache", "fever", "convulsion", "none"],
            },
            "/diastolic": {"type": "int", "constraint": ". >= 30 and . <  /data/systolic "},
            "/n_danger": {
                "calculate": "if(selected( /data/danger_signs , 'none'), 0, "
                "count-selected( /data/danger_signs ))"
            },
            "/referral_site": {"required": "true()", "relevant": " /data/referred  = 'yes'"},
        },
        title="ANC contact",
        # Hints and required messages go to itext, under pyxform's "default" language.
        languages=("default",),
    ),
    "arabic_unicode_labels": Expect(
        "arabic_unicode_labels",
        "1",
        6,
        {
            "/family_size": {"type": "int", "labels": {"Arabic (ar)": "عدد أفراد الأسرة", EN: "Family size"}},
            "/shelter": {
                "choices": ["tent", "caravan", "building"],
                "choice_labels": {"tent": {"Arabic (ar)": "خيمة", EN: "Tent"}},
            },
        },
        title="مسح المأوى — Shelter survey",
        languages=("Arabic (ar)", EN),
    ),
    "background_capture": Expect(
        "background_capture",
        "1",
        7,
        {
            "/interview_audio": {"type": "binary", "binary": True, "labels": {}},
            "/respondent_loc": {"type": "geopoint", "labels": {}},
            "/meta/audit": {"type": "binary", "binary": True},
        },
    ),
    "cascading_locations": Expect(
        "cascading_locations",
        "1",
        6,
        {
            "/region": {"choice_list": "region", "choices": ["north", "south"]},
            # The schema holds the whole list; the choice_filter applies when filling in.
            "/district": {"choice_list": "district", "choices": ["gulu", "lira", "mbarara"]},
            "/village": {"choice_list": "village", "choices": ["laroo", "bardege", "adyel", "kakoba"]},
        },
    ),
    "clinic_exit_interview": Expect(
        "clinic_exit_interview",
        "1",
        12,
        {
            "/visit": {"type": "structure", "labels": {"default": "About your visit"}},
            # A table-list group: pyxform moves its label into a generated note and adds a
            # hidden header select, both real fields of the instance.
            "/ratings": {"type": "structure", "labels": {}},
            "/ratings/generated_table_list_label_6": {"labels": {"default": "How much do you agree?"}},
            "/ratings/reserved_name_for_field_list_labels_7": {"choice_list": "agree"},
            "/ratings/privacy": {"choices": ["1", "2", "3", "4"], "required": "true()"},
            "/recommend": {"choice_labels": {"4": {"default": "Strongly agree"}}},
        },
        title="Exit interview",
    ),
    "community_meeting_trilingual": Expect(
        "community_meeting_trilingual",
        "1",
        8,
        {
            "/attendees": {
                "labels": {
                    EN: "Number of attendees",
                    FR: "Nombre de participants",
                    SW: "Idadi ya waliohudhuria",
                }
            },
            "/topics": {
                "select_multiple": True,
                "choice_labels": {"security": {EN: "Security", FR: "Sécurité", SW: "Usalama"}},
            },
            "/recording": {"type": "binary", "binary": True},
        },
        languages=(EN, FR, SW),
    ),
    "consent_acknowledge": Expect(
        "consent_acknowledge",
        "1",
        8,
        {
            "/info_sheet": {"readonly": "true()"},
            "/consent": {"type": "string", "required": "true()"},
            "/confirm_age": {"relevant": " /data/consent  = 'OK'"},
            "/interview": {"type": "structure", "relevant": " /data/consent  = 'OK'"},
            "/interview/last_facility": {"relevant": " /data/interview/visits  > 0"},
        },
    ),
    "crop_yield_estimate": Expect(
        "crop_yield_estimate",
        "2026-A",
        10,
        {
            "/moisture_pct": {"type": "decimal", "constraint": ". >= 5 and . <= 40"},
            "/yield_t_ha": {
                "type": "string",
                "calculate": "round( /data/dry_weight_kg  div "
                "( /data/cut_side_m  *  /data/cut_side_m ) * 10, 2)",
            },
            "/yield_note": {"readonly": "true()"},
        },
    ),
    "custom_root_name": Expect(
        # The "name" setting renames the root element; paths stay relative to it.
        "env_sampling_log",
        "202603011230",
        5,
        {"/samples": {"type": "int"}, "/meta/instanceID": {"readonly": "true()"}},
        title="Environmental sampling log",
        missing=("/sampling",),
    ),
    "device_metadata": Expect(
        "device_metadata",
        "1.0",
        14,
        {
            "/started": {"type": "dateTime", "labels": {}},
            "/ended": {"type": "dateTime"},
            "/survey_day": {"type": "date"},
            "/device": {"type": "string"},
            "/opened_at": {"type": "geopoint"},
            "/meta/audit": {"type": "binary", "binary": True},
        },
    ),
    "duplicate_choice_values": Expect(
        "duplicate_choice_values",
        "1",
        4,
        {
            "/occupation": {
                "choices": ["farming", "farming", "trade", "wage", "other"],
                "choice_list": "occupation",
            },
            "/occupation_2": {"choice_list": "occupation"},
        },
    ),
    "event_timing": Expect(
        "event_timing",
        "1",
        8,
        {
            "/onset_date": {"type": "date", "constraint": ". <= today()"},
            "/report_time": {"type": "time"},
            "/response_start": {"type": "dateTime", "constraint": ". >=  /data/report_date "},
            "/deaths": {"constraint": ". >= 0 and . <=  /data/cases "},
        },
    ),
    "external_lists": Expect(
        "external_lists",
        "1",
        7,
        {
            # External lists: the schema knows the list, not its (attached) choices.
            "/district": {"choice_list": "districts", "choices": []},
            "/facility": {"choice_list": "facilities", "choices": []},
            "/stockouts": {"choice_list": "drugs", "select_multiple": True},
            "/sample_point": {"choice_list": "points", "select_multiple": False},
            "/supervisor": {"choice_list": "staff"},
        },
    ),
    "fisheries_catch": Expect(
        "fisheries_catch",
        "1",
        11,
        {
            "/landing_time": {"type": "time"},
            "/catch/fish": {"repeat": "/catch", "choices": ["tilapia", "nile_perch", "mukene", "other"]},
            "/catch/fish_other": {"repeat": "/catch", "relevant": "selected(../fish, 'other')"},
            "/catch/value": {"calculate": " ../weight_kg  *  ../price_kg "},
        },
    ),
    "food_consumption_score": Expect(
        "food_consumption_score",
        "1",
        13,
        {
            "/staples": {"type": "int", "constraint": ". >= 0 and . <= 7", "required": "true()"},
            "/oil": {"type": "int"},
            "/fcs_group": {
                "calculate": "if( /data/fcs  <= 21, 'poor', "
                "if( /data/fcs  <= 35, 'borderline', 'acceptable'))"
            },
        },
    ),
    "health_facility_assessment": Expect(
        "health_facility_assessment",
        "3",
        18,
        {
            "/identification": {"type": "structure", "labels": {"default": "Facility identification"}},
            "/identification/facility_type": {"choices": ["hospital", "health_centre", "dispensary"]},
            "/services/services_offered": {"select_multiple": True, "choice_list": "service"},
            "/services/has_cold_chain": {
                "relevant": "selected( /data/services/services_offered , 'immunization')"
            },
            "/location": {"type": "geopoint", "required": "true()"},
            "/photo_front": {"type": "binary", "binary": True},
        },
        title="Health facility assessment",
    ),
    "hidden_tracking": Expect(
        "hidden_tracking",
        "1",
        9,
        {
            "/campaign": {"type": "string", "labels": {}},
            "/team_code": {"readonly": "true()"},
            # Set by a trigger (setvalue on the bednets question), so no bind calculate.
            "/counted_at": {"calculate": None},
            "/bednet_pairs": {"calculate": "floor( /data/bednets  div 2)"},
            "/next_visit": {"type": "date"},
        },
    ),
    "household_assets": Expect(
        "household_assets",
        "3",
        9,
        {
            "/assets": {
                "select_multiple": True,
                "choices": ["radio", "tv", "phone", "bicycle", "motorbike", "none"],
            },
            "/n_assets": {"calculate": "count-selected( /data/assets )"},
            "/phones": {"relevant": "selected( /data/assets , 'phone')"},
        },
    ),
    "household_roster": Expect(
        "household_roster",
        "2026-01-15",
        14,
        {
            "/start": {"type": "dateTime"},
            "/hh_size": {"type": "int", "constraint": ". >= 1 and . <= 30", "required": "true()"},
            "/member": {"type": "repeat", "labels": {"default": "Household member"}},
            "/member/m_age": {"type": "int", "repeat": "/member", "constraint": ". >= 0 and . < 120"},
            "/member/m_school": {"relevant": " ../m_age  >= 5 and  ../m_age  <= 18"},
            "/n_children": {"calculate": "count( /data/member [m_age < 18])"},
            "/meta/instanceName": {"calculate": "concat('HH-',  /data/hh_head )"},
        },
        title="Household roster",
    ),
    "livestock_census": Expect(
        "livestock_census",
        "2026",
        12,
        {
            "/herd/counts": {"type": "structure", "repeat": "/herd"},
            "/herd/counts/young": {"type": "int", "repeat": "/herd"},
            "/herd/herd_total": {"calculate": " ../counts/adults  +  ../counts/young "},
            "/all_animals": {"repeat": None, "calculate": "sum( /data/herd/herd_total )"},
        },
    ),
    "malaria_case_investigation": Expect(
        "malaria_case_investigation",
        "3",
        13,
        {
            "/rdt_lot": {"type": "barcode"},
            "/temperature": {"type": "decimal", "constraint": ". >= 34 and . <= 43"},
            "/trip": {"type": "repeat", "relevant": " /data/travelled  = 'yes'"},
            "/trip/nights": {"repeat": "/trip", "type": "int"},
            "/meta/instanceName": {"calculate": "concat( /data/case_id , ' / ',  /data/rdt_result )"},
        },
    ),
    "market_prices": Expect(
        "market_prices",
        "2026-W07",
        10,
        {
            "/price/commodity": {"repeat": "/price", "choice_list": "commodities", "choices": []},
            "/price/unit_kg": {"calculate": "pulldata('commodities', 'unit_kg', 'name',  ../commodity )"},
            "/price/unit_price": {"type": "decimal", "constraint": ". > 0"},
            "/price/availability": {"choices": ["plenty", "limited", "none"]},
        },
        title="Weekly market prices",
    ),
    "media_evidence": Expect(
        "media_evidence",
        "20260301",
        10,
        {
            "/building_tag": {"type": "barcode", "binary": False},
            "/facade": {"type": "binary", "binary": True, "required": "true()"},
            "/signature": {"binary": True},
            "/owner_account": {"binary": True},
            "/walkthrough": {"binary": True},
            "/engineer_report": {"binary": True},
            "/damage_grade": {"choices": ["1", "2", "3", "4", "5"]},
        },
        title="Building damage evidence",
    ),
    "media_labels": Expect(
        "media_labels",
        "1",
        6,
        {
            # Media (image/audio/video forms) are left out; the plain text is the label.
            "/intro": {"labels": {EN: "Listen to the introduction", "Hausa (ha)": "Saurari gabatarwar"}},
            "/bednet_type": {
                "choice_labels": {"llin": {EN: "Long-lasting net", "Hausa (ha)": "Gidan sauro mai dorewa"}}
            },
            "/nets_count": {"type": "int"},
        },
        languages=(EN, "Hausa (ha)"),
    ),
    "minimal_form": Expect(
        # No settings sheet: pyxform's defaults name the form and its root "data".
        "data",
        "",
        3,
        {"/comment": {"type": "string", "labels": {"default": "Your comment"}}},
    ),
    "mixed_label_columns": Expect(
        "mixed_label_columns",
        "1",
        5,
        {
            "/district": {"labels": {"default": "Wilaya", EN: "District"}},
            "/electrified": {"choice_labels": {"no": {"default": "Hapana", EN: "No"}}},
            "/shops": {"labels": {"default": "Maduka mangapi?"}},
        },
        languages=(EN, "default"),
    ),
    "nutrition_screening": Expect(
        "nutrition_screening",
        "2026032001",
        12,
        {
            "/visit_date": {"type": "date", "labels": {}},
            "/child/dob": {"type": "date", "repeat": "/child", "constraint": ". <= today()"},
            "/child/muac_cm": {"type": "decimal", "relevant": " ../age_months  >= 6"},
            "/child/status": {
                "calculate": "if( ../oedema  = 'yes' or  ../muac_cm  < 11.5, 'SAM', "
                "if( ../muac_cm  < 12.5, 'MAM', 'normal'))"
            },
        },
        title="MUAC screening (U5)",
    ),
    "or_other_selects": Expect(
        "or_other_selects",
        "1",
        7,
        {
            "/religion": {"choices": ["christian", "muslim", "none", "other"]},
            "/religion_other": {"type": "string", "relevant": "selected(../religion, 'other')"},
            "/languages": {"select_multiple": True, "choices": ["english", "swahili", "luganda", "other"]},
            "/languages_other": {"relevant": "selected(../languages, 'other')"},
        },
    ),
    "pharmacy_stock_search": Expect(
        "pharmacy_stock_search",
        "1",
        7,
        {
            # search() keeps the choices inline in the body: no secondary instance.
            "/item/medicine": {"choice_list": None, "choices": ["amox", "act", "ors", "zinc"]},
            "/item/on_hand": {"repeat": "/item", "type": "int"},
        },
    ),
    "priority_ranking": Expect(
        "priority_ranking",
        "1",
        5,
        {
            "/priorities": {
                "type": "rank",
                "select_multiple": False,
                "choices": ["water", "roads", "health", "schools"],
                "choice_labels": {"water": {EN: "Clean water", SW: "Maji safi"}},
            },
        },
        languages=(EN, SW),
    ),
    "randomized_quiz": Expect(
        "randomized_quiz",
        "1",
        6,
        {
            "/seed": {"calculate": "once(decimal-date-time(now()))"},
            "/transmission": {"type": "string", "select_multiple": False},
            "/prevention": {"select_multiple": True},
            "/heard_radio": {"choice_list": "yn", "choices": YN},
        },
    ),
    "reference_lookups": Expect(
        "reference_lookups",
        "2",
        8,
        {
            "/target_pop": {"calculate": "pulldata('targets', 'population', 'code',  /data/facility_code )"},
            "/catchment_name": {
                "calculate": "instance('catchments')/root/item[code =  /data/facility_code ]/name"
            },
        },
        # csv-external and xml-external declare instances, not fields.
        missing=("/targets", "/catchments"),
    ),
    "refugee_registration": Expect(
        "refugee_registration",
        "2",
        13,
        {
            "/person/bio": {"type": "structure", "repeat": "/person"},
            "/person/bio/specific_needs": {"repeat": "/person", "select_multiple": True},
            # Choices from the members repeat: no list to read.
            "/principal": {"choice_list": None, "choices": [], "required": "true()"},
            "/interpreter_for": {"choice_list": None},
            "/meta/instanceName": {"calculate": "concat('Case ',  /data/case_number )"},
        },
    ),
    "road_mapping": Expect(
        "road_mapping",
        "2",
        9,
        {
            "/start_point": {"type": "geopoint"},
            "/centreline": {"type": "geotrace", "required": "true()"},
            "/borrow_pit": {"type": "geoshape"},
            "/length_m": {"calculate": "distance( /data/centreline )"},
        },
    ),
    "school_census": Expect(
        "school_census",
        "2026",
        17,
        {
            "/school_code": {"constraint": "regex(., '^[0-9]{6}$')"},
            "/enrolment/grade1": {"type": "structure", "labels": {"default": "Grade 1"}},
            "/enrolment/grade2/g2_boys": {"type": "int", "repeat": None},
            "/classrooms": {"constraint": ". >= 1 and . <=  /data/total_pupils "},
            "/ptr": {"calculate": "round( /data/total_pupils  div  /data/teachers , 1)"},
        },
        title="School census 2026",
    ),
    "school_wash_facilities": Expect(
        "school_wash_facilities",
        "1",
        16,
        {
            "/toilets/girls_block": {"type": "structure"},
            "/toilets/girls_block/girls_mhm": {
                "type": "structure",
                "relevant": " /data/toilets/girls_block/girls_stances  > 0",
            },
            "/toilets/girls_block/girls_mhm/bin": {"choices": YN},
            "/water/water_point": {"relevant": " /data/water/has_water  = 'yes'"},
        },
    ),
    "service_ratings": Expect(
        "service_ratings",
        "4",
        7,
        {
            "/waiting": {"type": "int"},
            "/cleanliness": {"type": "decimal"},  # a step of 0.5 makes the range decimal
            "/pain": {"type": "int"},
            "/stars": {"type": "int"},
        },
    ),
    "spanish_default_language": Expect(
        "spanish_default_language",
        "2026.03",
        6,
        {
            "/hectareas": {
                "type": "decimal",
                "labels": {"Español (es)": "Hectáreas de café", EN: "Hectares of coffee"},
            },
            "/variedad": {"choices": ["caturra", "castillo", "geisha"]},
        },
        title="Censo cafetero",
        languages=(EN, "Español (es)"),
    ),
    "symptom_screening": Expect(
        "symptom_screening",
        "2",
        11,
        {
            "/temp": {"type": "decimal"},
            "/high_risk": {"calculate": "if( /data/score  >= 3, 'yes', 'no')"},
            "/refer_note": {"readonly": "true()", "relevant": " /data/high_risk  = 'yes'"},
        },
    ),
    "teacher_attendance": Expect(
        "teacher_attendance",
        "1",
        11,
        {
            # A numeric repeat_count becomes a generated calculate that jr:count points to.
            "/day_count": {"calculate": "5", "readonly": "true()"},
            "/day": {"type": "repeat"},
            "/day/day_no": {"calculate": "position(..)", "repeat": "/day"},
            "/monday_present": {"calculate": "indexed-repeat( /data/day/present ,  /data/day , 1)"},
        },
    ),
    "vaccination_card": Expect(
        "vaccination_card",
        "5",
        11,
        {
            "/card_photo": {"binary": True, "relevant": " /data/has_card  = 'yes'"},
            "/dose": {"type": "repeat", "relevant": " /data/has_card  = 'yes'"},
            "/dose/dose_date": {"constraint": ". >=  /data/child_dob  and . <= today()"},
            "/dose_count": {"calculate": "count( /data/dose )"},
        },
    ),
    "village_household_member": Expect(
        "village_household_member",
        "1",
        16,
        {
            "/village": {"type": "repeat", "repeat": None},
            "/village/household": {"type": "repeat", "repeat": "/village"},
            "/village/household/dwelling": {"binary": True, "repeat": "/village/household"},
            "/village/household/member": {"type": "repeat", "repeat": "/village/household"},
            "/village/household/member/health/ill_2w": {"repeat": "/village/household/member"},
        },
    ),
    "wash_household": Expect(
        "wash_household",
        "7",
        9,
        {
            "/water_source": {
                "choices": ["piped", "borehole", "protected_well", "surface", "other"],
                "choice_labels": {"borehole": {EN: "Borehole", FR: "Forage"}},
            },
            # or_other's generated question is untranslated.
            "/water_source_other": {"labels": {"default": "Specify other."}},
            "/minutes_to_water": {
                "labels": {
                    EN: "Minutes to fetch water (round trip)",
                    FR: "Minutes pour aller chercher l'eau (aller-retour)",
                }
            },
            "/treatment": {"select_multiple": True, "relevant": " /data/treats_water  = 'yes'"},
        },
        languages=(EN, FR),
    ),
    "water_point_registry": Expect(
        "water_point_registry",
        "1",
        9,
        {
            "/wp_location": {"type": "geopoint"},
            "/meta/entity": {"type": "structure"},
            "/meta/entity/label": {"calculate": "concat( /data/wp_name , ' (',  /data/wp_type , ')')"},
        },
    ),
    "water_point_update": Expect(
        "water_point_update",
        "1",
        7,
        {
            "/water_point": {"choice_list": "water_points", "choices": []},
            "/checked_on": {"type": "date"},
        },
        missing=("/meta/entity/label",),
    ),
}


@cache
def _markdown_schema(path: Path) -> FormSchema:
    return read_schema(convert(xlsform=path.read_bytes(), file_type=".md").xform.encode())


def _check(found: Field, expected: dict[str, Any]) -> None:
    for attribute, value in expected.items():
        if attribute == "choices":
            assert [c.value for c in found.choices] == value, found.path
        elif attribute == "choice_labels":
            labels = {c.value: c.labels for c in found.choices}
            assert {v: labels.get(v) for v in value} == value, found.path
        else:
            assert getattr(found, attribute) == value, f"{found.path}.{attribute}"


def test_the_corpus_has_its_forms_and_every_form_has_expectations() -> None:
    good = {p.stem for p in good_forms()}
    assert len(good) >= 40
    assert good == set(EXPECTED)
    assert len(BROKEN) >= 15
    assert {p.stem for p in BROKEN_DIR.glob("*.md")} == set(BROKEN)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_good_form_converts_into_the_expected_schema(name: str) -> None:
    expected = EXPECTED[name]
    schema = _markdown_schema(GOOD / f"{name}.md")
    assert schema.xml_form_id == expected.form_id
    assert schema.version == expected.version
    assert schema.title == (expected.title or expected.form_id)
    assert schema.languages == expected.languages
    assert len(schema.fields) == expected.fields, [f.path for f in schema.fields]
    for path, checks in expected.checks.items():
        found = schema.field(path)
        assert found is not None, path
        _check(found, checks)
    for path in expected.missing:
        assert schema.field(path) is None, path


@pytest.mark.parametrize("path", good_forms(), ids=lambda p: p.stem)
def test_every_good_schema_is_consistent(path: Path) -> None:
    schema = _markdown_schema(path)
    paths = [f.path for f in schema.fields]
    assert len(paths) == len(set(paths))
    by_path = {f.path: f for f in schema.fields}
    assert by_path["/meta/instanceID"].readonly == "true()"
    for f in schema.fields:
        parent = f.path.rsplit("/", 1)[0]
        assert not parent or by_path[parent].type in ("structure", "repeat"), f.path
        assert f.name == f.path.rsplit("/", 1)[1]
        if f.repeat is not None:
            assert by_path[f.repeat].type == "repeat" and f.path.startswith(f.repeat + "/")
        assert f.binary == (f.type == "binary")
        assert not f.choices or f.type in ("string", "rank"), f.path
    assert FormSchema.from_json(schema.to_json()) == schema


@pytest.mark.parametrize("path", good_forms(), ids=lambda p: p.stem)
def test_xlsx_of_a_good_form_converts_to_the_same_xform(path: Path) -> None:
    markdown = convert(xlsform=path.read_bytes(), file_type=".md").xform
    workbook = convert(xlsform=md_to_xlsx(path.read_text()), file_type=".xlsx").xform
    assert read_schema(workbook.encode()) == _markdown_schema(path)
    assert workbook == markdown


@pytest.mark.parametrize(("path", "expected"), broken_forms(), ids=[p.stem for p, _ in broken_forms()])
@pytest.mark.parametrize("file_type", [".md", ".xlsx"])
def test_broken_form_is_refused_naming_its_row(path: Path, expected: BrokenForm, file_type: str) -> None:
    text = path.read_text()
    data = text.encode() if file_type == ".md" else md_to_xlsx(text)
    with pytest.raises(PyXFormError) as error:
        convert(xlsform=data, file_type=file_type)
    message = str(error.value)
    assert f"[row : {expected.row}]" in message
    assert expected.message in message


def _survey_types() -> set[str]:
    """Every question type the good forms use, without list names or file names."""
    types: set[str] = set()
    for path in good_forms():
        rows = md_sheets(path.read_text())["survey"]
        column = rows[0].index("type")
        for row in rows[1:]:
            words = (row[column] or "").split()
            types.add(" ".join(words[:2]) if words[0] in ("begin", "end") else words[0])
    return types


QUESTION_TYPES = {
    "text", "integer", "decimal", "range", "select_one", "select_multiple", "select_one_from_file",
    "select_multiple_from_file", "rank", "note", "date", "time", "dateTime", "geopoint", "geotrace",
    "geoshape", "image", "audio", "video", "file", "barcode", "acknowledge", "trigger", "calculate",
    "hidden", "start", "end", "today", "deviceid", "username", "phonenumber", "simserial",
    "subscriberid", "email", "audit", "start-geopoint", "background-audio", "background-geopoint",
    "csv-external", "xml-external", "begin group", "end group", "begin repeat", "end repeat",
}  # fmt: skip


def test_the_corpus_uses_every_xlsform_question_type() -> None:
    unused = QUESTION_TYPES - _survey_types()
    assert not unused, unused


SHEETS = {"survey", "choices", "settings", "entities"}
SETTINGS = {
    "form_title", "form_id", "version", "default_language", "instance_name", "style",
    "allow_choice_duplicates", "name", "submission_url",
}  # fmt: skip
SURVEY_COLUMNS = {
    "label::", "hint::", "guidance_hint", "image::", "audio::", "video::", "big-image::",
    "required_message", "required_message::", "constraint_message", "constraint_message::",
    "choice_filter", "repeat_count", "relevant", "calculation", "trigger", "default",
    "readonly", "parameters", "appearance", "save_to",
}  # fmt: skip


def test_the_corpus_uses_the_sheets_settings_and_columns_the_service_must_handle() -> None:
    sheets: set[str] = set()
    settings: set[str] = set()
    columns: set[str] = set()
    for path in good_forms():
        book = md_sheets(path.read_text())
        sheets |= set(book)
        settings |= {c for c in book.get("settings", [[]])[0] if c}
        columns |= {re.sub(r"::.*", "::", c) for c in book["survey"][0] if c}
    assert not SHEETS - sheets, SHEETS - sheets
    assert not SETTINGS - settings, SETTINGS - settings
    assert not SURVEY_COLUMNS - columns, SURVEY_COLUMNS - columns


def test_markdown_becomes_a_workbook_cell_for_cell() -> None:
    text = (
        "# a comment row is not a sheet row\n"
        "| survey |\n"
        "|        | type | name  | label | relevant   |\n"
        "|        | text | a     | A     |            |\n"
        "|        | text | b     | B \\| C | = 'x' |\n"
        "| settings |\n"
        "|          | form_id |\n"
        "|          | f       |\n"
    )
    book = load_workbook(BytesIO(md_to_xlsx(text)))
    assert book.sheetnames == ["survey", "settings"]
    survey = [[c.value for c in row] for row in book["survey"].iter_rows()]
    assert survey == [
        ["type", "name", "label", "relevant"],
        ["text", "a", "A", None],
        ["text", "b", "B | C", "= 'x'"],  # an escaped pipe; a formula-looking cell stays text
    ]
    assert [[c.value for c in row] for row in book["settings"].iter_rows()] == [["form_id"], ["f"]]


def test_the_readme_describes_every_form() -> None:
    readme = (CORPUS / "README.md").read_text()
    described = set(re.findall(r"^- `(?:good|broken)/([a-z0-9_]+)\.md`", readme, flags=re.MULTILINE))
    assert described == {p.stem for p in good_forms()} | set(BROKEN)
