"""One simple-query message on a psycopg connection, sent and read through its libpq
handle rather than through a psycopg cursor.

A request's statements go to PostgreSQL as one simple-query message (see
``PostgresConnection``). psycopg's ``AsyncCursor.execute`` spends ~60 µs of CPU per message
on this work's behalf beyond libpq's (query conversion, its generator-driven wait, result
bookkeeping, a row maker per result): half of what a round trip cost the server. Here the
message is sent with ``PQsendQuery``, the socket is awaited on the event loop, and the
results are loaded with psycopg's own ``Transformer`` (its loaders, so values come back
exactly as a cursor returns them) and read like a cursor (:class:`Results`). Errors are
psycopg's own exception classes (``psycopg.errors.UniqueViolation`` …), built from the
failed result as psycopg builds them.

The connection must not be in use by anything else meanwhile: connections are lent to one
unit of work at a time. If the awaiting task is cancelled, the message's results are left
unread and the connection is busy: the lender sees it and closes it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg import AsyncConnection, OperationalError, errors, pq
from psycopg.abc import Transformer

__all__ = ["Results", "run"]

_FATAL = pq.ExecStatus.FATAL_ERROR
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_CONNECTION_OK = pq.ConnStatus.OK


class Results:
    """The results of one message, read as a psycopg cursor reads them: positioned on the
    first; ``nextset()`` moves on, ``fetchall()`` loads the current one's rows as tuples,
    ``rowcount`` as psycopg counts it."""

    __slots__ = ("_at", "_loader", "_results")

    def __init__(self, results: list[pq.abc.PGresult], loader: Transformer) -> None:
        self._results = results
        self._loader = loader
        self._at = 0

    def nextset(self) -> bool:
        if self._at + 1 >= len(self._results):
            return False
        self._at += 1
        return True

    async def fetchall(self) -> list[Any]:
        result = self._results[self._at]
        if result.status != _TUPLES_OK:
            return []
        self._loader.set_pgresult(result)
        rows: list[Any] = self._loader.load_rows(0, result.ntuples, tuple)
        return rows

    @property
    def rowcount(self) -> int:
        if not self._results:
            return -1
        result = self._results[self._at]
        if result.status == _TUPLES_OK:
            return int(result.ntuples)
        count = result.command_tuples
        return count if count is not None else -1


async def run(driver: AsyncConnection[Any], sql: str, loader: Transformer) -> Results:
    """Send ``sql`` (one or more statements, no parameters) and read every result.
    Raises the first failed statement's error, as psycopg would."""
    pgconn = driver.pgconn
    if pgconn.status != _CONNECTION_OK:
        raise OperationalError("the connection is closed")
    encoding = driver.info.encoding
    loop = asyncio.get_running_loop()
    socket = pgconn.socket
    pgconn.send_query(sql.encode(encoding))
    while pgconn.flush():  # a large message: wait until the socket takes the rest
        await _ready(loop, socket, writing=True)
    results: list[pq.abc.PGresult] = []
    failed: Exception | None = None
    while True:
        if pgconn.is_busy():
            await _ready(loop, socket, writing=False)
            pgconn.consume_input()
            continue
        result = pgconn.get_result()
        if result is None:
            break
        if result.status == _FATAL and failed is None:
            failed = errors.error_from_result(result, encoding=encoding)
        results.append(result)
    if failed is not None:
        raise failed
    return Results(results, loader)


async def _ready(loop: asyncio.AbstractEventLoop, socket: int, *, writing: bool) -> None:
    ready = loop.create_future()
    add, remove = (
        (loop.add_writer, loop.remove_writer) if writing else (loop.add_reader, loop.remove_reader)
    )
    add(socket, _wake, ready)
    try:
        await ready
    finally:
        remove(socket)


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)
