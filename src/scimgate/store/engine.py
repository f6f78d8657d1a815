"""Engine creation and the two kinds of unit of work: ``read()`` and ``write()``.

SQLite allows one writer at a time. A write transaction that starts as a reader and then
upgrades fails at once with SQLITE_BUSY under concurrency, so on SQLite every ``write()``
begins with ``BEGIN IMMEDIATE`` (taking the write lock up front, waiting up to
``busy_timeout``) and writers of one process take turns on one connection instead of
spinning on the file lock; the units that are ready together share one ``COMMIT`` (see
:mod:`scimgate.store.shared_commit`). PostgreSQL runs writes concurrently; correctness
there comes from constraints and row locks taken by the repositories.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from scimgate.store import jsoncodec
from scimgate.store.checkpoint import WalCheckpointer
from scimgate.store.connections import Conn, InlineConnection
from scimgate.store.feed_order import out_of_order
from scimgate.store.held import PostgresLender, SqliteLender
from scimgate.store.literals import LOST_SQLSTATES, stale_plan
from scimgate.store.shared_commit import SharedCommits
from scimgate.store.transient import DatabaseUnavailable, transient

log = logging.getLogger("scimgate.store")
_WRITE = "scimgate_write"
_READ = "scimgate_read"
# Serialization failure, deadlock detected, and a prepared statement missing on (or
# already on) a server session a pooler shared: the process stops preparing, then replays.
# (A prepared statement a migration made stale is replayed too: see replayable.)
_CONTENDED = frozenset({"40001", "40P01"})
_RETRYABLE_SQLSTATES = {*_CONTENDED, *LOST_SQLSTATES}
T = TypeVar("T")


async def _backoff(attempt: int) -> None:
    """The pause before replaying a unit for the ``attempt``-th time: contenders that
    deadlocked should not meet again at once."""
    await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))


def replayable(exc: BaseException) -> bool:
    """Whether a unit that failed with ``exc`` can simply be run again (nothing of it was
    committed, and running it again can succeed)."""
    if not isinstance(exc, DBAPIError):
        return False
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES or stale_plan(exc.orig)


class _Reachable:
    """``async with _REACHABLE``: raise :class:`DatabaseUnavailable` for what
    :func:`~scimgate.store.transient.transient` recognises, from a unit's statements as
    from getting its connection. A stateless class, not a generator: ~1 µs less per unit."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: Any, tb: Any) -> bool:
        if isinstance(exc, Exception) and not isinstance(exc, DatabaseUnavailable):
            mapped = transient(exc)
            if mapped is not None:
                raise mapped from exc
        return False


_REACHABLE = _Reachable()


def sync_url(database_url: str) -> URL:
    """The URL with this project's driver: psycopg 3 (sync and async) or sqlite3."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend in {"postgresql", "postgres"}:
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite")
    raise ValueError(f"unsupported database {backend!r}: use sqlite:///path.db or postgresql://…")


def _sqlite_pragmas(
    busy_timeout_ms: int, *, auto_checkpoint: bool = True
) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN itself (pysqlite would otherwise
        # begin lazily, as DEFERRED, on the first write).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={busy_timeout_ms}",
            "PRAGMA case_sensitive_like=ON",
            # Cap the log file kept after a checkpoint resets it (bytes).
            "PRAGMA journal_size_limit=67108864",
            *(() if auto_checkpoint else ("PRAGMA wal_autocheckpoint=0",)),
        ):
            cursor.execute(pragma)
        cursor.close()

    return on_connect


def _sqlite_on_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get(_READ):
        return  # reads run in autocommit mode: no transaction, no COMMIT to pay for
    # On the driver: SQLAlchemy's execution path (``exec_driver_sql``) cost every write
    # 7 µs more for a statement with no parameters and no result. A busy database raises
    # sqlite3's own OperationalError here (see _begin_immediate).
    driver: Any = conn.connection.driver_connection
    driver.execute("BEGIN IMMEDIATE" if options.get(_WRITE) else "BEGIN DEFERRED")


def configure_sqlite(
    sync_engine: Any, busy_timeout_ms: int = 30_000, *, auto_checkpoint: bool = True
) -> None:
    """Install the connect/begin hooks on a (sync) SQLite engine. ``busy_timeout_ms`` is
    how long one statement may block waiting for another process's lock;
    ``auto_checkpoint=False`` leaves WAL checkpoints to a :class:`WalCheckpointer`."""
    event.listen(
        sync_engine, "connect", _sqlite_pragmas(busy_timeout_ms, auto_checkpoint=auto_checkpoint)
    )
    event.listen(sync_engine, "begin", _sqlite_on_begin)


_LINK_TIMEOUTS = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}
"""libpq's TCP settings for a link that dies silently (a fail-over that moves the
address, a partition, a NAT that forgets): an idle pooled connection is found dead within
~60 s (keepalives; then its socket says so, see ``PostgresConnection.hung_up``), and a
request whose data the server stops acknowledging fails after 30 s instead of the
kernel's ~15 minutes of retransmissions. Client-side socket options: nothing is sent to
the server (PgBouncer is fine). The database URL's own values win."""


