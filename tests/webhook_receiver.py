"""A real HTTP receiver for webhook tests: a threaded `http.server` on a 127.0.0.1 port that
records every request and answers as told (fail the first N, hang, a fixed status)."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


def free_port() -> int:
    """A port nothing listens on (yet): connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """Answers `status`, except 500 for the first `fail_first` requests; with `hang`, holds
    each request that long (or until stopped) before answering."""

    def __init__(self, port: int = 0, fail_first: int = 0, status: int = 200, hang: float = 0.0) -> None:
        self.fail_first = fail_first
        self.status = status
        self.hang = hang
        self.requests: list[Received] = []
        self.started = 0  # requests that reached the handler (answered or still hanging)
        self.abandoned = 0  # answers the sender was no longer there to read
        self._lock = threading.Lock()
        self._released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.started += 1
                    failing = len(receiver.requests) < receiver.fail_first
                if receiver.hang:
                    receiver._released.wait(receiver.hang)
                status = 500 if failing else receiver.status
                with receiver._lock:
                    receiver.requests.append(Received(dict(self.headers.items()), body, status))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    with receiver._lock:  # the sender gave up waiting and closed the connection
                        receiver.abandoned += 1

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def accepted(self) -> list[Received]:
        """Requests answered with a 2xx."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
