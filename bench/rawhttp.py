"""A lean HTTP/1.1 keep-alive client for the load generator: asyncio protocols with
httptools' C response parser (httptools ships with uvicorn).

The load generator shares the machine with the server. aiohttp costs ~0.4-0.5 ms of CPU
per request here, a third of what the server itself spends: that CPU is taken from the
server (and from PostgreSQL), so the figures would measure the client as much as the
server. This client does only what the benchmark needs: a fixed pool of persistent
connections to one origin, requests with a body and a Content-Length, responses with a
Content-Length or chunked body. Nothing else (no redirects, no TLS, no proxies).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httptools  # type: ignore[import-untyped]


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad HTTP response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("the server closed the connection"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        body, self.body = b"".join(self.body), []
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), body))
        if not self.parser.should_keep_alive() and self.transport is not None:
            self.closed = True
            self.transport.close()

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class RawClient:
    """Up to ``size`` keep-alive connections to the origin of the URLs it is given."""

    def __init__(self, size: int, headers: dict[str, str]) -> None:
        self._size = size
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._origin: tuple[str, int] | None = None
        self._host = ""
        self._all: list[_Connection] = []

    async def _connect(self) -> _Connection:
        assert self._origin is not None
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, *self._origin)
        self._all.append(conn)
        return conn

    async def send(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        parts = urlsplit(url)
        if self._origin is None:
            self._origin = (parts.hostname or "127.0.0.1", parts.port or 80)
            self._host = parts.netloc
        target = parts.path + ("?" + parts.query if parts.query else "")
        payload = body or b""
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self._host}\r\n{self._fixed}"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed:
                conn = await self._connect()
            try:
                result = await conn.request(head + payload)
            except BaseException:
                if conn.transport is not None:
                    conn.transport.close()
                raise
            if not conn.closed:
                self._idle.append(conn)
            return result

    async def close(self) -> None:
        for conn in self._all:
            if conn.transport is not None:
                conn.transport.close()
        self._all.clear()
        self._idle.clear()
