"""Crash safety of receiving, as the issue demands it: while 16 Collect-like clients submit,
the real `odk-mcp serve` is killed with SIGKILL and restarted on the same data directory.

Every submission that got a 201 is then present exactly once, with its XML byte for byte and
its attachment's bytes. A submission whose request died with the connection may or may not
be there, but if it is, it is complete (an attachment row either has its content or says it
has none); sending it again, as Collect retries, answers 201 and completes it. A request that
never connected stored nothing. The restarted server works, and no 5xx was ever answered.

The embedded PostgreSQL is a separate process and survives the kill, as it does in a real
crash of the application server: the restarted server attaches to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import psutil
import psycopg
import pytest
from tests.integration.test_server_process import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Server,
    clean_env,
    login,
    odk,
    postgres_processes,
    start_server,
)

pytestmark = pytest.mark.slow

CLIENTS = 16
LOAD_SECONDS = 2.0  # of load before the kill ...
MIN_ACKED_BEFORE_KILL = 2 * CLIENTS  # ... and at least this many 201s (a slow machine waits longer)
LOAD_DEADLINE = 40.0  # for reaching MIN_ACKED_BEFORE_KILL
AFTER_KILL_SECONDS = 1.0  # the clients keep trying against the dead server
ERROR_PAUSE = 0.25  # a client's pause after a connection error
LARGE_EVERY = 8  # every 8th photo is past the 1 MB spooling threshold of the multipart parser
LARGE_PHOTO = 1_200_000
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
VERIFY_THREADS = 8

OR = {"X-OpenRosa-Version": "1.0"}
FORM_ID = "crash"
FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">
  <h:head>
    <h:title>Crash</h:title>
    <model>
      <instance>
        <data id="crash" version="1">
          <client/><seq/><photo/>
          <meta><instanceID/></meta>
        </data>
      </instance>
      <bind nodeset="/data/client" type="int"/>
      <bind nodeset="/data/seq" type="int"/>
      <bind nodeset="/data/photo" type="binary"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/client"><label>Client</label></input>
    <input ref="/data/seq"><label>Sequence</label></input>
    <upload ref="/data/photo" mediatype="image/*"><label>Photo</label></upload>
  </h:body>
</h:html>"""

T = TypeVar("T")


@dataclass(frozen=True)
class Submission:
    """One filled-in form as Collect sends it: the instance XML and one photo whose bytes are
    derived from the instanceID (so each submission's attachment is unique)."""

    instance_id: str
    xml: bytes
    photo_name: str
    photo: bytes

    @classmethod
    def make(cls, client: int, seq: int) -> Submission:
        instance_id = f"uuid:{uuid.uuid4()}"
        rng = random.Random(instance_id)  # noqa: S311 - test data, derived from the instanceID
        size = LARGE_PHOTO if seq % LARGE_EVERY == LARGE_EVERY - 1 else rng.randint(1_000, 64_000)
        photo = b"\xff\xd8\xff\xe0" + instance_id.encode() + rng.randbytes(size)
        name = f"{seq}-{client}.jpg"
        xml = (
            "<?xml version='1.0' ?>"
            '<data id="crash" version="1" xmlns:jr="http://openrosa.org/javarosa" '
            'xmlns:orx="http://openrosa.org/xforms">'
            f"<client>{client}</client><seq>{seq}</seq><photo>{name}</photo>"
            f"<orx:meta><orx:instanceID>{instance_id}</orx:instanceID></orx:meta></data>"
        ).encode()
        return cls(instance_id, xml, name, photo)

    def files(self) -> dict[str, tuple[str, bytes, str]]:
        return {
            "xml_submission_file": ("submission.xml", self.xml, "text/xml"),
            self.photo_name: (self.photo_name, self.photo, "image/jpeg"),
        }


@dataclass
class Attempt:
    submission: Submission
    status: int | None = None  # the answer, or None when the request failed in transport
    error: str | None = None  # the transport error's class name
    connected: bool = True  # False: the TCP connection was refused, nothing reached a server
    after_kill: bool = False
    body: str = ""


