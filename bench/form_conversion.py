"""Cost of turning an XLSForm into a published form, against pyxform alone on the same bytes.

Generates realistic XLSForms (XLSX via openpyxl) of 200, 1,000 and 3,000 questions: text,
integer, decimal, select_one / select_multiple over shared choice lists, date, geopoint, groups,
one repeat, relevant / constraint / required expressions, labels and hints in two languages.
For each size and round (a new form id each round, set on the settings sheet) it times, on
the same bytes and interleaved (the order rotates every round):

  pyxform     pyxform.xls2xform.convert in this process (the baseline)
  converter   our Converter.convert alone (pebble worker process, zip check, pickling back)
  upload      POST /v1/projects/{p}/forms?publish=true through the real app in-process (httpx
              ASGI transport, fresh embedded PostgreSQL): store the upload, convert in the
              worker, parse the XForm once, store the definition; answered synchronously

Inside each upload, wrappers (set on the app's objects by this script, src untouched) time its
stages: the worker conversion, parse_definition (safe parse, schema, attachments, hashes; on the
event loop) and FormCatalog.create (the form-creation transaction, which also serialises the
schema twice: the definition row and the form.published event); "other" is the rest (HTTP,
blob write, conversions row). Separately, one schema.to_json() + json.dumps is timed, and, during
each upload, the longest stall of the event loop (a 5 ms timer task running late): what every
other request on the server (OpenRosa submissions included) waits while the upload finishes.

Prints medians and ratios to pyxform. Usage: python bench/form_conversion.py [rounds]
(3,000 questions run max(2, rounds // 2) rounds; one untimed warm-up round per size).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
from openpyxl import Workbook
from pyxform.xls2xform import convert
from sqlalchemy import text

import odk_mcp.services.forms.uploads as uploads_module
from odk_mcp.bootstrap import build_container
from odk_mcp.gateway import create_app
from odk_mcp.gateway.logs import configure_logging
from odk_mcp.infra import migrations
from odk_mcp.infra.embedded_postgres import EmbeddedPostgres
from odk_mcp.kernel.actor import SYSTEM
from odk_mcp.services.forms.catalog import parse_definition
from odk_mcp.settings import Settings

EMAIL, PASSWORD = "bench@example.org", "bench password 123"
SIZES = (200, 1_000, 3_000)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LANGS = ("English (en)", "Français (fr)")
MAX_FORM_BYTES = 50_000_000
METHODS = ("pyxform", "converter", "upload")

# Shared choice lists: name → choice values (labels are derived, in both languages).
CHOICE_LISTS = {
    "yesno": ["yes", "no"],
    "yesnodk": ["yes", "no", "dk"],
    "likert": ["strongly_disagree", "disagree", "neutral", "agree", "strongly_agree"],
    "frequency": ["never", "rarely", "sometimes", "often", "always"],
    "water": ["piped", "well", "borehole", "spring", "river", "rain", "vendor", "truck", "other"],
    "crops": [f"crop_{i:02d}" for i in range(20)],
    "assets": [f"asset_{i:02d}" for i in range(15)],
    "education": ["none", "primary", "secondary", "vocational", "university", "postgraduate"],
    "relation": ["head", "spouse", "child", "parent", "sibling", "grandchild", "other_relative", "other"],
    "district": [f"district_{i:03d}" for i in range(60)],
}
SINGLE_LISTS = ("yesno", "yesnodk", "likert", "frequency", "water", "education", "relation", "district")
MULTI_LISTS = ("crops", "assets", "water")
GROUP_SIZE = 25


def _question(i: int, kind: str, previous_yesno: str | None) -> list[Any]:
    """A survey row: type, name, labels, hints, required, relevant, constraint, constraint messages."""
    name = f"q{i:04d}"
    hint = ("Answer as precisely as you can.", "Répondez aussi précisément que possible.")
    required = "yes" if i % 3 == 0 else ""
    relevant = f"${{{previous_yesno}}} = 'yes'" if previous_yesno and i % 4 == 1 else ""
    constraint, message = "", ("", "")
    if kind == "integer":
        constraint, message = ". >= 0 and . <= 1000", ("Between 0 and 1000", "Entre 0 et 1000")
    elif kind == "decimal":
        constraint, message = ". > 0", ("Must be positive", "Doit être positif")
    elif kind == "date":
        constraint, message = ". <= today()", ("Not in the future", "Pas dans le futur")
    elif kind == "text" and i % 2 == 0:
        constraint, message = "string-length(.) <= 200", ("At most 200 characters", "200 caractères au plus")
    elif kind.startswith("select_multiple"):
        constraint, message = "count-selected(.) <= 5", ("At most five", "Cinq au plus")
    return [
        kind,
        name,
        f"Question {i}: how would you describe item {i}?",
        f"Question {i} : comment décririez-vous l'élément {i} ?",
        hint[0] if i % 5 == 0 else "",
        hint[1] if i % 5 == 0 else "",
        required,
        relevant,
        constraint,
        *message,
    ]


def _kinds(i: int) -> str:
    cycle = (
        "text",
        "integer",
        f"select_one {SINGLE_LISTS[i % len(SINGLE_LISTS)]}",
        "decimal",
        "select_one yesno",
        f"select_multiple {MULTI_LISTS[i % len(MULTI_LISTS)]}",
        "date",
        "text",
        "integer",
        "geopoint",
    )
    return cycle[i % len(cycle)]


def xlsform(questions: int) -> Workbook:
    """A workbook of `questions` questions in groups of 25, one repeat of about 5 % of them."""
    book = Workbook()
    survey = book.active
    assert survey is not None
    survey.title = "survey"
    survey.append(
        [
            "type",
            "name",
            *(f"label::{lang}" for lang in LANGS),
            *(f"hint::{lang}" for lang in LANGS),
            "required",
            "relevant",
            "constraint",
            *(f"constraint_message::{lang}" for lang in LANGS),
        ]
    )
    survey.append(["start", "start"])
    survey.append(["end", "end"])
    repeat_at, repeat_size = questions // 2, max(10, questions // 20)
    i = 0
    group = 0
    while i < questions:
        in_repeat = i == repeat_at - repeat_at % GROUP_SIZE
        size = repeat_size if in_repeat else GROUP_SIZE
        group += 1
        opener = "begin_repeat" if in_repeat else "begin_group"
        title = ("Household member", "Membre du ménage") if in_repeat else (f"Section {group}",) * 2
        survey.append([opener, f"{'member' if in_repeat else 'section'}_{group}", *title])
        previous_yesno = None
        for _ in range(min(size, questions - i)):
            kind = _kinds(i)
            survey.append(_question(i, kind, previous_yesno))
            if kind == "select_one yesno":
                previous_yesno = f"q{i:04d}"
            i += 1
        survey.append(["end_repeat" if in_repeat else "end_group"])
    choices = book.create_sheet("choices")
    choices.append(["list_name", "name", *(f"label::{lang}" for lang in LANGS)])
    for list_name, values in CHOICE_LISTS.items():
        for value in values:
            choices.append([list_name, value, value.replace("_", " ").title(), f"« {value} »"])
    settings = book.create_sheet("settings")
    settings.append(["form_id", "form_title", "version", "default_language"])
    settings.append(["placeholder", f"Benchmark survey ({questions} questions)", "2026112601", LANGS[0]])
    return book


def xlsx_bytes(book: Workbook, form_id: str) -> bytes:
    book["settings"]["A2"] = form_id
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class Stages:
    """Wraps the upload path's stages (on the app's objects) and keeps their last durations."""

    def __init__(self, container: Any) -> None:
        self.last: dict[str, float] = {}
        converter, catalog = container.forms.converter, container.forms.catalog
        converter.convert = self._async("convert", converter.convert)
        catalog.create = self._async("create", catalog.create)
        uploads_module.parse_definition = self._sync("parse", uploads_module.parse_definition)  # type: ignore[assignment]

    def _async(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.last[name] = time.perf_counter() - started

        return wrapper

    def _sync(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.last[name] = time.perf_counter() - started

        return wrapper


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


async def atimed(make: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await make()
    return time.perf_counter() - started, result


async def loop_stalls(out: dict[str, float], tick: float = 0.005) -> None:
    """While cancelled by the caller: the longest time the event loop could not run a 5 ms timer."""
    out["stall"] = 0.0
    last = time.perf_counter()
    while True:
        await asyncio.sleep(tick)
        now = time.perf_counter()
        out["stall"] = max(out["stall"], now - last - tick)
        last = now


async def one_round(
    client: httpx.AsyncClient,
    container: Any,
    stages: Stages,
    headers: dict[str, str],
    pid: int,
    data: bytes,
    turn: int,
) -> dict[str, float]:
    """Each method once on the same bytes, in an order rotated by `turn`; then the upload's stages."""
    out: dict[str, float] = {}
    xform = b""

    def pyxform() -> None:
        warnings: list[str] = []
        out["pyxform"], result = timed(
            lambda: convert(xlsform=io.BytesIO(data), file_type=".xlsx", warnings=warnings)
        )
        assert result.xform and not warnings, warnings

    async def converter() -> None:
        nonlocal xform
        out["converter"], result = await atimed(
            lambda: container.forms.converter.convert(data, ".xlsx", None)
        )
        assert result.error is None and not result.warnings, (result.error, result.warnings)
        xform = result.xform.encode()

    async def upload() -> None:
        stages.last.clear()
        ticker = asyncio.create_task(loop_stalls(out))
        out["upload"], response = await atimed(
            lambda: client.post(
                f"/v1/projects/{pid}/forms",
                params={"publish": "true"},
                content=data,
                headers={**headers, "Content-Type": XLSX},
            )
        )
        ticker.cancel()
        assert response.status_code == 200, response.text
        out.update({f"in_{name}": seconds for name, seconds in stages.last.items()})

    steps: list[Callable[[], Any]] = [pyxform, converter, upload]
    for k in range(len(steps)):
        step = steps[(k + turn) % len(steps)]
        if asyncio.iscoroutinefunction(step):
            await step()
        else:
            step()
    out["in_other"] = out["upload"] - out["in_convert"] - out["in_parse"] - out["in_create"]
    definition = parse_definition(xform, MAX_FORM_BYTES)
    out["to_json"], payload = timed(lambda: json.dumps(definition.schema.to_json()))
    out["xform_kb"] = len(xform) / 1024
    out["schema_kb"] = len(payload) / 1024
    out["fields"] = len(definition.schema.fields)
    out["xlsx_kb"] = len(data) / 1024
    return out


