"""Connections kept checked out between units of work, and lent to them.

Checking a connection out of SQLAlchemy's pool and back costs ~200 µs of CPU on the async
PostgreSQL engine (greenlet hops, reset-on-return) and ~60 µs on SQLite: more than all the
statements of a typical SCIM request. So :class:`~scimgate.store.engine.Database` keeps
connections checked out and lends them to one unit at a time. A connection goes back to
SQLAlchemy's pool (which resets or discards it) whenever a unit leaves it in a state we
cannot vouch for: an exception, a transaction or pipeline still open, a broken link, or
old age. SQLAlchemy results a unit left half-read are closed when it ends (on SQLite such a
cursor would pin a stale read snapshot on the connection).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from scimgate.store.connections import InlineConnection, PostgresConnection
from scimgate.store.prepared import warm_statements
from scimgate.store.transient import DatabaseUnavailable

log = logging.getLogger("scimgate.store")


class PostgresLender:
    """At most ``size`` connections, in use or kept open between units; a unit beyond
    that waits for the next connection returned (FIFO), for at most ``wait_s`` (0: no
    bound), then fails with :class:`~scimgate.store.transient.DatabaseUnavailable`. A
    fixed number, not a pool that grows under load: more connections than PostgreSQL has
    cores to run only lengthen every request's queue (see
    :func:`scimgate.settings.default_db_pool_size`). ``session``: settings each new
    connection gets (see :meth:`PostgresConnection.configure`).

    ``warm``: a new session prepares and plans the statements declared hot
    (:func:`~scimgate.store.prepared.keep_warm`) before it serves, off the request
    path (see :meth:`PostgresConnection.warm`): :meth:`fill` opens every connection that
    way at start-up, and one retired for its age is replaced by a warm one in the
    background. Their ages are spread over a tenth of ``recycle_s`` so that they are not
    all replaced at once."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        size: int,
        recycle_s: float,
        prepare: bool,
        session: Mapping[str, str] | None = None,
        wait_s: float = 0.0,
        warm: bool = False,
    ) -> None:
        self._engine = engine
        self._warm = warm
        self._warming: set[asyncio.Task[None]] = set()
        self._prepare = prepare
        self._size = size
        self._slots = asyncio.Semaphore(size)
        self._recycle_s = recycle_s
        self._session = dict(session or {})
        self._wait_s = wait_s
        self._idle: list[tuple[float, PostgresConnection]] = []
        self._open_count = 0
        """Connections open: idle or lent (a lent one holds a slot)."""

    async def _slot(self) -> None:
        if not (self._wait_s and self._slots.locked()):
            await self._slots.acquire()  # free now: no timer to arm
            return
        try:
            async with asyncio.timeout(self._wait_s):
                await self._slots.acquire()  # cancelled after the grant, it hands it on
        except TimeoutError:
            raise DatabaseUnavailable(
                f"the database is busy: all {self._size} connections of this process "
                f"stayed in use for {self._wait_s:g} s",
                busy=True,
            ) from None

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[PostgresConnection]:
        await self._slot()
        try:
            opened, conn = await self._take()
            healthy = False
            try:
                yield conn
                healthy = True
            finally:
                await self._give_back(opened, conn, healthy)
        finally:
            self._slots.release()

    async def _take(self) -> tuple[float, PostgresConnection]:
        now = time.monotonic()
        while self._idle:
            opened, conn = self._idle.pop()
            if now - opened >= self._recycle_s:
                await self._discard(conn, invalidate=True)  # a new session, not the pool's
            elif conn.hung_up():  # the server went away (or restarted) meanwhile
                await self._discard(conn, invalidate=True)
            else:
                return opened, conn
        return now, await self._open()

    async def _open(self, *, warm: bool = False) -> PostgresConnection:
        conn = PostgresConnection(await self._engine.connect(), prepare=self._prepare)
        self._open_count += 1
        try:
            if self._session:
                await conn.configure(self._session)
            if warm:
                await conn.warm(warm_statements())
        except BaseException:
            await self._discard(conn, invalidate=True)
            raise
        return conn

    async def _give_back(self, opened: float, conn: PostgresConnection, healthy: bool) -> None:
        try:
            healthy = healthy and await conn.settle()
        except Exception:  # settle's rollback failed: the link is gone
            healthy = False
        if not healthy:
            await self._discard(conn, invalidate=True)
        elif self._warm and time.monotonic() - opened >= self._recycle_s:
            await self._discard(conn, invalidate=True)  # then its slot: the replacement's
            self._spawn()
        else:  # never more than size: the slots bound every connection made
            self._idle.append((opened, conn))

    async def fill(self) -> int:
        """Open warm connections up to the pool's size, concurrently (at start-up, so the
        first requests find them ready); returns how many it opened. A connection that
        cannot be opened is logged and left to the request that needs it."""
        missing = self._size - self._open_count
        if missing <= 0 or not self._warm:
            return 0
        outcomes = await asyncio.gather(
            *(self._add_warm() for _ in range(missing)), return_exceptions=True
        )
        failed = [o for o in outcomes if isinstance(o, Exception)]
        if failed:
            log.warning(
                "opened %d of %d warm PostgreSQL connections at start-up: %s",
                missing - len(failed),
                missing,
                failed[0],
            )
        return sum(1 for o in outcomes if o is True)

    def _spawn(self) -> None:
        async def replace() -> None:
            try:
                await self._add_warm()
            except Exception as exc:
                log.warning("opening a warm PostgreSQL connection failed: %s", exc)

        task = asyncio.get_running_loop().create_task(replace())
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)

    async def _add_warm(self) -> bool:
        """One warm connection into the idle list, opened under a slot like any unit's
        connection; False if there are ``size`` already (a unit opened one meanwhile)."""
        async with self._slots:
            if self._open_count >= self._size:
                return False
            conn = await self._open(warm=True)
        # Aged by up to a tenth of recycle_s, so that the pool is not replaced at once.
        opened = time.monotonic() - random.uniform(0, self._recycle_s / 10)
        self._idle.append((opened, conn))
        return True

    async def warming_done(self) -> None:
        """Wait for the warm connections being opened in the background."""
        await asyncio.gather(*self._warming, return_exceptions=True)

    async def close(self) -> None:
        for task in self._warming:
            task.cancel()
        await self.warming_done()
        idle, self._idle = self._idle, []
        for _, conn in idle:
            await self._discard(conn)

    async def _discard(self, conn: PostgresConnection, *, invalidate: bool = False) -> None:
        self._open_count -= 1
        await _close(conn, invalidate=invalidate)