def _link_timeouts(url: URL) -> dict[str, str]:
    return {k: v for k, v in _LINK_TIMEOUTS.items() if k not in url.query}


def _session_settings(**timeouts: float) -> dict[str, str]:
    """``SET`` values (milliseconds, at least 1) of the timeouts that are not 0."""
    return {name: str(max(1, round(s * 1000))) for name, s in timeouts.items() if s > 0}


_INLINE_BUSY_MS = 50
_RECYCLE_S = 1800.0


async def _begin_immediate(sync: Connection, wait_s: float) -> Any:
    """BEGIN IMMEDIATE on SQLite, waiting up to ``wait_s`` (0: for as long as it takes)
    for another process's write lock without blocking the event loop: each attempt waits
    at most _INLINE_BUSY_MS, then we sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s if wait_s else math.inf
    while True:
        try:
            return sync.begin()
        except (OperationalError, sqlite3.OperationalError) as exc:
            if "locked" not in str(getattr(exc, "orig", exc)):
                raise
            if loop.time() > deadline:
                # Another process (a CLI command, a backup) holds the file's write lock.
                raise DatabaseUnavailable(
                    f"the database is busy: locked by another process (waited {wait_s:g} s)",
                    busy=True,
                ) from exc
            await asyncio.sleep(random.uniform(0.005, 0.02))


class Database:
    """An engine plus the transaction discipline every repository uses.

    PostgreSQL: an async engine (psycopg 3); reads run in autocommit mode (no BEGIN and
    COMMIT round trips), writes in a transaction. SQLite: a synchronous engine driven
    inline (see :class:`InlineConnection`), one writer at a time. Connections are lent
    to units of work, not checked out per unit (see :mod:`scimgate.store.held`).
    """

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = 10,
        background_checkpoints: bool = False,
        prepared_statements: bool = True,
        warm_sessions: bool = True,
        lock_timeout: float = 0.0,
        statement_timeout: float = 0.0,
        pool_timeout: float = 0.0,
    ) -> None:
        """``background_checkpoints``: on a SQLite file, checkpoint the WAL from a thread
        instead of inside commits (see :mod:`scimgate.store.checkpoint`); for a
        long-running server. ``prepared_statements``: PostgreSQL, see
        :mod:`scimgate.store.literals` (off behind a pooler that shares sessions).
        ``warm_sessions``: PostgreSQL, new sessions plan the hot statements before they
        serve (see :meth:`warm_up`).

        Bounded waits, in seconds, 0 for none. ``lock_timeout``: on SQLite, how long a
        write waits for another process's lock on the file; on PostgreSQL it is set on
        each session this process opens, with ``statement_timeout`` (both left to the
        server's own settings when 0, or when a pooler shares sessions).
        ``pool_timeout``: how long a unit waits for a free PostgreSQL connection. A unit
        past one of them fails with :class:`DatabaseUnavailable` (``busy``) and its
        transaction rolls back."""
        # psycopg 3 serves both the sync and the async engine; SQLite is driven inline.
        url = sync_url(database_url)
        self.url = url
        self.dialect = url.get_backend_name()
        self._lock_wait_s = lock_timeout
        if self.dialect == "sqlite":
            self.sync_engine = create_engine(
                sync_url(database_url),
                pool_size=max(pool_size, 5),
                # Never make the event loop wait for a connection (only the loop could
                # return one): units that overlap get extra ones.
                max_overflow=-1,
                connect_args={"check_same_thread": False},
                json_serializer=jsoncodec.dumps,
                json_deserializer=jsoncodec.loads,
            )
            # Statements run on the event loop: never let one block it for long waiting
            # for another process's write lock; write() retries BEGIN asynchronously.
            path = url.database
            self._checkpointer = (
                WalCheckpointer(path)
                if background_checkpoints and path and path != ":memory:"
                else None
            )
            configure_sqlite(
                self.sync_engine,
                busy_timeout_ms=_INLINE_BUSY_MS,
                auto_checkpoint=self._checkpointer is None,
            )
            self._sqlite = SqliteLender(self._sqlite_checkout)
            self._shared_commits = SharedCommits(self._sqlite_begin, self._sqlite.writer_done)
            return
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_pre_ping=False,
            # The lender below never holds more than pool_size: no overflow needed.
            pool_size=pool_size,
            max_overflow=0,
            pool_recycle=_RECYCLE_S,
            # Prepared statements break behind PgBouncer in transaction mode.
            connect_args={"prepare_threshold": None, **_link_timeouts(url)},
            # Connections stay in autocommit: reads need no BEGIN/COMMIT, and no
            # isolation-level switch per checkout (~60 µs each way); write() sends its
            # own BEGIN and COMMIT (see PostgresConnection).
            isolation_level="AUTOCOMMIT",
            json_serializer=jsoncodec.dumps,
            json_deserializer=jsoncodec.loads,
        )
        self._postgres = PostgresLender(
            self.engine,
            size=pool_size,
            recycle_s=_RECYCLE_S,
            prepare=prepared_statements,
            session=_session_settings(
                lock_timeout=lock_timeout, statement_timeout=statement_timeout
            ),
            wait_s=pool_timeout,
            warm=warm_sessions and prepared_statements,
        )

    def _sqlite_checkout(self, write: bool) -> Connection:
        sync = self.sync_engine.connect()
        sync.execution_options(**{_WRITE if write else _READ: True})
        return sync

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        """A connection for reads, in autocommit mode: each statement sees the latest
        committed data. Code that needs one snapshot across statements uses write()."""
        if self.is_sqlite:
            with self._sqlite.read() as inline:
                yield inline
            return
        async with _REACHABLE, self._postgres.lend() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Conn]:
        """A read-write transaction; commits on success, rolls back on any exception."""
        if not self.is_sqlite:
            async with _REACHABLE, self._postgres.lend() as pg:
                await pg.begin()
                try:
                    yield pg
                    await pg.commit()
                except BaseException:
                    await pg.rollback()
                    raise
            return
        if self._checkpointer is not None:
            self._checkpointer.start()  # on the first write; a no-op after
        async with self._shared_commits.unit() as inline:
            yield inline

    async def _sqlite_begin(self) -> tuple[InlineConnection, Any]:
        """Begin a transaction on the writer (for
        :class:`~scimgate.store.shared_commit.SharedCommits`, which begins one only once
        the last has ended)."""
        inline = self._sqlite.writer()
        try:
            return inline, await _begin_immediate(inline.sync, self._lock_wait_s)
        except BaseException:
            self._sqlite.writer_done(False)
            raise

    async def warm_up(self, timeout_s: float = 10.0) -> int:
        """Open the PostgreSQL pool's connections now, each with the hot statements
        prepared and planned (see :class:`~scimgate.store.held.PostgresLender`), so that
        the first requests after a start do not pay for new sessions; returns how many it
        opened. Failures and a database slower than ``timeout_s`` are logged, not raised:
        requests open connections as before. Nothing to do on SQLite, whose statements
        are planned in microseconds."""
        if self.is_sqlite:
            return 0
        try:
            async with asyncio.timeout(timeout_s):
                return await self._postgres.fill()
        except TimeoutError:
            log.warning("warming PostgreSQL connections took over %g s: left", timeout_s)
            return 0

    async def transact(self, work: Callable[[Conn], Awaitable[T]], *, attempts: int = 5) -> T:
        """Run ``work`` in a write transaction, retrying PostgreSQL deadlocks and
        serialization failures (the whole transaction is replayed, so ``work`` must not
        have effects outside the database): after a random pause, except a change that
        would have come out of order in the feed (:mod:`scimgate.store.feed_order`),
        which is replayed at once. Still failing so after ``attempts``, it is
        :class:`DatabaseUnavailable` (busy: a 503 the IdP retries), not a 500."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.write() as conn:
                    return await work(conn)
            except DBAPIError as exc:
                if not replayable(exc):
                    raise
                if attempt == attempts:
                    if getattr(exc.orig, "sqlstate", None) in _CONTENDED:
                        raise DatabaseUnavailable(
                            f"still contended after {attempts} attempts: {exc.orig}", busy=True
                        ) from exc
                    raise
                if not out_of_order(exc):  # that one's newer writer has committed: no wait
                    await _backoff(attempt)
        raise AssertionError("unreachable")

    async def dispose(self) -> None:
        if self.is_sqlite:
            if self._checkpointer is not None:
                self._checkpointer.stop()
            self._sqlite.close()
            self.sync_engine.dispose()
        else:
            await self._postgres.close()
            await self.engine.dispose()
