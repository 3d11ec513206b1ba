"""OpenRosa ingestion throughput and latency against the real server, with two same-run ceilings.

Starts `python -m odk_mcp serve` in its own process (embedded PostgreSQL 18, durable commits:
fsync and synchronous_commit on), creates an administrator with `odk-mcp user create`, then over
real HTTP: a project, a published 30-question household XForm with a repeat group, an app user
assigned to it. Each submission is ≈ 2.2 KB of XML with a unique instanceID, posted as ODK Collect
does: multipart/form-data (`xml_submission_file`) to `/v1/key/{token}/projects/{p}/submission`
with `?deviceID=`, `X-OpenRosa-Version` and a Collect user agent (Collect's preceding HEAD is not
sent). The load generator is a minimal HTTP/1.1 keep-alive client on asyncio streams with uvloop
(one connection per client, closed loop: the next request leaves when the answer is in); it runs
in this process and shares the 2 cores with the server and PostgreSQL, so its CPU is reported.

Phases, all at 1, 8 and 32 concurrent clients, interleaved in rounds (the order rotates every
round; each phase 0.5 s warm-up, then `--seconds` measured; completions inside the window count):

  submit      the OpenRosa POST above (201 expected)
  healthz     GET /healthz: the HTTP ceiling (a no-op route of the same app, same middleware)
  post-404    the same multipart POST, with the same headers, to `/v1/key/{token}/projects/{p}/
              submission-noop`: no route, so 404 after the same middleware and route scan, with
              no body parsing and no database work: the HTTP ceiling with the request body on the wire

and the storage ceiling, straight into the same PostgreSQL with psycopg (no HTTP, no Python
server), writing the same rows the server writes per submission (checked: one `submissions`, one
`versions`, one `events.audits` and one `events.outbox` row, no attachment rows for this form;
copies of the server's own rows for a sample submission, so payload sizes are identical, with a
new instanceID each), ids from the sequences, `current_version_id` set by one UPDATE per batch
(the two tables reference each other with immediate foreign keys):

  copy x256    COPY into each table, one transaction per batch of 256 submissions (the ceiling)
  many x32     executemany (pipelined), one transaction per batch of 32
  row x1       one transaction per submission, one connection
  row x32      one transaction per submission, 32 connections in parallel

The storage ceiling's outbox rows fan out to event deliveries like the server's (the same trigger);
they are not the server's work, so after each ceiling phase its pending deliveries are marked done
(untimed) instead of being left to the server's worker during later phases. Each submit phase
starts with the event consumers caught up (no open delivery, waited for untimed); after it, the
open deliveries left and the time the consumers take to finish them are recorded. A final
`--sustain` phase (15 s at 32 clients) samples the open deliveries every second and times the
drain after it: whether incremental processing (read model, quality checks, entities, webhooks)
keeps pace with ingestion.

CPU per phase (psutil: the server process and its event-loop thread, every PostgreSQL process,
this process) is printed per request. After the rounds, untimed: transactions and tuples per
submission from pg_stat_database around a short submit phase. With `--profile DIR` (py-spy on PATH
or next to this interpreter), the server is then sampled by py-spy (50 Hz, raw collapsed stacks per
thread; sampling slows the server) during a further submit phase at 32 and at 1 client(s), and the
event-loop thread's hottest functions are printed.

With `--no-worker` the server runs without its in-process event worker
(`ODK_MCP_WORKER_IN_PROCESS=false`): events are written but stay pending, so the figures are
ingestion alone, without the event consumers (read model, webhooks) that otherwise share the
process's CPU.

Usage: python bench/ingestion.py [--rounds 5] [--seconds 4] [--sustain 15] [--profile DIR] [--no-worker]
(≈ 6 min on a quiet machine)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx
import psutil
import psycopg
import uvloop
from psycopg.rows import dict_row

from odk_mcp.infra.embedded_postgres import EmbeddedPostgres

EMAIL, PASSWORD = "bench@example.org", "a long benchmark passphrase"
CONCURRENCY = (1, 8, 32)
WARM_UP = 0.5
FORM_ID, FORM_VERSION = "household", "2026112601"
USER_AGENT = (
    "org.odk.collect.android/v2024.3.2 Dalvik/2.1.0 (Linux; U; Android 13; Pixel 6 Build/TQ3A.230901.001)"
)
BOUNDARY = "odkbench7MA4YWxkTrZu0gW"
CEILING_PREFIX = "uuid:ffffffff-"  # instanceIDs of storage-ceiling rows (the server's are uuid4)
DRAIN_LIMIT = 300.0  # seconds to wait for the event consumers to catch up

# -- the form: 30 questions (24 + 6 in a repeat), groups, selects over shared lists ---------------

LISTS: dict[str, list[str]] = {
    "enumerator": [f"enum_{i:02d}" for i in range(1, 11)],
    "district": [f"district_{i:03d}" for i in range(1, 61)],
    "yesno": ["yes", "no"],
    "sex": ["female", "male", "other"],
    "water": ["piped", "well", "borehole", "spring", "river", "rain", "vendor", "truck", "other"],
    "toilet": ["flush", "pit_slab", "pit_open", "composting", "bucket", "none"],
    "fuel": ["electricity", "gas", "kerosene", "charcoal", "wood", "dung", "other"],
    "assets": [f"asset_{i:02d}" for i in range(1, 16)],
    "crops": [f"crop_{i:02d}" for i in range(1, 21)],
    "shocks": ["drought", "flood", "illness", "death", "job_loss", "price_rise", "conflict", "none"],
    "relation": ["head", "spouse", "child", "parent", "sibling", "grandchild", "other_relative", "other"],
    "education": ["none", "primary", "secondary", "vocational", "university"],
}

# (path under /data, bind type, choice list, select_multiple, constraint, relevant)
Q = tuple[str, str, str | None, bool, str | None, str | None]
QUESTIONS: list[Q] = [
    ("enumerator", "select1", "enumerator", False, None, None),
    ("district", "select1", "district", False, None, None),
    ("village", "string", None, False, "string-length(.) <= 80", None),
    ("gps", "geopoint", None, False, None, None),
    ("interview_date", "date", None, False, ". <= today()", None),
    ("consent", "select1", "yesno", False, None, None),
    ("respondent/name", "string", None, False, None, "/data/consent = 'yes'"),
    ("respondent/age", "int", None, False, ". >= 15 and . <= 110", "/data/consent = 'yes'"),
    ("respondent/sex", "select1", "sex", False, None, "/data/consent = 'yes'"),
    ("respondent/phone", "string", None, False, "regex(., '^[0-9+ ]{6,16}$')", None),
    ("hh_size", "int", None, False, ". >= 1 and . <= 40", None),
    ("housing/water_source", "select1", "water", False, None, None),
    ("housing/water_minutes", "int", None, False, ". >= 0 and . <= 600", None),
    ("housing/toilet", "select1", "toilet", False, None, None),
    ("housing/electricity", "select1", "yesno", False, None, None),
    ("housing/cooking_fuel", "select1", "fuel", False, None, None),
    ("assets", "string", "assets", True, "count-selected(.) <= 10", None),
    ("crops", "string", "crops", True, None, None),
    ("land_ha", "decimal", None, False, ". >= 0", None),
    ("livestock", "int", None, False, ". >= 0", None),
    ("income_month", "decimal", None, False, ". >= 0", None),
    ("food_days", "int", None, False, ". >= 0 and . <= 7", None),
    ("shocks", "string", "shocks", True, None, None),
    ("member/m_name", "string", None, False, None, None),
    ("member/m_age", "int", None, False, ". >= 0 and . <= 120", None),
    ("member/m_sex", "select1", "sex", False, None, None),
    ("member/m_relation", "select1", "relation", False, None, None),
    ("member/m_education", "select1", "education", False, None, None),
    ("member/m_works", "select1", "yesno", False, None, None),
    ("notes", "string", None, False, None, None),
]
assert len(QUESTIONS) == 30

TOP = [
    ("enumerator", "enum_07"),
    ("district", "district_042"),
    ("village", "Kasungu Boma, ward 4"),
    ("gps", "-13.03412345 33.48123456 1034.2 4.5"),
    ("interview_date", "2026-11-26"),
    ("consent", "yes"),
]
RESPONDENT = [("name", "Chikondi Banda"), ("age", "43"), ("sex", "female"), ("phone", "+265 991 234 567")]
HOUSING = [
    ("water_source", "borehole"),
    ("water_minutes", "25"),
    ("toilet", "pit_slab"),
    ("electricity", "no"),
    ("cooking_fuel", "wood"),
]
AFTER = [
    ("assets", "asset_02 asset_05 asset_11"),
    ("crops", "crop_01 crop_04 crop_09 crop_13"),
    ("land_ha", "1.75"),
    ("livestock", "6"),
    ("income_month", "85000.50"),
    ("food_days", "5"),
    ("shocks", "drought price_rise"),
]
MEMBERS = [
    ("Chikondi Banda", "43", "female", "head", "secondary", "yes"),
    ("Mphatso Banda", "46", "male", "spouse", "primary", "yes"),
    ("Tiyamike Banda", "17", "female", "child", "secondary", "no"),
    ("Kondwani Banda", "12", "male", "child", "primary", "no"),
    ("Alinafe Banda", "7", "female", "child", "primary", "no"),
]
NOTES = (
    "Household interviewed at home; head of household answered, spouse present for the income "
    "questions. Borehole shared with three neighbouring households."
)


def xform() -> bytes:
    """The XForm: instance, binds (types, constraints, relevance, preloads), body with choices."""
    groups: dict[str, list[str]] = {}
    for path, *_ in QUESTIONS:
        head, _, leaf = path.rpartition("/")
        groups.setdefault(head, []).append(leaf)
    member = "".join(f"<{leaf}/>" for leaf in groups["member"])

    def node(name: str) -> str:
        if name in ("respondent", "housing"):
            return f"<{name}>" + "".join(f"<{leaf}/>" for leaf in groups[name]) + f"</{name}>"
        return f"<{name}/>"

    top = groups[""]
    order = ["start", "end", "today", "deviceid", *top[:6], "respondent", "hh_size", "housing"]
    order += [*top[7:-1], "member", "notes"]
    instance = "".join(
        f'<member jr:template="">{member}</member>' if n == "member" else node(n) for n in order
    )
    binds = [
        '<bind nodeset="/data/start" type="dateTime" jr:preload="timestamp" jr:preloadParams="start"/>',
        '<bind nodeset="/data/end" type="dateTime" jr:preload="timestamp" jr:preloadParams="end"/>',
        '<bind nodeset="/data/today" type="date" jr:preload="date" jr:preloadParams="today"/>',
        '<bind nodeset="/data/deviceid" type="string" jr:preload="property" jr:preloadParams="deviceid"/>',
    ]
    body = []
    for path, kind, choices, multiple, constraint, relevant in QUESTIONS:
        attrs = f' nodeset="/data/{path}" type="{kind}" required="true()"'
        if constraint:
            attrs += f' constraint={quoteattr(constraint)} jr:constraintMsg="Check this answer"'
        if relevant:
            attrs += f" relevant={quoteattr(relevant)}"
        binds.append(f"<bind{attrs}/>")
        label = f"<label>{path.rpartition('/')[2].replace('_', ' ').capitalize()}?</label>"
        if choices:
            items = "".join(
                f"<item><label>{v.replace('_', ' ')}</label><value>{v}</value></item>" for v in LISTS[choices]
            )
            tag = "select" if multiple else "select1"
            body.append(f'<{tag} ref="/data/{path}">{label}{items}</{tag}>')
        else:
            body.append(f'<input ref="/data/{path}">{label}</input>')
    binds.append('<bind nodeset="/data/meta/instanceID" type="string" readonly="true()"/>')
    binds.append(
        '<bind nodeset="/data/meta/instanceName" type="string" '
        "calculate=\"concat(/data/respondent/name, ' ', /data/interview_date)\"/>"
    )
    repeat_body = [b for b in body if 'ref="/data/member/' in b]
    body = [b for b in body if 'ref="/data/member/' not in b]
    body.insert(-1, '<group ref="/data/member"><label>Member</label><repeat nodeset="/data/member">')
    body.insert(-1, "".join(repeat_body) + "</repeat></group>")
    return (
        '<?xml version="1.0"?>\n'
        '<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" '
        'xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">'
        "<h:head><h:title>Household survey</h:title><model>"
        f'<instance><data id="{FORM_ID}" version="{FORM_VERSION}">{instance}'
        "<meta><instanceID/><instanceName/></meta></data></instance>"
        + "".join(binds)
        + "</model></h:head><h:body>"
        + "".join(body)
        + "</h:body></h:html>"
    ).encode()


INSTANCE_MARK = "uuid:00000000-0000-4000-8000-000000000000"  # same length as any uuid4 instanceID


def submission_xml() -> bytes:
    """A filled-in household, as Collect serialises it; INSTANCE_MARK stands for the instanceID."""

    def fields(pairs: list[tuple[str, str]]) -> str:
        return "".join(f"<{k}>{v}</{k}>" for k, v in pairs)

    leaves = [q[0].rpartition("/")[2] for q in QUESTIONS if q[0].startswith("member/")]
    members = "".join(f"<member>{fields(list(zip(leaves, m, strict=True)))}</member>" for m in MEMBERS)
    return (
        "<?xml version='1.0' ?>"
        f'<data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" '
        f'id="{FORM_ID}" version="{FORM_VERSION}">'
        "<start>2026-11-26T08:01:02.117+02:00</start><end>2026-11-26T08:34:51.904+02:00</end>"
        "<today>2026-11-26</today><deviceid>collect:Xq3mZ8pL2vT9aB4c</deviceid>"
        + fields(TOP)
        + f"<respondent>{fields(RESPONDENT)}</respondent><hh_size>5</hh_size>"
        + f"<housing>{fields(HOUSING)}</housing>"
        + fields(AFTER)
        + members
        + f"<notes>{NOTES}</notes>"
        + f"<meta><instanceID>{INSTANCE_MARK}</instanceID>"
        + "<instanceName>Chikondi Banda 2026-11-26</instanceName></meta></data>"
    ).encode()


# -- a minimal HTTP/1.1 keep-alive client --------------------------------------------------------


class Requests:
    """Raw request bytes: the submission multipart with a fresh instanceID each time, or fixed."""

    def __init__(self, host: str, port: int, token: str, project_id: int) -> None:
        self.authority = f"{host}:{port}"
        self.submit_path = f"/v1/key/{token}/projects/{project_id}/submission"
        xml = submission_xml()
        before, after = xml.split(INSTANCE_MARK.encode())
        part_head = (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="xml_submission_file"; '
            f'filename="household_2026-11-26_08-34-51.xml"\r\n'
            "Content-Type: text/xml\r\n\r\n"
        ).encode()
        self.body_parts = (part_head + before, after + f"\r\n--{BOUNDARY}--\r\n".encode())
        self.body_length = len(part_head) + len(xml) + len(f"\r\n--{BOUNDARY}--\r\n")
        self.xml_bytes = len(xml)

    def _post_head(self, path: str, device: str) -> bytes:
        return (
            f"POST {path}?deviceID=collect%3A{device} HTTP/1.1\r\n"
            f"Host: {self.authority}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "X-OpenRosa-Version: 1.0\r\n"
            "Date: Thu, 26 Nov 2026 06:34:52 GMT\r\n"
            "Accept-Encoding: gzip\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {self.body_length}\r\n\r\n"
        ).encode()

    def submit(self, client: int) -> Callable[[], bytes]:
        head = self._post_head(self.submit_path, f"{client:016d}")
        first, last = self.body_parts

        def make() -> bytes:
            return b"".join((head, first, f"uuid:{uuid.uuid4()}".encode(), last))

        return make

    def post_404(self, client: int) -> Callable[[], bytes]:
        request = self._post_head(self.submit_path + "-noop", f"{client:016d}")
        request += b"".join((self.body_parts[0], INSTANCE_MARK.encode(), self.body_parts[1]))
        return lambda: request

    def healthz(self, client: int) -> Callable[[], bytes]:
        request = (
            f"GET /healthz HTTP/1.1\r\nHost: {self.authority}\r\nUser-Agent: {USER_AGENT}\r\n\r\n".encode()
        )
        return lambda: request


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"no content-length in {head!r}")
    length = int(lowered[at + 17 : lowered.index(b"\r\n", at + 2)])
    return status, await reader.readexactly(length)


# -- CPU accounting ------------------------------------------------------------------------------


class Cpu:
    """CPU seconds of the server process, all PostgreSQL processes, this process, and the
    server's main thread (its event loop; the rest of the server is anyio worker threads)."""

    def __init__(self, server_pid: int, pgdata: Path) -> None:
        self.server = psutil.Process(server_pid)
        self.postmaster = next(
            p
            for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "postgres" and str(pgdata) in " ".join(p.info["cmdline"] or [])
        )

    @staticmethod
    def _seconds(proc: psutil.Process) -> float:
        times = proc.cpu_times()
        return float(times.user + times.system)

    def sample(self) -> tuple[float, dict[int, float], float, float]:
        postgres: dict[int, float] = {}
        for proc in [self.postmaster, *self.postmaster.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                postgres[proc.pid] = self._seconds(proc)
        loop = next(t.user_time + t.system_time for t in self.server.threads() if t.id == self.server.pid)
        return self._seconds(self.server), postgres, time.process_time(), loop

    @staticmethod
    def delta(
        before: tuple[float, dict[int, float], float, float],
        after: tuple[float, dict[int, float], float, float],
    ) -> tuple[float, float, float, float]:
        pg = sum(t - before[1].get(pid, 0.0) for pid, t in after[1].items())
        return after[0] - before[0], pg, after[2] - before[2], after[3] - before[3]


# -- phases --------------------------------------------------------------------------------------


@dataclass
class Result:
    rate: float  # per second
    latencies: list[float] = field(default_factory=list)  # ms
    # CPU seconds in the window: server, postgres, generator, server's event-loop thread
    cpu: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    seconds: float = 0.0
    count: int = 0  # requests answered in the window, or rows stored
    total: int = 0  # requests answered in the whole phase (warm-up and overrun included)
    errors: Counter[str] = field(default_factory=Counter)


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def http_phase(
    host: str,
    port: int,
    makers: list[Callable[[], bytes]],
    expect: int,
    seconds: float,
    cpu: Cpu,
    during: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> Result:
    conns = [await asyncio.open_connection(host, port) for _ in makers]
    for _, writer in conns:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.perf_counter()
    window_start, window_end = started + WARM_UP, started + WARM_UP + seconds
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    totals = [0]

    async def client(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, make: Callable[[], bytes]
    ) -> None:
        perf = time.perf_counter
        while True:
            sent = perf()
            if sent >= window_end:
                return
            writer.write(make())
            status, body = await read_response(reader)
            done = perf()
            totals[0] += 1
            if status != expect:
                errors[f"{status} {body[:200]!r}"] += 1
            if window_start <= done < window_end:
                latencies.append((done - sent) * 1000)

    samples: list[Any] = []

    async def sampler() -> None:
        await asyncio.sleep(WARM_UP)
        samples.append(cpu.sample())
        if during is not None:
            await during()
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        samples.append(cpu.sample())

    await asyncio.gather(sampler(), *(client(r, w, make) for (r, w), make in zip(conns, makers, strict=True)))
    for _, writer in conns:
        writer.close()
    for _, writer in conns:
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    result = Result(len(latencies) / seconds, latencies, Cpu.delta(samples[0], samples[1]), seconds)
    result.count, result.total, result.errors = len(latencies), totals[0], errors
    return result


@dataclass
class Template:
    """The rows the server stored for one submission (copied by the storage ceiling)."""

    submission: dict[str, Any]
    version: dict[str, Any]
    audit: dict[str, Any]
    outbox: dict[str, Any]
    instance_id: str

    @property
    def extra_version_columns(self) -> list[str]:
        return [c for c in ("findings",) if c in self.version]

    @property
    def tables(self) -> list[tuple[str, str]]:
        """(table, COPY/INSERT columns) in the order of `rows`."""
        version_cols = ", ".join([VER_COLS, *self.extra_version_columns])
        return [(t, version_cols if t == "submissions.versions" else cols) for t, cols in TABLES]

    def rows(self, sub_id: int, ver_id: int, n: int) -> Iterator[tuple[tuple[Any, ...], ...]]:
        """Per submission: (submission, version, audit, outbox) tuples in COPY column order."""
        s, v, a, o = self.submission, self.version, self.audit, self.outbox
        data, payload = json.dumps(v["data"]), json.dumps(o["payload"])
        audit_details = json.dumps(a["details"])
        xml, flags = v["xml"], json.dumps(v["flags"])
        # Columns newer than this script (e.g. `findings`): copied as stored, JSON documents.
        extra = [json.dumps(v[col]) for col in self.extra_version_columns]
        old = self.instance_id
        for i in range(n):
            r = uuid.uuid4().hex
            new = f"{CEILING_PREFIX}{r[:4]}-{r[4:8]}-{r[8:12]}-{r[12:24]}"
            doc = xml.replace(old.encode(), new.encode())
            yield (
                (sub_id + i, s["project_id"], s["form_id"], s["xml_form_id"], s["draft"], new,
                 s["submitter_id"], s["device_id"], s["user_agent"]),
                (ver_id + i, sub_id + i, v["form_id"], v["draft"], new, v["instance_name"], v["form_def_id"],
                 v["form_version"], doc, hashlib.sha256(doc).hexdigest(), data.replace(old, new), flags,
                 True, v["submitter_id"], v["device_id"], v["user_agent"],
                 *(e.replace(old, new) for e in extra)),
                (a["actor_id"], a["action"], a["project_id"], a["target_type"], new,
                 audit_details.replace(old, new)),
                (o["event"], payload.replace(old, new)),
            )  # fmt: skip


SUB_COLS = "id, project_id, form_id, xml_form_id, draft, instance_id, submitter_id, device_id, user_agent"
VER_COLS = (
    "id, submission_id, form_id, draft, instance_id, instance_name, form_def_id, form_version, xml, "
    "xml_sha256, data, flags, current, submitter_id, device_id, user_agent"
)
AUD_COLS = "actor_id, action, project_id, target_type, target_id, details"
OUT_COLS = "event, payload"
TABLES = (
    ("submissions.submissions", SUB_COLS),
    ("submissions.versions", VER_COLS),
    ("events.audits", AUD_COLS),
    ("events.outbox", OUT_COLS),
)
IDS = (
    "SELECT nextval('submissions.submissions_id_seq'), nextval('submissions.versions_id_seq') "
    "FROM generate_series(1, %s)"
)
SET_CURRENT = (
    "UPDATE submissions.submissions s SET current_version_id = u.v "
    "FROM unnest(%b::int8[], %b::int8[]) AS u(s, v) WHERE s.id = u.s"
)


def _insert(table: str, cols: str) -> str:
    marks = ", ".join(["%s"] * len(cols.split(",")))
    return f"INSERT INTO {table} ({cols}) VALUES ({marks})"  # noqa: S608 - constants


def _batch_ids(conn: psycopg.Connection[Any], n: int) -> tuple[int, int]:
    """n consecutive-enough ids: the benchmark is the only writer while it runs."""
    ids = conn.execute(IDS, (n,)).fetchall()
    subs, vers = [r[0] for r in ids], [r[1] for r in ids]
    assert subs == list(range(subs[0], subs[0] + n)) and vers == list(range(vers[0], vers[0] + n))
    return subs[0], vers[0]


def storage_batched(
    url: str, template: Template, batch: int, seconds: float, method: str, cpu: Cpu
) -> Result:
    with psycopg.connect(url) as conn:
        done, latencies = 0, []
        before = cpu.sample()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            t0 = time.perf_counter()
            with conn.transaction():
                sub0, ver0 = _batch_ids(conn, batch)
                rows = list(template.rows(sub0, ver0, batch))
                if method == "copy":
                    with conn.cursor() as cur:
                        for k, (table, cols) in enumerate(template.tables):
                            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                                for row in rows:
                                    copy.write_row(row[k])
                            if k == 1:
                                ids = [r[0][0] for r in rows], [r[1][0] for r in rows]
                                cur.execute(SET_CURRENT, ids)
                else:
                    with conn.cursor() as cur:
                        for k, (table, cols) in enumerate(template.tables):
                            cur.executemany(_insert(table, cols), [row[k] for row in rows])
                            if k == 1:
                                ids = [r[0][0] for r in rows], [r[1][0] for r in rows]
                                cur.execute(SET_CURRENT, ids)
            latencies.append((time.perf_counter() - t0) * 1000)
            done += batch
        elapsed = time.perf_counter() - started
        return Result(done / elapsed, latencies, Cpu.delta(before, cpu.sample()), elapsed, done)


SET_ONE = "UPDATE submissions.submissions SET current_version_id = %s WHERE id = %s"
ONE_ID = IDS.replace("%s", "1")


async def storage_per_row(url: str, template: Template, connections: int, seconds: float, cpu: Cpu) -> Result:
    latencies: list[float] = []
    deadline = 0.0

    statements = [_insert(table, cols) for table, cols in template.tables]

    async def writer(conn: psycopg.AsyncConnection[Any]) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with conn.transaction():
                sub_id, ver_id = await (await conn.execute(ONE_ID)).fetchone()  # type: ignore[misc]
                sub, ver, aud, out = next(template.rows(sub_id, ver_id, 1))
                await conn.execute(statements[0], sub)
                await conn.execute(statements[1], ver)
                await conn.execute(SET_ONE, (ver_id, sub_id))
                await conn.execute(statements[2], aud)
                await conn.execute(statements[3], out)
            latencies.append((time.perf_counter() - t0) * 1000)

    conns = [await psycopg.AsyncConnection.connect(url) for _ in range(connections)]
    before = cpu.sample()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(writer(c) for c in conns))
    elapsed = time.perf_counter() - started
    after = cpu.sample()
    for conn in conns:
        await conn.close()
    return Result(len(latencies) / elapsed, latencies, Cpu.delta(before, after), elapsed, len(latencies))


# -- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODK_MCP_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


def start_server(data_dir: Path, port: int, log: Path, worker: bool = True) -> subprocess.Popen[bytes]:
    extra = {"ODK_MCP_LOG_LEVEL": "INFO"}
    if not worker:
        extra["ODK_MCP_WORKER_IN_PROCESS"] = "false"
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "odk_mcp", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            env=server_env(**extra),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"odk-mcp serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        time.sleep(0.2)
    process.kill()
    sys.exit(f"odk-mcp serve not ready:\n{log.read_text()[-3000:]}")


def set_up(base: str, data_dir: Path) -> tuple[str, int]:
    """Administrator (CLI), project, published form, app user assigned to it: its token."""
    created = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "odk_mcp", "user", "create", "--email", EMAIL, "--admin",
         "--data-dir", str(data_dir)],
        env=server_env(ODK_MCP_PASSWORD=PASSWORD, ODK_MCP_LOG_LEVEL="WARNING"),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    with httpx.Client(base_url=base, timeout=60) as http:
        login = http.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        project = http.post("/v1/projects", headers=auth, json={"name": "Household survey 2026"}).json()["id"]
        form = http.post(
            f"/v1/projects/{project}/forms",
            params={"publish": "true"},
            content=xform(),
            headers={**auth, "Content-Type": "application/xml"},
        )
        assert form.status_code == 200, form.text
        app_user = http.post(
            f"/v1/projects/{project}/app-users", headers=auth, json={"displayName": "Phone 1"}
        )
        assigned = http.post(
            f"/v1/projects/{project}/forms/{FORM_ID}/assignments/app-user/{app_user.json()['id']}",
            headers=auth,
        )
        assert assigned.status_code == 200, assigned.text
        return str(app_user.json()["token"]), int(project)


