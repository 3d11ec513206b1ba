"""Export layout and writers, from rows to files, read back with independent readers (csv,
zipfile, openpyxl, pyarrow, pyreadstat, json). The CSV layout is checked against hand-written
expected CSVs that follow ODK Central's rules for the same form."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pyreadstat
import pytest
from tests.export_forms import XFORM

from odk_mcp.infra.blobs import FileBlobStore
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.aggregation.exports import render
from odk_mcp.services.aggregation.exports.domain.layout import Table, build_tables
from odk_mcp.services.aggregation.exports.domain.options import ExportFormat, parse_options
from odk_mcp.services.aggregation.exports.domain.rows import Labeller, RepeatRow, RootRow, Row
from odk_mcp.services.aggregation.exports.writers.archive import MediaFile
from odk_mcp.services.aggregation.exports.writers.csv_text import CsvEncoder
from odk_mcp.services.aggregation.exports.writers.geojson import geometry
from odk_mcp.services.forms.domain.schema import read_schema

SCHEMA = read_schema(XFORM)

FIRST = RootRow(
    submission_id=2,
    instance_id="uuid:1",
    created_at=datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC),
    data={
        "/name": 'Ana, "the" first',
        "/age": 30,
        "/weight": 61.5,
        "/location": "-1.5 36.25 1700 5",
        "/colours": "red blue",
        "/tenure": "own",
        "/photo": "p.jpg",
        "/grp/inner": "x\ny",
        "/grp/sub/deep": None,
        "/meta/instanceID": "uuid:1",
    },
    submitter_id=5,
    submitter_name="Alice",
    attachments_present=1,
    attachments_expected=1,
    review_state="approved",
    device_id="dev1",
    edits=1,
    form_version="v1",
)
SECOND = RootRow(
    submission_id=1,
    instance_id="uuid:2",
    created_at=datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC),
    data={"/name": "Bo", "/weight": 0.00001, "/tenure": "rent", "/meta/instanceID": "uuid:2"},
    form_version="v1",
)
MEMBERS = [
    RepeatRow(
        1, "/hh/member", "uuid:1/hh/member[1]", "uuid:1", {"/hh/member/mname": "Kid", "/hh/member/mage": 4}
    ),
    RepeatRow(1, "/hh/member", "uuid:1/hh/member[2]", "uuid:1", {"/hh/member/mname": "Gran"}),
]
PETS = [
    RepeatRow(
        1,
        "/hh/member/pets",
        "uuid:1/hh/member[1]/pets[1]",
        "uuid:1/hh/member[1]",
        {"/hh/member/pets/pet": "cat"},
    ),
    RepeatRow(
        1,
        "/hh/member/pets",
        "uuid:1/hh/member[1]/pets[2]",
        "uuid:1/hh/member[1]",
        {"/hh/member/pets/pet": "dog"},
    ),
]

ROOT_CSV = (
    "SubmissionDate,name,age,weight,location-Latitude,location-Longitude,location-Altitude,"
    "location-Accuracy,colours,tenure,photo,grp-inner,grp-sub-deep,meta-instanceID,KEY,SubmitterID,"
    "SubmitterName,AttachmentsPresent,AttachmentsExpected,Status,ReviewState,DeviceID,Edits,FormVersion\n"
    '2026-01-02T03:04:05.678Z,"Ana, ""the"" first",30,61.5,-1.5,36.25,1700,5,red blue,own,p.jpg,"x\ny",,'
    "uuid:1,uuid:1,5,Alice,1,1,,approved,dev1,1,v1\n"
    "2026-01-01T00:00:00.000Z,Bo,,0.00001,,,,,,rent,,,,uuid:2,uuid:2,,,0,0,,,,0,v1\n"
)
MEMBER_CSV = "mname,mage,PARENT_KEY,KEY\nKid,4,uuid:1,uuid:1/hh/member[1]\nGran,,uuid:1,uuid:1/hh/member[2]\n"
PETS_CSV = (
    "pet,PARENT_KEY,KEY\n"
    "cat,uuid:1/hh/member[1],uuid:1/hh/member[1]/pets[1]\n"
    "dog,uuid:1/hh/member[1],uuid:1/hh/member[1]/pets[2]\n"
)


class ListSource:
    """Rows held in lists, handed out in batches of two (so batching is exercised)."""

    def __init__(self, rows: dict[str | None, list[Row]]) -> None:
        self.rows = rows

    async def batches(self, table: Table) -> AsyncIterator[Sequence[Row]]:
        rows = self.rows.get(table.repeat_path, [])
        for start in range(0, len(rows), 2):
            yield rows[start : start + 2]


SOURCE = ListSource({None: [FIRST, SECOND], "/hh/member": MEMBERS, "/hh/member/pets": PETS})


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


def test_tables_follow_centrals_layout() -> None:
    tables = build_tables(SCHEMA)
    assert [t.file_name for t in tables] == [
        "household_survey.csv",
        "household_survey-member.csv",
        "household_survey-pets.csv",
    ]
    assert [t.repeat_path for t in tables] == [None, "/hh/member", "/hh/member/pets"]


def test_group_paths_false_uses_field_names() -> None:
    root = build_tables(SCHEMA, group_paths=False)[0]
    assert "inner" in root.headers and "deep" in root.headers and "instanceID" in root.headers
    assert not any("grp-" in h for h in root.headers)


def test_split_select_multiples_adds_seen_values() -> None:
    root = build_tables(SCHEMA, select_values={"/colours": ["blue", "red"]})[0]
    at = root.headers.index("colours")
    assert root.headers[at : at + 3] == ["colours", "colours/blue", "colours/red"]


def test_repeats_sharing_a_name_are_numbered() -> None:
    # Rename the nested repeat `pets` to `member`: two repeats named `member`.
    schema = read_schema(XFORM.replace(b"pets", b"member"))
    names = [t.file_name for t in build_tables(schema)]
    assert names[1:] == ["household_survey-member~1.csv", "household_survey-member~2.csv"]


async def test_csv_matches_the_hand_written_expectation() -> None:
    tables = build_tables(SCHEMA)
    assert (await _collect(render.csv_chunks(tables[0], SOURCE))).decode() == ROOT_CSV
    assert (await _collect(render.csv_chunks(tables[1], SOURCE))).decode() == MEMBER_CSV
    assert (await _collect(render.csv_chunks(tables[2], SOURCE))).decode() == PETS_CSV


async def test_split_select_multiple_cells_are_zero_or_one() -> None:
    root = build_tables(SCHEMA, select_values={"/colours": ["blue", "red"]})[0]
    text = (await _collect(render.csv_chunks(root, SOURCE))).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["colours/blue"], r["colours/red"]) for r in rows] == [("1", "1"), ("0", "0")]


def test_lone_carriage_return_is_quoted() -> None:
    assert CsvEncoder().encode([["a\rb", "c"]]) == b'"a\rb",c\n'


async def test_zip_holds_every_table_and_the_media(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    photo = b"\xff\xd8jpeg-bytes" * 100_000
    ref = blobs.put(photo)

    async def media() -> AsyncIterator[MediaFile]:
        yield MediaFile("p.jpg", ref.sha256, ref.size)

    counted: list[int] = []

    async def progress(rows: int) -> None:
        counted.append(rows)

    body = await _collect(render.csv_zip(build_tables(SCHEMA), SOURCE, media(), blobs, progress).__aiter__())
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.namelist() == [
        "household_survey.csv",
        "household_survey-member.csv",
        "household_survey-pets.csv",
        "media/p.jpg",
    ]
    assert archive.read("household_survey.csv").decode() == ROOT_CSV
    assert archive.read("household_survey-pets.csv").decode() == PETS_CSV
    assert archive.read("media/p.jpg") == photo
    assert archive.testzip() is None
    assert sum(counted) == 2


async def test_csv_with_labels_in_french() -> None:
    root = build_tables(SCHEMA)[0]
    text = (await _collect(render.csv_chunks(root, SOURCE, labeller=Labeller("fr")))).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][1] == "Nom" and rows[0][9] == "Statut"
    assert rows[1][9] == "Proprietaire" and rows[2][9] == "Locataire"
    assert rows[1][8] == "Red, Blue"
    assert rows[1][2] == "30"


async def test_xlsx_reads_back_with_openpyxl(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    await render.write_xlsx(path, build_tables(SCHEMA), SOURCE)
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["household_survey", "member", "pets"]
    root = list(book["household_survey"].iter_rows(values_only=True))
    assert root[0][:3] == ("SubmissionDate", "name", "age")
    assert root[1][1] == 'Ana, "the" first' and root[1][2] == 30 and root[1][3] == 61.5
    assert root[1][4] == -1.5 and root[1][0] == datetime(2026, 1, 2, 3, 4, 5, 678_000)
    assert root[2][1] == "Bo" and root[2][2] is None
    pets = list(book["pets"].iter_rows(values_only=True))
    assert pets[1] == ("cat", "uuid:1/hh/member[1]", "uuid:1/hh/member[1]/pets[1]")


async def test_xlsx_never_turns_text_into_formulas(tmp_path: Path) -> None:
    hostile = RootRow(3, "uuid:3", datetime(2026, 1, 3, tzinfo=UTC), {"/name": '=HYPERLINK("http://x")'})
    path = tmp_path / "out.xlsx"
    table = build_tables(SCHEMA)[0]
    await render.write_xlsx(path, [table], ListSource({None: [hostile]}))
    cell = openpyxl.load_workbook(path)["household_survey"]["B2"]
    assert cell.value == '=HYPERLINK("http://x")' and cell.data_type == "s"


async def test_xlsx_continues_past_the_sheet_row_limit(tmp_path: Path) -> None:
    from odk_mcp.services.aggregation.exports.writers.xlsx import XlsxWriter

    path = tmp_path / "out.xlsx"
    writer = XlsxWriter(path, max_rows=3)
    writer.start_table("t", ["a"])
    writer.write([[1], [2], [3], [4], [5]])
    writer.close()
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["t", "t (2)", "t (3)"]
    values = [r[0] for name in book.sheetnames for r in book[name].iter_rows(min_row=2, values_only=True)]
    assert values == [1, 2, 3, 4, 5]


async def test_parquet_has_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    root = build_tables(SCHEMA, select_values={"/colours": ["blue", "red"]})[0]
    await render.write_parquet(path, root, SOURCE)
    table = pq.read_table(path)
    types = {f.name: str(f.type) for f in table.schema}
    assert types["age"] == "int64" and types["weight"] == "double"
    assert types["location-Latitude"] == "double" and types["colours/red"] == "int8"
    assert types["SubmissionDate"] == "timestamp[ms, tz=UTC]" and types["name"] == "string"
    data = table.to_pylist()
    assert data[0]["age"] == 30 and data[0]["location-Longitude"] == 36.25 and data[1]["age"] is None
    assert data[1]["weight"] == 0.00001 and data[0]["KEY"] == "uuid:1"


async def test_sav_has_variable_and_value_labels(tmp_path: Path) -> None:
    path = tmp_path / "out.sav"
    root = build_tables(SCHEMA, select_values={"/colours": ["blue", "red"]})[0]
    await render.write_sav(path, root, SOURCE, Labeller("en"), max_rows=10)
    frame, meta = pyreadstat.read_sav(str(path), output_format="dict")
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["name"] == "Name (name)"
    assert labels["grp_inner"] == "Inner (grp-inner)"
    assert labels["colours_red"] == "Colours: Red"
    assert meta.variable_value_labels["tenure"] == {"own": "Owned", "rent": "Rented"}
    assert meta.variable_value_labels["colours_red"] == {0: "Not selected", 1: "Selected"}
    assert frame["tenure"] == ["own", "rent"] and frame["age"][0] == 30
    assert frame["location_Latitude"][0] == -1.5


async def test_sav_refuses_more_rows_than_its_cap(tmp_path: Path) -> None:
    root = build_tables(SCHEMA)[0]
    with pytest.raises(Problem) as caught:
        await render.write_sav(tmp_path / "x.sav", root, SOURCE, Labeller(None), max_rows=1)
    assert caught.value.code == 422.2 and not (tmp_path / "x.sav").exists()


async def test_geojson_is_a_feature_collection() -> None:
    root = build_tables(SCHEMA)[0]
    geo = SCHEMA.field("/location")
    document = json.loads(await _collect(render.geojson_chunks(root, SOURCE, geo)))
    assert document["type"] == "FeatureCollection" and len(document["features"]) == 2
    first, second = document["features"]
    assert first["geometry"] == {"type": "Point", "coordinates": [36.25, -1.5, 1700.0]}
    assert first["id"] == "uuid:1" and first["properties"]["age"] == 30
    assert first["properties"]["SubmissionDate"] == "2026-01-02T03:04:05.678000Z"
    assert second["geometry"] is None


def test_geotrace_and_geoshape_geometries() -> None:
    trace = SCHEMA.fields[0].__class__(
        path="/t", name="t", type="geotrace", repeat=None, binary=False, select_multiple=False
    )
    assert geometry(trace, "1 2 0 0;3 4 0 0") == {
        "type": "LineString",
        "coordinates": [[2.0, 1.0, 0.0], [4.0, 3.0, 0.0]],
    }
    shape = trace.__class__(
        path="/s", name="s", type="geoshape", repeat=None, binary=False, select_multiple=False
    )
    polygon = geometry(shape, "0 0;0 1;1 1")
    assert polygon is not None and polygon["coordinates"][0][0] == polygon["coordinates"][0][-1]
    assert geometry(trace, "91 0;0 0") is None


def test_options_parse_like_central_and_refuse_nonsense() -> None:
    options = parse_options({"groupPaths": "False", "splitSelectMultiples": "true", "$filter": " x "})
    assert not options.group_paths and options.split_select_multiples and options.filter == "x"
    with pytest.raises(Problem) as caught:
        parse_options({"groupPaths": "maybe"})
    assert caught.value.code == 400.11
    with pytest.raises(Problem) as unknown:
        parse_options({"colour": "red"}, strict=True)
    assert unknown.value.code == 400.4
    assert ExportFormat.parse(".sav") is ExportFormat.SAV
    with pytest.raises(Problem):
        ExportFormat.parse("exe")


def test_media_names_cannot_leave_the_media_folder() -> None:
    from odk_mcp.services.aggregation.exports.writers.archive import media_member_name

    assert media_member_name("../../etc/passwd") == "media/....etcpasswd"
    assert media_member_name("a\\b:c.jpg") == "media/abc.jpg"
    assert media_member_name("..") == "media/_"
