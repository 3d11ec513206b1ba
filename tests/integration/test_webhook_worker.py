"""`odk-mcp worker` delivers webhooks: a separate worker process queues the deliveries of
events committed by the API and sends them to a real receiver, then stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.api.test_submissions import instance, setup
from tests.conftest import Person
from tests.webhook_receiver import Receiver

from odk_mcp.settings import Settings


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}


def _wait_for(process: subprocess.Popen[str], marker: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    assert process.stderr is not None
    while marker not in process.stderr.readline():
        assert process.poll() is None and time.monotonic() < deadline, f"no {marker} from the worker"


@pytest.mark.slow
async def test_the_worker_command_sends_webhooks_and_stops_on_sigterm(
    client: httpx.AsyncClient, admin: Person, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODK_MCP_") and k != "DATABASE_URL"}
    env.update(
        ODK_MCP_DATABASE_URL=database_url,
        # The same data directory as the API's container: the same key unseals the secret.
        ODK_MCP_DATA_DIR=str(settings.data_dir),
        ODK_MCP_LOG_LEVEL="INFO",
        ODK_MCP_WEBHOOK_ALLOW_PRIVATE="true",
        ODK_MCP_WORKER_POLL_SECONDS="0.2",
    )
    pid, _ = await setup(client, admin)
    worker = subprocess.Popen(
        [sys.executable, "-m", "odk_mcp", "worker"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(worker, "event_worker_started")  # its consumers are subscribed by now
        with Receiver() as receiver:
            created = await client.post(
                f"/v1/projects/{pid}/webhooks",
                json={"url": receiver.url, "events": ["submission.received"]},
                headers=admin.auth,
            )
            assert created.status_code == 200, created.text
            for n in range(3):
                response = await client.post(
                    f"/v1/projects/{pid}/forms/visit/submissions",
                    content=instance(f"uuid:w{n}"),
                    headers={**admin.auth, "Content-Type": "application/xml"},
                )
                assert response.status_code == 200, response.text
            deadline = time.monotonic() + 60
            while len(receiver.accepted()) < 3:
                assert time.monotonic() < deadline, "the worker process did not deliver the webhooks"
                time.sleep(0.1)
        assert sorted(r.json["instanceId"] for r in receiver.accepted()) == ["uuid:w0", "uuid:w1", "uuid:w2"]
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, errors
    assert "webhook_sender_stopped" in errors and "event_worker_stopped" in errors