COUNTED = {
    "submissions": "submissions.submissions",
    "versions": "submissions.versions",
    "attachments": "submissions.attachments",
    "audits": "events.audits",
    "outbox": "events.outbox",
}


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for name, table in COUNTED.items():
        counts[name] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]  # noqa: S608
    return counts


def template_of(conn: psycopg.Connection[Any], instance_id: str) -> Template:
    def one(sql: str) -> dict[str, Any]:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(sql, (instance_id,)).fetchone()
        assert row is not None, sql
        return row

    return Template(
        submission=one("SELECT * FROM submissions.submissions WHERE instance_id = %s"),
        version=one("SELECT * FROM submissions.versions WHERE instance_id = %s"),
        audit=one("SELECT * FROM events.audits WHERE target_id = %s"),
        outbox=one("SELECT * FROM events.outbox WHERE payload->>'instanceId' = %s"),
        instance_id=instance_id,
    )


# Event deliveries: open ones (not done), and the ceiling's, which are not the server's work.
OPEN_DELIVERIES = "SELECT count(*) FROM events.deliveries WHERE status <> 'done'"
LAST_EVENT = "SELECT coalesce(max(id), 0) FROM events.outbox"
SETTLE_CEILING = (
    "UPDATE events.deliveries SET status = 'done', processed_at = now(), updated_at = now() "
    "WHERE event_id > %s AND status = 'pending' AND event_id IN "
    "(SELECT id FROM events.outbox WHERE id > %s AND payload->>'instanceId' LIKE %s)"
)