@dataclass
class Recorder:
    """Every answer any client saw; a response hook notes every 5xx, whoever asked."""

    server_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, response: httpx.Response) -> None:
        if response.status_code >= 500:
            response.read()
            with self.lock:
                self.server_errors.append(
                    f"{response.request.method} {response.request.url.path} -> "
                    f"{response.status_code}: {response.text[:300]}"
                )

    def client(self, base_url: str, **kwargs: object) -> httpx.Client:
        return httpx.Client(
            base_url=base_url,
            timeout=HTTP_TIMEOUT,
            event_hooks={"response": [self.hook]},
            **kwargs,  # type: ignore[arg-type]
        )


class Load:
    """CLIENTS threads posting new submissions in a loop until told to stop."""

    def __init__(self, recorder: Recorder, base_url: str, path: str) -> None:
        self.recorder = recorder
        self.base_url = base_url
        self.path = path
        self.attempts: list[Attempt] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.killed = threading.Event()

    def acked_count(self) -> int:
        with self.lock:
            return sum(1 for a in self.attempts if a.status == 201)

    def client(self, number: int) -> int:
        sent = 0
        with self.recorder.client(self.base_url, headers=OR) as http:
            while not self.stop.is_set():
                submission = Submission.make(number, sent)
                sent += 1
                attempt = Attempt(submission)
                try:
                    response = http.post(self.path, files=submission.files())
                except httpx.TransportError as exc:
                    attempt.error = type(exc).__name__
                    attempt.connected = not isinstance(exc, httpx.ConnectError)
                else:
                    attempt.status = response.status_code
                    if response.status_code != 201:
                        attempt.body = response.text[:500]
                attempt.after_kill = self.killed.is_set()
                with self.lock:
                    self.attempts.append(attempt)
                if attempt.error is not None:
                    time.sleep(ERROR_PAUSE)
        return sent


def parallel(work: Callable[[T], object], items: Iterable[T]) -> None:
    """Run `work` over `items` on a few threads; the first failure is raised."""
    with ThreadPoolExecutor(VERIFY_THREADS) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


def kill_process_group(server: Server) -> None:
    """SIGKILL the server and everything in its session (started with its own session);
    the embedded PostgreSQL detaches into a session of its own and lives on."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)


def postmaster(pgdata: Path) -> tuple[int, int, str] | None:
    """(pid, port, socket directory) from postmaster.pid, when the file exists."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    return int(lines[0]), int(lines[3]), lines[4].strip()


def connect(pgdata: Path) -> psycopg.Connection[tuple[object, ...]]:
    info = postmaster(pgdata)
    assert info is not None, "PostgreSQL is not running for the data directory"
    _, port, socket_dir = info
    return psycopg.connect(host=socket_dir, port=port, user="postgres", dbname="odk_mcp", autocommit=True)


