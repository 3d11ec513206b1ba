"""The HTTP transport of the sender: httpx, with every connection's address vetted.

The check happens where the connection is made: the host name is resolved once, every
address it resolves to must be allowed (public, unless private targets are allowed), and
the connection goes to that vetted address, so a name that resolves to a public address
when checked and a private one when connecting (DNS rebinding) gains nothing. TLS still
verifies the certificate against the host name. Proxies from the environment are ignored:
they would connect on our behalf, unchecked.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

import anyio
import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

from odk_mcp.services.webhooks.domain.targets import address_refusal, unusable_address


class TargetRefused(Exception):
    """The host resolves to an address webhooks may not reach."""


class VettedBackend(AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself and connecting only to allowed addresses."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        with anyio.fail_after(timeout):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise TargetRefused(f"{host} does not resolve to any address")
        for address in addresses:
            reason = unusable_address(address) or (None if self._allow_private else address_refusal(address))
            if reason is not None:
                raise TargetRefused(f"{host} resolves to {reason}; webhooks may not reach it")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        raise TargetRefused("webhooks do not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class VettedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over `VettedBackend` (no proxies, HTTP/1.1)."""

    def __init__(self, allow_private: bool, max_connections: int = 50) -> None:
        super().__init__(trust_env=False)
        # httpx offers no parameter for the network backend: replace the pool it built
        # with the same one over ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
            keepalive_expiry=5.0,
            network_backend=VettedBackend(allow_private),
        )


def http_client(allow_private: bool, timeout_seconds: float) -> httpx.AsyncClient:
    """The sender's client: redirects are not followed (a 3xx is a failed attempt)."""
    return httpx.AsyncClient(
        transport=VettedTransport(allow_private),
        timeout=httpx.Timeout(timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "odk-mcp-webhooks"},
    )