def open_deliveries(conn: psycopg.Connection[Any]) -> int:
    return int(conn.execute(OPEN_DELIVERIES).fetchone()[0])  # type: ignore[index]


def wait_drained(conn: psycopg.Connection[Any], limit: float) -> tuple[float, int]:
    """Wait until no delivery is open (at most `limit` s): seconds waited, deliveries left."""
    started = time.perf_counter()
    while (left := open_deliveries(conn)) and time.perf_counter() - started < limit:
        time.sleep(0.05)
    return time.perf_counter() - started, left


STATS_FLUSH = 11.0  # an idle backend reports its statistics within 10 s (PostgreSQL 15+)
PG_STATS = (
    "SELECT sessions, xact_commit, xact_rollback, tup_inserted, tup_updated, tup_fetched, tup_returned "
    "FROM pg_stat_database WHERE datname = current_database()"
)


@dataclass
class Sustained:
    """A long submit phase at 32 clients, watching the consumers' backlog."""

    result: Result
    samples: list[tuple[float, int]]  # (seconds into the load, open deliveries)
    backlog_at_end: int
    drain_seconds: float
    left: int
    consumers: int


async def sustain(
    host: str,
    port: int,
    requests: Requests,
    url: str,
    watch: psycopg.Connection[Any],
    seconds: float,
    cpu: Cpu,
) -> Sustained:
    """Submit at 32 clients for `seconds`, sampling open deliveries every second, then time how
    long the consumers take to finish the backlog (with no more load)."""
    wait_drained(watch, DRAIN_LIMIT)
    consumers = int(
        watch.execute(
            "SELECT count(*) FROM events.subscriptions WHERE event = 'submission.received'"
        ).fetchone()[0]
    )  # type: ignore[index]
    samples: list[tuple[float, int]] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:

        async def watcher() -> None:
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                row = await (await conn.execute(OPEN_DELIVERIES)).fetchone()
                samples.append((time.perf_counter() - started, int(row[0])))  # type: ignore[index]
                await asyncio.sleep(1.0)

        makers = [requests.submit(i) for i in range(32)]
        result = await http_phase(host, port, makers, 201, seconds, cpu, during=watcher)
    at_end = open_deliveries(watch)
    drain, left = wait_drained(watch, DRAIN_LIMIT)
    return Sustained(result, samples, at_end, drain, left, consumers)