STORED = text(
    "SELECT avg(pg_column_size(d.xml)) / 1024, avg(pg_column_size(d.schema)) / 1024,"
    " (SELECT avg(pg_column_size(o.payload)) / 1024 FROM events.outbox o"
    "  WHERE o.event = 'form.published' AND o.payload->>'xmlFormId' LIKE :pattern)"
    " FROM forms.form_defs d JOIN forms.forms f ON f.id = d.form_id WHERE f.xml_form_id LIKE :pattern"
)


async def run(url: str, data_dir: Path, rounds: int) -> None:
    settings = Settings(database_url=url, data_dir=data_dir, log_level="ERROR", conversion_wait_seconds=600.0)  # type: ignore[call-arg]
    container = build_container(settings, url)
    stages = Stages(container)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(container=container)),
        base_url="http://bench",
        timeout=900,
    )
    login = await client.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
    headers = {"Authorization": "Bearer " + login.json()["token"]}
    pid = (await client.post("/v1/projects", json={"name": "Bench"}, headers=headers)).json()["id"]
    books = {n: xlsform(n) for n in SIZES}
    samples: dict[int, list[dict[str, float]]] = {n: [] for n in SIZES}
    loads = [os.getloadavg()]
    started = time.perf_counter()
    for n in SIZES:  # warm-up: worker spawn and imports, pyxform caches, connection pool
        data = xlsx_bytes(books[n], f"warm_{n}")
        await one_round(client, container, stages, headers, pid, data, 0)
    for r in range(rounds):
        for n in SIZES:
            if n >= 3_000 and r >= max(2, rounds // 2):
                continue
            data = xlsx_bytes(books[n], f"bench_{n}_{r}")
            samples[n].append(await one_round(client, container, stages, headers, pid, data, r))
        loads.append(os.getloadavg())
    elapsed = time.perf_counter() - started

    def med(n: int, key: str) -> float:
        return statistics.median(s[key] for s in samples[n])

    print(
        f"{'questions':>9} {'n':>2} {'pyxform s':>9} {'ours s':>7} {'ratio':>6}"
        f" {'converter s':>11} {'conv/pyx':>8}"
    )
    for n in SIZES:
        base, ours, alone = med(n, "pyxform"), med(n, "upload"), med(n, "converter")
        print(
            f"{n:>9} {len(samples[n]):>2} {base:>9.3f} {ours:>7.3f}"
            f" {ours / base:>6.2f} {alone:>11.3f} {alone / base:>8.2f}"
        )
    print("\ninside the upload (medians, s): worker conversion, parse_definition, create transaction, other")
    print(
        f"{'questions':>9} {'convert':>8} {'parse':>7} {'create':>7} {'other':>7}"
        f" {'to_json x1':>10} {'max loop stall':>14}"
    )
    for n in SIZES:
        print(
            f"{n:>9} {med(n, 'in_convert'):>8.3f} {med(n, 'in_parse'):>7.3f} {med(n, 'in_create'):>7.3f}"
            f" {med(n, 'in_other'):>7.3f} {med(n, 'to_json'):>10.3f}"
            f" {med(n, 'stall'):>14.3f}"
        )
    print(
        "\nsizes (KB): XLSX upload, XForm, schema JSON; stored per form: xml, schema, outbox event (TOASTed)"
    )
    print(
        f"{'questions':>9} {'fields':>6} {'xlsx':>6} {'xform':>6} {'schema':>6}"
        f" {'db xml':>6} {'db schema':>9} {'db event':>8}"
    )
    async with container.db.read() as conn:
        for n in SIZES:
            xml, schema, event = (await conn.execute(STORED, {"pattern": f"%\\_{n}\\_%"})).one()
            print(
                f"{n:>9} {med(n, 'fields'):>6.0f} {med(n, 'xlsx_kb'):>6.0f} {med(n, 'xform_kb'):>6.0f}"
                f" {med(n, 'schema_kb'):>6.0f} {float(xml):>6.0f} {float(schema):>9.0f}"
                f" {float(event or 0):>8.0f}"
            )
    print(
        "\nload average (1 min) per round: "
        + " ".join(f"{load[0]:.2f}" for load in loads)
        + f"   cores: {os.cpu_count()}   timed part: {elapsed:.0f} s"
    )
    await client.aclose()
    await container.close()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    configure_logging("ERROR", json_lines=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata")
        url = server.start()
        try:
            migrations.upgrade(url)
            settings = Settings(database_url=url, data_dir=Path(tmp))  # type: ignore[call-arg]

            async def seed() -> None:
                container = build_container(settings, url)
                await container.users.accounts.create_user(SYSTEM, EMAIL, PASSWORD, None)
                await container.users.accounts.promote(SYSTEM, EMAIL)
                await container.db.dispose()

            asyncio.run(seed())
            asyncio.run(run(url, Path(tmp), rounds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
