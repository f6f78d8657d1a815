"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request and answers
as the test says (status, body, delay), from its own threads."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    at: float
    """time.monotonic() when the request had arrived."""

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


Behaviour = Callable[[Hit, int], Reply]
"""Given the request and how many requests this path had before it, the reply."""


class Receiver:
    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.in_progress: dict[str, int] = {}
        self.behaviour: Behaviour = lambda _hit, _n: Reply()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                hit = Hit(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                with receiver._lock:
                    n = sum(1 for h in receiver.hits if h.path == hit.path)
                    receiver.hits.append(hit)
                    wid = hit.headers.get("webhook-id", "")
                    receiver.in_progress[wid] = receiver.in_progress.get(wid, 0) + 1
                try:
                    reply = receiver.behaviour(hit, n)
                    if reply.delay:
                        time.sleep(reply.delay)
                    with contextlib.suppress(OSError):
                        self.send_response(reply.status)
                        for key, value in reply.headers.items():
                            self.send_header(key, value)
                        self.send_header("Content-Length", str(len(reply.body)))
                        self.end_headers()
                        self.wfile.write(reply.body)
                finally:
                    with receiver._lock:
                        receiver.in_progress[wid] -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default 5 drops connections under load
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def subscribe(self, api: httpx.Client, organization_id: str, event_types: list[str]) -> str:
        """Register this receiver's ``/hook`` through the management API; its secret."""
        created = api.post(
            "/webhook-endpoints",
            json={
                "organization_id": organization_id,
                "url": self.url(),
                "event_types": event_types,
            },
        )
        assert created.status_code == 201, created.text
        return str(created.json()["secret"])

    def on(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def ids(self, path: str) -> list[str]:
        return [h.webhook_id for h in self.on(path)]

    def in_flight(self) -> list[str]:
        """webhook-ids of requests received and not yet answered."""
        with self._lock:
            return [wid for wid, n in self.in_progress.items() if n > 0]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