# -- profiling -----------------------------------------------------------------------------------


def py_spy() -> str | None:
    return shutil.which("py-spy") or next(
        (str(p) for p in [Path(sys.executable).parent / "py-spy"] if p.exists()), None
    )


def summarize_profile(raw: Path, top: int = 25) -> str:
    """Self and inclusive sample shares per function of the event-loop thread, from py-spy's raw
    (collapsed, `--threads`) output; other threads (anyio workers) are only counted."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        thread, *frames = stack.split(";")
        kind = thread.partition(": ")[2] or thread
        threads[kind] += int(count_text)
        if kind != "MainThread" or not frames:
            continue
        frames = [f.rsplit(":", 1)[0] + ")" if ":" in f else f for f in frames]
        own[frames[-1]] += int(count_text)
        for name in set(frames):
            inclusive[name] += int(count_text)
    total = threads["MainThread"]
    lines = [f"samples per thread (active only): {dict(threads.most_common())}", "event loop, self:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("event loop, inclusive:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top + 60)]
    return "\n".join(lines)


# -- the run -------------------------------------------------------------------------------------


def summary_row(results: list[Result]) -> dict[str, float]:
    per_round = [sorted(r.latencies) for r in results]
    med = statistics.median
    n = [max(1, r.count) for r in results]
    return {
        "rate": med(r.rate for r in results),
        "min": min(r.rate for r in results),
        "max": max(r.rate for r in results),
        "p50": med(percentile(s, 0.50) for s in per_round),
        "p95": med(percentile(s, 0.95) for s in per_round),
        "p99": med(percentile(s, 0.99) for s in per_round),
        "server_ms": med(1000 * r.cpu[0] / k for r, k in zip(results, n, strict=True)),
        "pg_ms": med(1000 * r.cpu[1] / k for r, k in zip(results, n, strict=True)),
        "gen_ms": med(1000 * r.cpu[2] / k for r, k in zip(results, n, strict=True)),
        "loop_ms": med(1000 * r.cpu[3] / k for r, k in zip(results, n, strict=True)),
        "busy": med(sum(r.cpu[:3]) / r.seconds for r in results),
        "loop_busy": med(r.cpu[3] / r.seconds for r in results),
        "gen_busy": med(r.cpu[2] / r.seconds for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per phase")
    parser.add_argument("--profile", type=Path, help="directory for py-spy raw profiles (optional)")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="serve without the in-process event worker: events stay pending (ingestion alone)",
    )
    parser.add_argument(
        "--sustain",
        type=float,
        default=15.0,
        help="seconds of a final 32-client phase watching the event backlog (0: none)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    loads = [os.getloadavg()]
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)

    with tempfile.TemporaryDirectory(prefix="odk-ingestion-") as tmp:
        data_dir, log = Path(tmp) / "data", Path(tmp) / "server.log"
        host, port = "127.0.0.1", free_port()
        server = start_server(data_dir, port, log, worker=not args.no_worker)
        pg = EmbeddedPostgres(data_dir / "pgdata")
        try:
            token, project_id = set_up(f"http://{host}:{port}", data_dir)
            url = pg.start()
            requests = Requests(host, port, token, project_id)
            cpu = Cpu(server.pid, (data_dir / "pgdata").resolve())
            with psycopg.connect(url, autocommit=True) as conn:
                settings = {
                    s: conn.execute(f"SHOW {s}").fetchone()[0]  # type: ignore[index]
                    for s in ("server_version", "fsync", "synchronous_commit", "wal_sync_method",
                              "shared_buffers", "commit_delay")
                }  # fmt: skip
                # One submission through the server: which rows it writes, and their template.
                before = row_counts(conn)
                make = requests.submit(0)
                sample = make()
                sample_id = sample.split(b"<instanceID>")[1].split(b"</instanceID>")[0].decode()

                async def one() -> None:
                    reader, writer = await asyncio.open_connection(host, port)
                    writer.write(sample)
                    status, body = await read_response(reader)
                    assert status == 201, body
                    writer.close()

                runner.run(one())
                after = row_counts(conn)
                per_submission = {k: after[k] - before[k] for k in after}
                template = template_of(conn, sample_id)
            print(
                f"odk-mcp serve pid {server.pid} on {host}:{port}"
                f"{' without its event worker' if args.no_worker else ''}; PostgreSQL {settings}"
            )
            print(
                f"submission: {requests.xml_bytes} B XML, {requests.body_length} B multipart body; "
                f"rows written per submission: {per_submission}"
            )
            assert per_submission == {
                "submissions": 1,
                "versions": 1,
                "attachments": 0,
                "audits": 1,
                "outbox": 1,
            }
            # Warm-up (untimed): a few hundred submissions and health checks at 8 clients.
            runner.run(http_phase(host, port, [requests.submit(c) for c in range(8)], 201, 1.5, cpu))
            runner.run(http_phase(host, port, [requests.healthz(c) for c in range(8)], 200, 0.5, cpu))
            status_404 = None

            async def probe() -> int:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(requests.post_404(0)())
                status, _ = await read_response(reader)
                writer.close()
                return status

            status_404 = runner.run(probe())

            watch = psycopg.connect(url, autocommit=True)
            backlog: dict[int, list[tuple[int, float, int]]] = {}
            results: dict[tuple[str, int], list[Result]] = {}
            phases: list[tuple[str, int]] = [
                (kind, c) for c in CONCURRENCY for kind in ("submit", "healthz", "post-404")
            ]
            phases += [("copy", 256), ("many", 32), ("row", 1), ("row", 32)]
            for rnd in range(args.rounds):
                shift = (rnd * len(phases)) // args.rounds
                for kind, c in phases[shift:] + phases[:shift]:
                    if kind in ("submit", "healthz", "post-404"):
                        makers = [
                            {
                                "submit": requests.submit,
                                "healthz": requests.healthz,
                                "post-404": requests.post_404,
                            }[kind](i)
                            for i in range(c)
                        ]
                        expect = {"submit": 201, "healthz": 200, "post-404": status_404}[kind]
                        if not args.no_worker:
                            # Every phase starts with the consumers caught up (untimed).
                            wait_drained(watch, DRAIN_LIMIT)
                        result = runner.run(http_phase(host, port, makers, expect, args.seconds, cpu))
                        if result.errors:
                            print(f"  {kind} x{c}: unexpected answers {dict(result.errors.most_common(3))}")
                        if kind == "submit" and not args.no_worker:
                            left = open_deliveries(watch)
                            waited, still = wait_drained(watch, DRAIN_LIMIT)
                            backlog.setdefault(c, []).append((left, waited, still))
                    else:
                        last = watch.execute(LAST_EVENT).fetchone()[0]  # type: ignore[index]
                        if kind == "row":
                            result = runner.run(storage_per_row(url, template, c, args.seconds * 0.75, cpu))
                        else:
                            result = storage_batched(url, template, c, args.seconds * 0.75, kind, cpu)
                        # The ceiling's rows fan out to deliveries like the server's: not the
                        # server's work, so they are settled here (untimed) instead of being
                        # processed by its worker during the next phases.
                        watch.execute(SETTLE_CEILING, (last, last, CEILING_PREFIX + "%"))
                    results.setdefault((kind, c), []).append(result)
                loads.append(os.getloadavg())
                print(
                    f"round {rnd + 1}/{args.rounds} done at {time.perf_counter() - started:.0f} s, "
                    f"load average {loads[-1][0]:.2f}"
                )

            sustained = None
            if not args.no_worker and args.sustain > 0:
                sustained = runner.run(sustain(host, port, requests, url, watch, args.sustain, cpu))
            watch.close()

            # Diagnostics (untimed): transactions and tuples per submission, from pg_stat_database.
            with psycopg.connect(url, autocommit=True) as conn:
                time.sleep(STATS_FLUSH)
                stats0 = conn.execute(PG_STATS).fetchone()
                diag = runner.run(
                    http_phase(host, port, [requests.submit(c) for c in range(8)], 201, 2.0, cpu)
                )
                time.sleep(STATS_FLUSH)
                stats1 = conn.execute(PG_STATS).fetchone()
                assert stats0 is not None and stats1 is not None
                names = ("sessions", "commits", "rollbacks", "inserted", "updated", "fetched", "returned")
                total = diag.total
                print(
                    f"per submission ({total} at 8 clients): "
                    + ", ".join(
                        f"{n} {(b - a) / total:.2f}" for n, a, b in zip(names, stats0, stats1, strict=True)
                    )
                )
                server_rows = conn.execute(
                    "SELECT count(*) FROM submissions.submissions WHERE instance_id NOT LIKE %s",
                    (CEILING_PREFIX + "%",),
                ).fetchone()
                print(f"submissions stored by the server: {server_rows[0]}")  # type: ignore[index]

            if args.profile is not None:
                spy = py_spy()
                if spy is None:
                    print("py-spy not found: no profile")
                else:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    for c in (32, 1):
                        raw = args.profile / f"ingestion-c{c}.txt"

                        async def record(raw: Path = raw) -> None:
                            proc = await asyncio.create_subprocess_exec(
                                spy, "record", "-d", "10", "-r", "50", "--threads",
                                "-p", str(server.pid), "-o", str(raw), "--format", "raw",
                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                            )  # fmt: skip
                            await proc.wait()

                        makers = [requests.submit(i) for i in range(c)]
                        prof = runner.run(http_phase(host, port, makers, 201, 11.0, cpu, during=record))
                        print(f"\nprofile at {c} client(s), {prof.rate:.0f}/s while sampled ({raw}):")
                        print(summarize_profile(raw))
        finally:
            pg.stop()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            runner.close()
        loads.append(os.getloadavg())

    # -- report -----------------------------------------------------------------------------------
    print(
        f"\n{args.rounds} rounds, {args.seconds:g} s measured per HTTP phase ({args.seconds * 0.75:g} s per "
        f"storage phase), {time.perf_counter() - started:.0f} s in all; load average (1 min) "
        + " → ".join(f"{la[0]:.2f}" for la in loads)
        + f"; the post-404 POST answered {status_404}"
    )
    rows = {key: summary_row(value) for key, value in results.items()}
    ceiling = rows[("copy", 256)]["rate"]
    print(f"\nstorage ceilings (rows = submission + version + audit + outbox; median of {args.rounds}):")
    print(
        f"{'variant':<26} {'subm./s':>8} {'min-max':>13} {'txn p50 ms':>10} {'PG ms/subm':>10} "
        f"{'client ms':>9} {'CPU %':>6}"
    )
    for key, label in (
        (("copy", 256), "COPY, 256 per transaction"),
        (("many", 32), "executemany, 32 per txn"),
        (("row", 1), "1 per txn, 1 connection"),
        (("row", 32), "1 per txn, 32 connections"),
    ):
        r = rows[key]
        print(
            f"{label:<26} {r['rate']:>8.0f} {r['min']:>6.0f}-{r['max']:<6.0f} {r['p50']:>10.2f} "
            f"{r['pg_ms']:>10.3f} {r['gen_ms']:>9.3f} {100 * r['busy']:>6.0f}"
        )
    print(
        f"\n{'clients':>7} {'phase':<9} {'req/s':>7} {'min-max':>13} {'p50':>6} {'p95':>6} {'p99':>6} "
        f"{'xHTTP':>6} {'xstore':>6} {'srv ms':>6} {'loop ms':>7} {'PG ms':>6} {'gen ms':>6} {'CPU %':>6} "
        f"{'loop %':>6} {'gen %':>6}"
    )
    for c in CONCURRENCY:
        for kind in ("submit", "healthz", "post-404"):
            r = rows[(kind, c)]
            http = rows[("healthz", c)]["rate"]
            print(
                f"{c:>7} {kind:<9} {r['rate']:>7.0f} {r['min']:>6.0f}-{r['max']:<6.0f} {r['p50']:>6.2f} "
                f"{r['p95']:>6.2f} {r['p99']:>6.2f} {r['rate'] / http:>6.3f} {r['rate'] / ceiling:>6.3f} "
                f"{r['server_ms']:>6.3f} {r['loop_ms']:>7.3f} {r['pg_ms']:>6.3f} {r['gen_ms']:>6.3f} "
                f"{100 * r['busy']:>6.0f} {100 * r['loop_busy']:>6.0f} {100 * r['gen_busy']:>6.0f}"
            )
    if backlog:
        print("\nevent consumers after each submit phase (median of rounds): open deliveries when the load")
        print("stopped, as seconds of receipts, and seconds until none was open (the consumers catching up)")
        for c in CONCURRENCY:
            if c in backlog:
                left = statistics.median(b[0] for b in backlog[c])
                waited = statistics.median(b[1] for b in backlog[c])
                never = max(b[2] for b in backlog[c])
                lag = left / max(rows[("submit", c)]["rate"], 1e-9)
                print(
                    f"  {c:>2} clients: {left:.0f} open ({lag:.1f} s of receipts), drained in {waited:.1f} s"
                    + (f", {never} still open after {DRAIN_LIMIT:g} s" if never else "")
                )
    if sustained is not None:
        r = sustained.result
        ordered = sorted(r.latencies)
        span = args.sustain + WARM_UP
        receipts = sustained.backlog_at_end / max(sustained.consumers, 1)
        lag = receipts / max(r.total / span, 1e-9)
        print(
            f"\nsustained load, 32 clients, {args.sustain:g} s: {r.rate:.0f} submissions/s (p50 "
            f"{percentile(ordered, 0.5):.1f} ms, p99 {percentile(ordered, 0.99):.1f} ms), "
            f"{sustained.consumers} consumers of each receipt"
        )
        print(
            "  open deliveries during the load (s: count): "
            + ", ".join(f"{t:.0f}: {k}" for t, k in sustained.samples)
        )
        # The backlog's trend over the load (after its first second): flat or falling when the
        # consumers keep pace (it then only holds the batch in hand and the events since).
        points = [(t, k) for t, k in sustained.samples if t >= 1.0]
        times, counts = [float(t) for t, _ in points], [float(k) for _, k in points]
        slope = statistics.linear_regression(times, counts).slope if len(points) >= 3 else float("nan")
        produced = sustained.consumers * r.total / span
        print(
            f"  at the end: {sustained.backlog_at_end} open (≈ {lag:.1f} s of receipts behind); drained "
            f"{sustained.drain_seconds:.1f} s later"
            + (f" ({sustained.left} still open)" if sustained.left else "")
            + f"; receipts consumed at ≈ {r.total / (span + sustained.drain_seconds):.0f}/s on average, "
            f"ingested at {r.total / span:.0f}/s"
        )
        print(
            f"  backlog trend during the load: {slope:+.0f} deliveries/s against {produced:.0f}/s created: "
            + (
                "the consumers keep pace (the backlog does not grow)"
                if slope < 0.05 * produced
                else f"the consumers fall behind by ≈ {slope / sustained.consumers:.0f} receipts/s"
            )
        )
    print(
        "\nxHTTP = rate / GET /healthz rate at the same clients; xstore = rate / COPY ceiling; "
        "srv/loop/PG/gen ms = CPU ms per request of the server process / its event-loop thread / all "
        "PostgreSQL processes / this load generator; CPU % = server + PostgreSQL + generator (200 % = "
        "both cores); loop % = the server's event-loop thread (100 % = saturated); gen % = generator"
    )


if __name__ == "__main__":
    main()
