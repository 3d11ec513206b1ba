"""The pure webhook rules: which targets are allowed, how bodies are signed and which data a
field subset keeps — plus the sender's HTTP client refusing private addresses at connect time."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import pytest
from tests.webhook_receiver import Receiver

from odk_mcp.kernel.problems import Problem
from odk_mcp.services.webhooks.adapters.network import TargetRefused, http_client
from odk_mcp.services.webhooks.domain.payload import select_fields
from odk_mcp.services.webhooks.domain.signing import delivery_headers, signature, verify
from odk_mcp.services.webhooks.domain.targets import address_refusal, check_url


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("10.0.0.8", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),  # noqa: S104 - an address to refuse, not one to bind
        ("224.0.0.1", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd00::1", True),
        ("::ffff:10.0.0.1", True),
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_only_public_addresses_are_webhook_targets(address: str, refused: bool) -> None:
    assert (address_refusal(address) is not None) is refused


def test_a_checked_url_keeps_its_text_and_names_its_origin() -> None:
    target = check_url("https://Hooks.Example.org/odk?x=1", allow_private=False)
    assert target.url == "https://Hooks.Example.org/odk?x=1"
    assert target.origin == "https://hooks.example.org:443"
    assert check_url("http://[::1]:8080/x", allow_private=True).origin == "http://[::1]:8080"
    with pytest.raises(Problem):
        check_url("http://[::1]:8080/x", allow_private=False)


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_exact_body() -> None:
    body = b'{"event":"submission.received"}'
    expected = hmac.new(b"secret-secret-16", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("secret-secret-16", 1700000000, body) == "sha256=" + expected
    assert verify("secret-secret-16", 1700000000, body, "sha256=" + expected)
    assert not verify("secret-secret-16", 1700000001, body, "sha256=" + expected), "replayed later"
    assert not verify("secret-secret-16", 1700000000, body + b" ", "sha256=" + expected), "body changed"
    headers = delivery_headers("secret-secret-16", 1700000000, body, "d-1", "submission.received")
    assert headers["X-ODK-MCP-Signature"] == "sha256=" + expected
    assert headers["X-ODK-MCP-Timestamp"] == "1700000000"
    assert headers["X-ODK-MCP-Delivery"] == "d-1"


DATA = {
    "name": "Ada",
    "age": 36,
    "household": {"size": 4, "head": {"name": "Bo", "age": 60}},
    "child": [{"cname": "Bo", "age": 3}, {"cname": "Cy", "age": 5}, {"age": 1}],
    "meta": {"instanceID": "uuid:1"},
}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (None, DATA),
        ([], {}),
        (["age"], {"age": 36}),
        (["household/head/name", "household/size"], {"household": {"head": {"name": "Bo"}, "size": 4}}),
        (["household"], {"household": DATA["household"]}),
        (["child/cname"], {"child": [{"cname": "Bo"}, {"cname": "Cy"}, None]}),
        (
            ["child/cname", "child/age"],
            {"child": [{"cname": "Bo", "age": 3}, {"cname": "Cy", "age": 5}, {"age": 1}]},
        ),
        (["missing", "age/deeper"], {}),
    ],
)
def test_a_field_subset_keeps_the_chosen_paths_and_their_structure(
    fields: list[str] | None, expected: object
) -> None:
    assert select_fields(DATA, fields) == expected


async def test_the_sender_client_refuses_a_name_resolving_to_loopback_at_connect_time() -> None:
    with Receiver() as receiver:
        async with http_client(allow_private=False, timeout_seconds=2.0) as client:
            with pytest.raises(TargetRefused, match="loopback"):
                await client.post(f"http://localhost:{receiver.port}/hook", content=b"{}")
        async with http_client(allow_private=True, timeout_seconds=2.0) as client:
            response = await client.post(f"http://localhost:{receiver.port}/hook", content=b"{}")
            assert response.status_code == 200
    assert len(receiver.requests) == 1, "only the allowed request reached the receiver"


async def test_the_sender_client_follows_no_redirect() -> None:
    with Receiver(status=302) as receiver:
        async with http_client(allow_private=True, timeout_seconds=2.0) as client:
            response = await client.post(receiver.url, content=b"{}")
    assert response.status_code == 302
    assert isinstance(response, httpx.Response) and len(receiver.requests) == 1