def stop_postgres(pgdata: Path) -> None:
    """Fast shutdown (SIGINT) of the PostgreSQL serving `pgdata`; anything left is killed."""
    info = postmaster(pgdata)
    if info is not None:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(info[0])
            if "postgres" in process.name():
                process.send_signal(signal.SIGINT)
                with contextlib.suppress(psutil.TimeoutExpired):
                    process.wait(timeout=30)
    for leftover in postgres_processes(pgdata):
        with contextlib.suppress(psutil.NoSuchProcess):
            leftover.kill()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[list[Server]]:
    """The servers the test starts; whatever still runs at the end is stopped (then killed),
    and so is the embedded PostgreSQL of the test's data directory."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGTERM)
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                kill_process_group(server)
    # Only needed when the test failed before the restarted server's clean stop.
    stop_postgres((tmp_path / "data" / "pgdata").resolve())


def test_sigkill_under_load_loses_no_acknowledged_submission(tmp_path: Path, site: list[Server]) -> None:
    started = time.monotonic()
    data_dir = tmp_path / "data"
    pgdata = (data_dir / "pgdata").resolve()
    log = tmp_path / "server.log"
    recorder = Recorder()

    # -- a server, an administrator, a project, a published form with a photo, a phone ------
    server = start_server(data_dir, log, **WORKER_ENV)
    site.append(server)
    created = odk(
        "user", "create", "--email", ADMIN_EMAIL, "--admin", "--data-dir", str(data_dir),
        env=clean_env(ODK_MCP_PASSWORD=ADMIN_PASSWORD),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    with recorder.client(server.base_url) as http:
        admin = login(http, ADMIN_EMAIL, ADMIN_PASSWORD)
        project = http.post("/v1/projects", headers=admin, json={"name": "Crash"})
        assert project.status_code == 200, project.text
        pid = project.json()["id"]
        form = http.post(
            f"/v1/projects/{pid}/forms",
            params={"publish": "true"},
            content=FORM,
            headers={**admin, "Content-Type": "application/xml"},
        )
        assert form.status_code == 200, form.text
        app_user = http.post(f"/v1/projects/{pid}/app-users", json={"displayName": "Phone"}, headers=admin)
        assert app_user.status_code == 200, app_user.text
        assigned = http.post(
            f"/v1/projects/{pid}/forms/{FORM_ID}/assignments/app-user/{app_user.json()['id']}",
            headers=admin,
        )
        assert assigned.status_code == 200, assigned.text
        token = app_user.json()["token"]
    openrosa_path = f"/v1/key/{token}/projects/{pid}/submission"
    setup_seconds = time.monotonic() - started

    # -- load, SIGKILL in the middle of it, a little more load against the dead server ------
    load = Load(recorder, server.base_url, openrosa_path)
    with ThreadPoolExecutor(CLIENTS) as pool:
        clients: list[Future[int]] = [pool.submit(load.client, n) for n in range(CLIENTS)]
        try:
            load_started = time.monotonic()
            deadline = load_started + LOAD_DEADLINE
            while time.monotonic() < deadline and (
                time.monotonic() - load_started < LOAD_SECONDS or load.acked_count() < MIN_ACKED_BEFORE_KILL
            ):
                if any(f.done() for f in clients):
                    break  # a client died: its exception is raised below
                time.sleep(0.05)
            acked_at_kill = load.acked_count()
            load.killed.set()  # first: errors seen from now on may be the kill's
            kill_process_group(server)
            load_seconds = time.monotonic() - load_started
            time.sleep(AFTER_KILL_SECONDS)
        finally:
            load.stop.set()
        for f in clients:
            f.result(timeout=120)

    assert acked_at_kill >= MIN_ACKED_BEFORE_KILL, (
        f"only {acked_at_kill} submissions acknowledged in {load_seconds:.1f} s:\n{server.log_text()}"
    )
    assert postgres_processes(pgdata), "PostgreSQL did not survive the server's SIGKILL"
    attempts = load.attempts
    unexpected = [
        (a.submission.instance_id, a.status, a.body) for a in attempts if a.status not in (None, 201)
    ]
    assert not unexpected, f"answers other than 201 under load: {unexpected[:5]}"
    assert not recorder.server_errors, recorder.server_errors[:5]
    acked = [a.submission for a in attempts if a.status == 201]
    lost = [a.submission for a in attempts if a.error is not None and a.connected]
    refused = [a.submission for a in attempts if a.error is not None and not a.connected]
    assert not [a for a in attempts if a.error is not None and not a.after_kill], (
        "requests failed before the kill: "
        + str([(a.submission.instance_id, a.error) for a in attempts if a.error and not a.after_kill][:5])
    )
    assert refused, "no client tried the dead server"
    assert len({s.instance_id for s in acked + lost + refused}) == len(attempts)

    # -- restart on the same data directory ------------------------------------------------
    again = start_server(data_dir, log, **WORKER_ENV)
    site.append(again)
    local = threading.local()
    opened: list[httpx.Client] = []

    def verifier() -> httpx.Client:
        """One client per verifying thread."""
        if not hasattr(local, "client"):
            local.client = recorder.client(again.base_url)
            opened.append(local.client)
        return local.client  # type: ignore[no-any-return]

    try:
        with recorder.client(again.base_url) as main:
            admin = login(main, ADMIN_EMAIL, ADMIN_PASSWORD)
            form_url = f"/v1/projects/{pid}/forms/{FORM_ID}/submissions"

            # The restarted server takes a new submission as usual.
            fresh = Submission.make(CLIENTS, 0)
            first = main.post(openrosa_path, files=fresh.files(), headers=OR)
            assert first.status_code == 201, first.text

            def listed() -> Counter[str]:
                response = main.get(form_url, params={"limit": 100_000}, headers=admin)
                assert response.status_code == 200, response.text
                ids = Counter(s["instanceId"] for s in response.json())
                assert int(response.headers["X-Total-Count"]) == sum(ids.values())
                return ids

            def rows() -> tuple[Counter[str], Counter[str], dict[str, str | None]]:
                """Submission and version rows per instanceID, and each photo's stored sha256."""
                with connect(pgdata) as conn:
                    subs = Counter(
                        str(r[0])
                        for r in conn.execute(
                            "SELECT instance_id FROM submissions.submissions WHERE xml_form_id = %s",
                            (FORM_ID,),
                        )
                    )
                    vers = conn.execute(
                        "SELECT v.instance_id, a.blob_sha256 FROM submissions.versions v"
                        " JOIN submissions.submissions s ON s.id = v.submission_id"
                        " LEFT JOIN submissions.attachments a ON a.version_id = v.id"
                        " WHERE s.xml_form_id = %s",
                        (FORM_ID,),
                    ).fetchall()
                return (
                    subs,
                    Counter(str(r[0]) for r in vers),
                    {str(r[0]): None if r[1] is None else str(r[1]) for r in vers},
                )

            def assert_complete(submission: Submission, photo_required: bool) -> None:
                client = verifier()
                url = f"{form_url}/{submission.instance_id}"
                read = client.get(url, headers=admin)
                assert read.status_code == 200, (submission.instance_id, read.status_code, read.text)
                assert read.json()["instanceId"] == submission.instance_id
                xml = client.get(url + ".xml", headers=admin)
                assert xml.status_code == 200, xml.text
                assert xml.content == submission.xml, submission.instance_id
                listing = client.get(url + "/attachments", headers=admin)
                assert listing.status_code == 200, listing.text
                [entry] = listing.json()
                assert entry["name"] == submission.photo_name
                if photo_required:
                    assert entry["exists"] is True, (submission.instance_id, entry)
                if entry["exists"]:
                    photo = client.get(f"{url}/attachments/{submission.photo_name}", headers=admin)
                    assert photo.status_code == 200, photo.text
                    assert photo.content == submission.photo, f"photo of {submission.instance_id} differs"

            # Every acknowledged submission: once, complete, byte for byte.
            ids = listed()
            subs, vers, photos = rows()
            assert not [i for i, n in ids.items() if n > 1], "duplicates in the REST list"
            assert not [i for i, n in subs.items() if n > 1], "duplicate submission rows"
            assert not [i for i, n in vers.items() if n > 1], "duplicate version or attachment rows"
            missing = [s.instance_id for s in acked if ids[s.instance_id] != 1 or subs[s.instance_id] != 1]
            assert not missing, f"{len(missing)} of {len(acked)} acknowledged submissions lost: {missing[:5]}"
            wrong = [s.instance_id for s in acked if photos[s.instance_id] != sha256(s.photo)]
            assert not wrong, f"acknowledged photos not stored: {wrong[:5]}"
            parallel(lambda s: assert_complete(s, photo_required=True), acked)
            # ... and they went through the group writer: rows of one batch share their
            # transaction's now(), so several acknowledged submissions with one created_at
            # prove that batches were acknowledged (and survived the kill) as above.
            with connect(pgdata) as conn:
                batched = conn.execute(
                    "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM submissions.submissions"
                    " WHERE xml_form_id = %s AND instance_id = ANY(%s) GROUP BY created_at) AS b",
                    (FORM_ID, [s.instance_id for s in acked]),
                ).fetchone()
            assert batched is not None and batched[0] > 1, "no acknowledged batch of several submissions"

            # Requests that never connected stored nothing; those cut off mid-flight may have,
            # and then completely: the XML as sent, the photo as sent or marked as not there.
            sent = {s.instance_id for s in acked + lost + refused} | {fresh.instance_id}
            assert set(ids) <= sent, f"submissions nobody sent: {sorted(set(ids) - sent)[:5]}"
            assert not [s.instance_id for s in refused if s.instance_id in ids]
            survivors = [s for s in lost if s.instance_id in ids]
            for s in survivors:
                assert photos[s.instance_id] in (None, sha256(s.photo)), s.instance_id
            parallel(lambda s: assert_complete(s, photo_required=False), survivors)

            # Collect retries whatever failed: each answers 201 and ends up complete.
            def resend(submission: Submission) -> None:
                response = verifier().post(openrosa_path, files=submission.files(), headers=OR)
                assert response.status_code == 201, (submission.instance_id, response.text)
                assert_complete(submission, photo_required=True)

            parallel(resend, lost + refused)

            ids = listed()
            subs, vers, photos = rows()
            assert set(ids) == sent
            assert set(ids.values()) == {1}
            assert set(subs) == sent
            assert set(subs.values()) == {1}
            assert set(vers.values()) == {1}
            everything = [*acked, *lost, *refused, fresh]
            assert {s.instance_id: sha256(s.photo) for s in everything} == photos
            assert_complete(fresh, photo_required=True)

            # Every stored submission's receipt event reaches each of its consumers exactly
            # once, the killed server's claims included (taken over when their lease ends).
            # The deliveries table is the consumers' inbox: one row per (event, consumer),
            # done in the transaction of the consumer's own writes.
            consumers, events, done, read_model = receipts_processed(pgdata, len(sent))
            assert {"aggregation", "webhooks"} <= {c.split(".")[0] for c in consumers}, consumers
            assert events == Counter(dict.fromkeys(sent, 1)), "not one receipt event per submission"
            assert done == dict.fromkeys(consumers, len(sent)), done
            # ... and the read model, the aggregation consumer's work, has each one once.
            assert read_model == Counter(dict.fromkeys(sent, 1))
    finally:
        for client in opened:
            client.close()

    assert not recorder.server_errors, recorder.server_errors[:5]
    assert again.stop() == 0, again.log_text()
    # The restart forgot the killed server's handle on PostgreSQL, so this clean exit, the last
    # handle's, stopped PostgreSQL too.
    deadline = time.monotonic() + 10
    while postgres_processes(pgdata) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert postgres_processes(pgdata) == [], "PostgreSQL left running after the restarted server's exit"
    assert not (pgdata / "postmaster.pid").exists(), "PostgreSQL did not shut down cleanly"
    print(
        f"setup {setup_seconds:.1f} s, load {load_seconds:.1f} s, total {time.monotonic() - started:.1f} s; "
        f"{len(attempts)} posts: {len(acked)} acknowledged, {len(lost)} cut off "
        f"({len(survivors)} of them stored), {len(refused)} refused"
    )


