"""Which URLs a webhook may target, and which network addresses it may reach.

A webhook makes the server send requests to an address a project manager chose, so it
could be aimed at the server's own network (a database, a cloud metadata service): the
classic server-side request forgery. Unless `ODK_MCP_WEBHOOK_ALLOW_PRIVATE` is on, only
public (globally routable) addresses are allowed. The URL is checked when a subscription
is saved (literal addresses, `localhost`) and every address a host name resolves to is
checked again when connecting, so a name that later resolves elsewhere gains nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from odk_mcp.kernel import problems
from odk_mcp.kernel.problems import Problem

MAX_URL_LENGTH = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    """A checked webhook URL and its origin (scheme://host:port, what the breaker tracks)."""

    url: str
    origin: str


def _bad_url(reason: str) -> Problem:
    return Problem(problems.UNEXPECTED_VALUE, f"The webhook url {reason}.", {"field": "url"})


def check_url(url: str, allow_private: bool) -> Target:
    """The URL as a target, or 400.8 saying what is wrong with it."""
    if len(url) > MAX_URL_LENGTH:
        raise Problem(problems.VALUE_TOO_LONG, details={"field": "url", "max": MAX_URL_LENGTH})
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise _bad_url("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _bad_url("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _bad_url("must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        # Credentials in the URL would be shown in every listing and log line naming it.
        raise _bad_url("must not contain a user name or password; the signature authenticates the sender")
    host = (parts.hostname or "").lower()
    if not host:
        raise _bad_url("has no host")
    if parts.fragment:
        raise _bad_url("must not contain a #fragment")
    if not allow_private:
        reason = host_refusal(host)
        if reason is not None:
            raise _bad_url(f"targets {reason}, which this server does not allow")
    effective_port = port if port is not None else DEFAULT_PORTS[scheme]
    shown_host = f"[{host}]" if ":" in host else host
    return Target(url=url, origin=f"{scheme}://{shown_host}:{effective_port}")


def host_refusal(host: str) -> str | None:
    """Why a host written in a URL is refused as a public target, or None."""
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "the local machine"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked when connecting
    return address_refusal(str(address))


def address_refusal(address: str) -> str | None:
    """Why a resolved address is not a public target (loopback, private, ...), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "a non-public address"
    return None


def unusable_address(address: str) -> str | None:
    """Addresses refused even when private targets are allowed (nothing listens there)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_unspecified or ip.is_multicast:
        return "an unspecified or multicast address"
    return None
