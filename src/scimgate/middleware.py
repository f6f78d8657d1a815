"""Pure-ASGI middleware: path normalisation and one structured access-log line per request."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scimgate.logs import line_writer
from scimgate.store.jsoncodec import dumps

access_log = logging.getLogger("scimgate.access")

_SLASHES = re.compile(r"/{2,}")
_DIRECTORY_IN_PATH = re.compile(r"^/scim/v2/([^/]+)")


class NormalizePath:
    """Collapse ``//`` and drop a trailing ``/``: IdPs join a Tenant URL that ends in a slash
    with ``/Users`` as given, and both forms must reach the same endpoint."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            fixed = _SLASHES.sub("/", path)
            if len(fixed) > 1:
                fixed = fixed.rstrip("/")
            if fixed != path:
                scope = dict(scope, path=fixed, raw_path=fixed.encode())
        await self.app(scope, receive, send)


class AccessLog:
    """One JSON line per request: method, path, directory id, status, duration.

    Never the query string (filters carry e-mail addresses), never headers (tokens), and
    never bodies.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        # Read before routing: routers update this scope in place.
        path: str = scope.get("root_path", "") + scope["path"]

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                match = _DIRECTORY_IN_PATH.match(path)
                record: dict[str, Any] = {
                    "event": "request",
                    "method": scope["method"],
                    "path": path,
                    "directory_id": match.group(1) if match else None,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                }
                line = dumps(record)
                write = line_writer(access_log)  # serve's own handler: no LogRecord
                if write is None:
                    access_log.info(line)
                else:
                    write(line)
