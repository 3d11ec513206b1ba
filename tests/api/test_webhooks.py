"""Webhooks over the real app, the real event worker and real HTTP receivers on 127.0.0.1:
subscriptions and their permissions, signed frozen payloads, retries, the circuit breaker,
manual retries, cancellation, and ingestion that never waits on a receiver."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from structlog.testing import capture_logs
from tests.api.test_forms import project
from tests.api.test_submissions import instance, setup
from tests.conftest import MakeUser, Person
from tests.webhook_receiver import Receiver, free_port

from odk_mcp.bootstrap import Container
from odk_mcp.services.webhooks.domain.signing import verify

XML = {"Content-Type": "application/xml"}
EVENTS = ["submission.received", "submission.edited", "submission.reviewed", "submission.deleted"]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "webhook_allow_private": True,
        "webhook_backoff_seconds": 0.0,
        "webhook_timeout_seconds": 2.0,
        "webhook_breaker_threshold": 3,
        "webhook_breaker_cooldown_seconds": 0.0,
        "webhook_max_attempts": 4,
        "worker_backoff_seconds": 0.0,
        "webhook_batch_size": 50,
    }


@pytest.fixture(autouse=True)
async def subscribed(container: Container) -> None:
    """What `open_container` does at start: subscribe the consumers before anything emits."""
    await container.consumers.sync(container.db)


async def pipeline(container: Container) -> None:
    """Run the event worker, then the sender, until neither has anything due."""
    while await container.worker.drain() + await container.webhooks.sender.drain():
        pass


async def submit(client: httpx.AsyncClient, admin: Person, pid: int, instance_id: str, **kw: str) -> None:
    response = await client.post(
        f"/v1/projects/{pid}/forms/visit/submissions",
        content=instance(instance_id, **kw),
        headers={**admin.auth, **XML},
    )
    assert response.status_code == 200, response.text


async def create(client: httpx.AsyncClient, who: Person, pid: int, url: str, **body: Any) -> httpx.Response:
    return await client.post(
        f"/v1/projects/{pid}/webhooks", json={"url": url, "events": EVENTS, **body}, headers=who.auth
    )


async def deliveries(client: httpx.AsyncClient, admin: Person, pid: int, hook: int, **params: Any) -> Any:
    response = await client.get(
        f"/v1/projects/{pid}/webhooks/{hook}/deliveries", params=params, headers=admin.auth
    )
    assert response.status_code == 200, response.text
    return response.json()


# -- subscriptions --------------------------------------------------------------------------


async def test_a_manager_creates_lists_changes_and_deletes_webhooks_and_the_secret_is_shown_once(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    pid = await project(client, admin)
    manager = await make_user()
    assert (
        await client.post(f"/v1/projects/{pid}/assignments/manager/{manager.id}", headers=admin.auth)
    ).status_code == 200

    created = await create(client, manager, pid, "https://hooks.example.org/odk?team=7", fields=["age"])
    assert created.status_code == 200, created.text
    hook = created.json()
    secret = hook.pop("secret")
    assert len(secret) >= 32
    assert hook["url"] == "https://hooks.example.org/odk?team=7"
    assert hook["events"] == EVENTS and hook["xmlFormIds"] is None and hook["fields"] == ["age"]
    assert hook["active"] is True and hook["createdBy"] == manager.id

    listed = (await client.get(f"/v1/projects/{pid}/webhooks", headers=manager.auth)).json()
    assert listed == [hook]
    one = await client.get(f"/v1/projects/{pid}/webhooks/{hook['id']}", headers=manager.auth)
    assert one.json() == hook
    assert secret not in one.text

    patched = await client.patch(
        f"/v1/projects/{pid}/webhooks/{hook['id']}",
        json={"active": False, "xmlFormIds": ["visit"], "fields": None, "secret": "s" * 20},
        headers=manager.auth,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["active"] is False
    assert patched.json()["xmlFormIds"] == ["visit"] and patched.json()["fields"] is None
    assert "secret" not in patched.json()

    async with container.db.read() as conn:
        audits = (
            await conn.execute(
                text("SELECT action, details::text AS d FROM events.audits WHERE action LIKE 'webhook.%'")
            )
        ).all()
    assert [a.action for a in audits] == ["webhook.create", "webhook.update"]
    assert all(secret not in a.d and "s" * 20 not in a.d for a in audits)

    deleted = await client.delete(f"/v1/projects/{pid}/webhooks/{hook['id']}", headers=manager.auth)
    assert deleted.json() == {"success": True}
    assert (await client.get(f"/v1/projects/{pid}/webhooks", headers=manager.auth)).json() == []
    gone = await client.get(f"/v1/projects/{pid}/webhooks/{hook['id']}", headers=manager.auth)
    assert gone.status_code == 404 and gone.json()["code"] == 404.1


async def test_other_projects_managers_data_collectors_viewers_and_app_users_are_refused(
    client: httpx.AsyncClient, admin: Person, make_user: MakeUser
) -> None:
    pid, token = await setup(client, admin)
    other = await project(client, admin)
    hook = (await create(client, admin, pid, "https://hooks.example.org/a")).json()
    people = {}
    for role, scope in (("manager", other), ("formfill", pid), ("viewer", pid)):
        person = await make_user()
        await client.post(f"/v1/projects/{scope}/assignments/{role}/{person.id}", headers=admin.auth)
        people[role] = person.auth
    people["app user"] = {}
    one = f"/v1/projects/{pid}/webhooks/{hook['id']}"
    for who, auth in people.items():
        prefix = f"/v1/key/{token}" if who == "app user" else None
        for method, path, body in (
            ("GET", f"/v1/projects/{pid}/webhooks", None),
            ("POST", f"/v1/projects/{pid}/webhooks", {"url": "https://x.example.org", "events": EVENTS}),
            ("GET", one, None),
            ("PATCH", one, {"active": False}),
            ("DELETE", one, None),
            ("GET", one + "/deliveries", None),
            ("POST", one + f"/deliveries/{uuid.uuid4()}/retry", None),
        ):
            url = path.replace("/v1", prefix, 1) if prefix else path
            response = await client.request(method, url, json=body, headers=auth)
            assert response.status_code == 403, (who, method, path, response.text)
            assert response.json()["code"] == 403.1
    anonymous = await client.get(f"/v1/projects/{pid}/webhooks")
    assert anonymous.status_code == 401
    # Another project's webhook is not reachable through this project's path.
    assert (
        await client.get(f"/v1/projects/{other}/webhooks/{hook['id']}", headers=admin.auth)
    ).status_code == 404
    assert (await client.get(one, headers=admin.auth)).json()["active"] is True


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"url": "ftp://hooks.example.org/x"}, 400.8, "url"),
        ({"url": "not a url"}, 400.8, "url"),
        ({"url": "https://user:pass@hooks.example.org/x"}, 400.8, "url"),
        ({"url": "https://hooks.example.org:99999/x"}, 400.8, "url"),
        ({"url": "https:///x"}, 400.8, "url"),
        ({"url": "https://hooks.example.org/x#frag"}, 400.8, "url"),
        ({"url": "https://hooks.example.org/" + "a" * 2000}, 400.13, "url"),
        ({"events": ["submission.received", "form.published"]}, 400.8, "events"),
        ({"events": []}, 400.8, "events"),
        ({"events": "submission.received"}, 400.11, "events"),
        ({"xmlFormIds": []}, 400.8, "xmlFormIds"),
        ({"fields": ["/data/age"]}, 400.8, "fields"),
        ({"fields": ["a/../b"]}, 400.8, "fields"),
        ({"fields": ["x'; DROP TABLE webhooks.subscriptions; --"]}, 400.8, "fields"),
        ({"secret": "short"}, 400.8, "secret"),
        ({"url": "https://hooks.example.org/\x00"}, 400.8, "url"),
    ],
)
async def test_bad_subscriptions_are_refused_with_a_code_and_nothing_is_stored(
    client: httpx.AsyncClient, admin: Person, body: dict[str, Any], code: float, field: str
) -> None:
    pid = await project(client, admin)
    response = await client.post(
        f"/v1/projects/{pid}/webhooks",
        json={"url": "https://hooks.example.org/x", "events": EVENTS, **body},
        headers=admin.auth,
    )
    assert response.status_code == int(code), response.text
    assert response.json()["code"] == code
    assert response.json()["details"]["field"] == field
    assert (await client.get(f"/v1/projects/{pid}/webhooks", headers=admin.auth)).json() == []


async def test_a_huge_body_a_missing_field_and_unknown_ids_are_refused(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    huge = await client.post(
        f"/v1/projects/{pid}/webhooks",
        json={"url": "https://hooks.example.org/x", "events": EVENTS, "fields": ["a" * 400] * 5000},
        headers=admin.auth,
    )
    assert huge.status_code == 413 and huge.json()["code"] == 413.1
    missing = await client.post(f"/v1/projects/{pid}/webhooks", json={"events": EVENTS}, headers=admin.auth)
    assert missing.status_code == 400 and missing.json()["code"] == 400.2
    assert (await client.get(f"/v1/projects/{pid}/webhooks/999", headers=admin.auth)).status_code == 404
    assert (await client.get("/v1/projects/9999/webhooks", headers=admin.auth)).status_code == 404
    hook = (await create(client, admin, pid, "https://hooks.example.org/x")).json()
    base = f"/v1/projects/{pid}/webhooks/{hook['id']}"
    for delivery in ("not-a-uuid", str(uuid.uuid4())):
        response = await client.post(f"{base}/deliveries/{delivery}/retry", headers=admin.auth)
        assert response.status_code == 404 and response.json()["code"] == 404.1
    bad_status = await client.get(f"{base}/deliveries", params={"status": "lost"}, headers=admin.auth)
    assert bad_status.status_code == 400 and bad_status.json()["code"] == 400.8
    nulled = await client.patch(base, json={"url": None}, headers=admin.auth)
    assert nulled.status_code == 400 and nulled.json()["details"]["field"] == "url"


@pytest.mark.parametrize("settings_overrides", [{}])
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/x",
        "http://localhost/x",
        "http://LOCALHOST./x",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
    ],
)
async def test_private_targets_are_refused_unless_allowed(
    client: httpx.AsyncClient, admin: Person, url: str
) -> None:
    pid = await project(client, admin)
    response = await create(client, admin, pid, url)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 400.8 and response.json()["details"]["field"] == "url"


# -- delivery -------------------------------------------------------------------------------


async def test_a_delivery_is_signed_and_carries_the_submission_frozen_at_the_event(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await setup(client, admin)
    with Receiver() as receiver:
        hook = (await create(client, admin, pid, receiver.url, fields=["age", "child/cname"])).json()
        everything = (await create(client, admin, pid, receiver.url, events=["submission.reviewed"])).json()
        elsewhere = (await create(client, admin, pid, receiver.url, xmlFormIds=["other"])).json()
        with capture_logs() as logs:
            await submit(client, admin, pid, "uuid:w1", age="40")
            await container.worker.drain()  # the deliveries of the receipt are queued now...
            # ...so they do not show the review that comes before they are sent.
            await client.patch(
                f"/v1/projects/{pid}/forms/visit/submissions/uuid:w1",
                json={"reviewState": "approved"},
                headers=admin.auth,
            )
            await pipeline(container)

    by_hook: dict[int, list[Any]] = {}
    for request in receiver.accepted():
        by_hook.setdefault(request.json["webhookId"], []).append(request)
    assert set(by_hook) == {hook["id"], everything["id"]}, "the form filter left the third one out"
    assert elsewhere["id"] not in by_hook
    received, reviewed = sorted(by_hook[hook["id"]], key=lambda r: r.json["eventId"])
    for request in (received, reviewed):
        timestamp = int(request.headers["X-ODK-MCP-Timestamp"])
        assert abs(time.time() - timestamp) < 60
        assert verify(hook["secret"], timestamp, request.body, request.headers["X-ODK-MCP-Signature"])
        assert not verify(
            everything["secret"], timestamp, request.body, request.headers["X-ODK-MCP-Signature"]
        )
        assert not verify(hook["secret"], timestamp + 1, request.body, request.headers["X-ODK-MCP-Signature"])
        assert request.headers["X-ODK-MCP-Delivery"] == request.json["id"]
        assert request.headers["Content-Type"] == "application/json"
    body = received.json
    assert received.headers["X-ODK-MCP-Event"] == body["event"] == "submission.received"
    assert body["projectId"] == pid and body["xmlFormId"] == "visit" and body["instanceId"] == "uuid:w1"
    assert body["submitterId"] == admin.id
    assert body["submission"]["instanceId"] == "uuid:w1" and body["submission"]["formVersion"] == "3"
    assert body["data"] == {"age": 40, "child": [{"cname": "Bo"}, {"cname": "Cy"}]}, "only the chosen fields"
    # Frozen when queued: the review came later, and the received event's copy does not show it.
    assert body["reviewState"] is None
    assert reviewed.json["event"] == "submission.reviewed" and reviewed.json["reviewState"] == "approved"
    assert reviewed.json["details"]["previous"] is None
    full = by_hook[everything["id"]][0].json
    assert full["data"]["name"] == "Ada" and full["data"]["meta"]["instanceID"] == "uuid:w1"

    delivered = [entry for entry in logs if entry["event"] == "webhook_delivered"]
    assert len(delivered) == 3, "one log line per delivery"
    assert all(
        secret not in repr(entry) for entry in logs for secret in (hook["secret"], everything["secret"])
    )
    assert all(receiver.url not in repr(entry) and "uuid:w1" not in repr(entry) for entry in logs), (
        "neither the URL nor anything of the body is logged"
    )

    log = await deliveries(client, admin, pid, hook["id"])
    assert [d["status"] for d in log] == ["delivered", "delivered"]
    assert {d["id"] for d in log} == {received.json["id"], reviewed.json["id"]}
    assert all(d["attempts"] == 1 and d["lastStatus"] == 200 and d["deliveredAt"] for d in log)


async def test_a_receiver_failing_n_times_then_recovering_gets_every_event_exactly_once(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await setup(client, admin)
    # 6 failures with a breaker at 3: the breaker opens twice on the way.
    with Receiver(fail_first=6) as receiver:
        hook = (await create(client, admin, pid, receiver.url)).json()
        for n in range(8):
            await submit(client, admin, pid, f"uuid:r{n}")
        await pipeline(container)
        # The events are redelivered to the consumer (at-least-once): nothing is queued twice.
        async with container.db.transaction() as conn:
            await conn.execute(
                text(
                    "UPDATE events.deliveries SET status = 'pending', attempts = 0"
                    " WHERE consumer = 'webhooks'"
                )
            )
        await pipeline(container)

    accepted = receiver.accepted()
    assert len([r for r in receiver.requests if r.status == 500]) == 6
    assert sorted(r.json["instanceId"] for r in accepted) == sorted(f"uuid:r{n}" for n in range(8))
    assert len({r.headers["X-ODK-MCP-Delivery"] for r in accepted}) == 8
    assert len({r.json["eventId"] for r in accepted}) == 8
    log = await deliveries(client, admin, pid, hook["id"])
    assert len(log) == 8 and {d["status"] for d in log} == {"delivered"}
    assert sum(d["attempts"] for d in log) == 8 + 6


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "webhook_allow_private": True,
            "webhook_backoff_seconds": 0.0,
            "webhook_breaker_threshold": 3,
            "webhook_breaker_cooldown_seconds": 0.5,
            "webhook_max_attempts": 4,
        }
    ],
)
async def test_a_dead_endpoint_trips_the_breaker_and_waiting_deliveries_spend_no_attempts(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await setup(client, admin)
    port = free_port()  # nothing listens: every connection is refused
    url = f"http://127.0.0.1:{port}/hook"
    hook = (await create(client, admin, pid, url)).json()
    for n in range(10):
        await submit(client, admin, pid, f"uuid:d{n}")
    await pipeline(container)

    log = await deliveries(client, admin, pid, hook["id"])
    assert len(log) == 10
    assert sum(d["attempts"] for d in log) == 3, "three failures open the breaker; the rest wait"
    assert {d["status"] for d in log} == {"pending"}
    assert all("ConnectError" in d["lastError"] for d in log if d["attempts"])
    async with container.db.read() as conn:
        state = (await conn.execute(text("SELECT state FROM webhooks.endpoints"))).scalar_one()
    assert state == "open"
    assert await container.webhooks.sender.drain() == 0, "nothing is sent while the breaker is open"
    metrics = (await client.get("/metrics")).text
    assert "odk_mcp_webhook_open_endpoints 1.0" in metrics
    assert 'odk_mcp_webhook_deliveries{status="pending"} 10.0' in metrics
    assert 'odk_mcp_webhook_deliveries{status="failed"} 0.0' in metrics

    await asyncio.sleep(0.6)
    with Receiver(port=port) as receiver:
        # The cool-down passed: one probe goes out, succeeds, closes the breaker, the rest follow.
        await pipeline(container)
    assert sorted(r.json["instanceId"] for r in receiver.accepted()) == sorted(
        f"uuid:d{n}" for n in range(10)
    )
    log = await deliveries(client, admin, pid, hook["id"])
    assert {d["status"] for d in log} == {"delivered"}
    assert max(d["attempts"] for d in log) <= 2
    async with container.db.read() as conn:
        row = (await conn.execute(text("SELECT state, consecutive_failures FROM webhooks.endpoints"))).one()
    assert tuple(row) == ("closed", 0)


async def test_a_failed_delivery_is_retried_by_hand_and_the_retry_is_audited(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await setup(client, admin)
    with Receiver(status=503) as receiver:
        hook = (await create(client, admin, pid, receiver.url)).json()
        await submit(client, admin, pid, "uuid:m1")
        for _ in range(10):  # the breaker opens and cools down (0 s) between attempts
            await pipeline(container)
        [failed] = await deliveries(client, admin, pid, hook["id"], status="failed")
        assert failed["attempts"] == 4 and failed["lastStatus"] == 503 and failed["lastError"] == "HTTP 503."
        assert len(receiver.requests) == 4

        receiver.status = 204
        base = f"/v1/projects/{pid}/webhooks/{hook['id']}/deliveries/{failed['id']}/retry"
        retried = await client.post(base, headers=admin.auth)
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
        await pipeline(container)
        [done] = await deliveries(client, admin, pid, hook["id"])
        assert done["status"] == "delivered" and done["lastStatus"] == 204 and done["attempts"] == 1
        assert len(receiver.accepted()) == 1
        assert receiver.accepted()[0].json["id"] == failed["id"]

        again = await client.post(base, headers=admin.auth)
        assert again.status_code == 409 and again.json()["code"] == 409.21
    async with container.db.read() as conn:
        details = (
            await conn.execute(
                text("SELECT details FROM events.audits WHERE action = 'webhook.delivery.retry'")
            )
        ).scalar_one()
    assert details == {"deliveryId": failed["id"], "previousStatus": "failed"}


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "webhook_allow_private": True,
            "webhook_breaker_threshold": 3,
            "webhook_breaker_cooldown_seconds": 60.0,
        }
    ],
)
async def test_deleting_a_webhook_cancels_its_pending_deliveries(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await setup(client, admin)
    port = free_port()
    hook = (await create(client, admin, pid, f"http://127.0.0.1:{port}/hook")).json()
    for n in range(5):
        await submit(client, admin, pid, f"uuid:c{n}")
    await pipeline(container)
    assert {d["status"] for d in await deliveries(client, admin, pid, hook["id"])} == {"pending"}

    await client.delete(f"/v1/projects/{pid}/webhooks/{hook['id']}", headers=admin.auth)
    await asyncio.sleep(0.1)
    with Receiver(port=port) as receiver:
        await submit(client, admin, pid, "uuid:c-after")
        await pipeline(container)
    assert receiver.requests == []
    async with container.db.read() as conn:
        statuses = (
            await conn.execute(text("SELECT status, count(*) FROM webhooks.deliveries GROUP BY 1"))
        ).all()
    assert dict(statuses) == {"cancelled": 5}, "nothing sent, nothing queued after the deletion"


async def test_an_inactive_webhook_and_draft_test_submissions_queue_nothing(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await setup(client, admin)
    with Receiver() as receiver:
        paused = (await create(client, admin, pid, receiver.url, active=False)).json()
        await submit(client, admin, pid, "uuid:i1")
        await pipeline(container)
        assert receiver.requests == []

        await client.patch(
            f"/v1/projects/{pid}/webhooks/{paused['id']}", json={"active": True}, headers=admin.auth
        )
        assert (
            await client.post(f"/v1/projects/{pid}/forms/visit/draft", headers=admin.auth)
        ).status_code == 200
        draft = await client.post(
            f"/v1/projects/{pid}/forms/visit/draft/submissions",
            content=instance("uuid:i-draft"),
            headers={**admin.auth, **XML},
        )
        assert draft.status_code == 200, draft.text
        await submit(client, admin, pid, "uuid:i2")
        await pipeline(container)
    assert [r.json["instanceId"] for r in receiver.accepted()] == ["uuid:i2"]


# -- ingestion never waits ------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings_overrides",
    [{"webhook_allow_private": True, "webhook_timeout_seconds": 5.0, "worker_poll_seconds": 0.05}],
)
async def test_a_hanging_receiver_does_not_slow_ingestion(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    """Submissions are timed with the real background worker and sender running, first with no
    webhook, then with a webhook whose receiver holds every request for the whole timeout."""
    pid, _ = await setup(client, admin)
    await container.start()

    async def timed(prefix: str, count: int) -> list[float]:
        took = []
        for n in range(count):
            started = time.perf_counter()
            await submit(client, admin, pid, f"uuid:{prefix}{n}")
            took.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)  # let the background tasks run between submissions
        return took

    await timed("warm", 5)
    baseline = await timed("base", 30)
    with Receiver(hang=30.0) as receiver:
        await create(client, admin, pid, receiver.url)
        with_hook = await timed("hook", 30)
        hanging = receiver.started
    baseline.sort()
    with_hook.sort()
    assert hanging >= 1, "the sender was waiting on the receiver while submissions came in"
    # No submission waited on the receiver (each would take its 5 s timeout), and the typical
    # submission is not slower beyond noise.
    assert with_hook[-1] < 2.5, with_hook
    assert with_hook[len(with_hook) // 2] < 3 * baseline[len(baseline) // 2] + 0.05, (baseline, with_hook)


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "webhook_allow_private": True,
            "webhook_timeout_seconds": 4.0,
            "webhook_breaker_threshold": 100,
            "worker_poll_seconds": 0.05,
            "webhook_poll_seconds": 0.05,
        }
    ],
)
async def test_a_hanging_endpoint_does_not_hold_up_other_endpoints(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await setup(client, admin)
    await container.start()
    with Receiver(hang=30.0) as hanging, Receiver() as fast:
        await create(client, admin, pid, hanging.url, events=["submission.received"])
        await create(client, admin, pid, fast.url, events=["submission.received"])
        started = time.perf_counter()
        for n in range(4):
            await submit(client, admin, pid, f"uuid:h{n}")
        while len(fast.accepted()) < 4 and time.perf_counter() - started < 20:
            await asyncio.sleep(0.02)
        took = time.perf_counter() - started
        held = hanging.started
    assert len(fast.accepted()) == 4
    # The hanging endpoint's four deliveries take 4 x 4 s one after another; the fast
    # endpoint's went out meanwhile, without waiting for even one of those timeouts.
    assert took < 4.0, took
    assert held >= 1