async def _close(conn: PostgresConnection, *, invalidate: bool = False) -> None:
    """Hand a connection back to SQLAlchemy's pool; ``invalidate`` discards the link."""
    try:
        if invalidate:
            await conn.sqlalchemy.invalidate()
        await conn.sqlalchemy.close()
    except Exception:  # already broken: the pool drops it
        log.debug("closing a PostgreSQL connection failed", exc_info=True)


class SqliteLender:
    """One reader and one writer connection, kept open. Statements run inline on the
    event loop and writers are serialised anyway, so one of each serves the process; a
    read that starts while the reader is lent (a unit that awaits something between
    statements) takes another from the pool."""

    def __init__(self, checkout: Callable[[bool], Connection]) -> None:
        self._checkout = checkout
        self._reader: InlineConnection | None = None
        self._reader_lent = False
        self._writer: InlineConnection | None = None

    @contextmanager
    def read(self) -> Iterator[InlineConnection]:
        if self._reader_lent:
            with self._checkout(False) as sync:
                extra = InlineConnection(sync)
                try:
                    yield extra
                finally:
                    extra.close_results()
            return
        self._reader_lent = True
        try:
            if self._reader is None:
                self._reader = InlineConnection(self._checkout(False))
            inline = self._reader
            try:
                yield inline
            except BaseException:
                self._reader = None
                inline.close_results()
                inline.sync.close()
                raise
            inline.close_results()
        finally:
            self._reader_lent = False

    def writer(self) -> InlineConnection:
        """The connection for the next write unit; the caller holds the process's write
        lock and begins the transaction on ``inline.sync``."""
        if self._writer is None:
            self._writer = InlineConnection(self._checkout(True))
        return self._writer

    def writer_done(self, ok: bool) -> None:
        """After a write unit: keep the writer, or (it failed) let it go."""
        writer = self._writer
        if writer is None:
            return
        writer.close_results()
        if not ok:
            self._writer = None
            writer.sync.close()

    def close(self) -> None:
        for inline in (self._reader, self._writer):
            if inline is not None:
                inline.sync.close()
        self._reader = self._writer = None