# The killed server's claimed deliveries come back after their lease: keep it short here.
WORKER_ENV = {"ODK_MCP_WORKER_LEASE_SECONDS": "5", "ODK_MCP_WORKER_BACKOFF_SECONDS": "0.5"}
PIPELINE_TIMEOUT = 180.0


def receipts_processed(
    pgdata: Path, submissions: int
) -> tuple[set[str], Counter[str], dict[str, int], Counter[str]]:
    """Wait until every receipt delivery of the form is done (or time out); then the consumers of
    receipts, receipt events per instanceID, done deliveries per consumer, read-model rows."""
    deadline = time.monotonic() + PIPELINE_TIMEOUT
    with connect(pgdata) as conn:
        while True:
            consumers = {
                str(r[0])
                for r in conn.execute(
                    "SELECT consumer FROM events.subscriptions WHERE event = 'submission.received'"
                )
            }
            states = conn.execute(
                "SELECT d.consumer, d.status, count(*) FROM events.deliveries d"
                " JOIN events.outbox o ON o.id = d.event_id"
                " WHERE o.event = 'submission.received' AND o.payload->>'xmlFormId' = %s"
                " GROUP BY d.consumer, d.status",
                (FORM_ID,),
            ).fetchall()
            done = {str(c): int(n) for c, status, n in states if status == "done"}
            rows = conn.execute("SELECT instance_id FROM aggregation.rows WHERE xml_form_id = %s", (FORM_ID,))
            read_model = Counter(str(r[0]) for r in rows)
            settled = done == dict.fromkeys(consumers, submissions)
            settled = settled and sum(read_model.values()) == submissions
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        events = Counter(
            str(r[0])
            for r in conn.execute(
                "SELECT payload->>'instanceId' FROM events.outbox"
                " WHERE event = 'submission.received' AND payload->>'xmlFormId' = %s",
                (FORM_ID,),
            )
        )
    return consumers, events, done, read_model


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
