"""Engine creation and the two kinds of unit of work: ``read()`` and ``write()``.

SQLite allows one writer at a time. A write transaction that starts as a reader and then
upgrades fails at once with SQLITE_BUSY under concurrency, so on SQLite every ``write()``
begins with ``BEGIN IMMEDIATE`` (taking the write lock up front, waiting up to
``busy_timeout``) and writers of one process queue on an asyncio lock instead of spinning
on the file lock. PostgreSQL runs writes concurrently; correctness there comes from
constraints and row locks taken by the repositories.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from scimgate.store import jsoncodec
from scimgate.store.prepared import Prepared, translate

_WRITE = "scimgate_write"
_READ = "scimgate_read"
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
T = TypeVar("T")


def _retryable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


def sync_url(database_url: str) -> URL:
    """The URL with this project's driver: psycopg 3 (sync and async) or sqlite3."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend in {"postgresql", "postgres"}:
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite")
    raise ValueError(f"unsupported database {backend!r}: use sqlite:///path.db or postgresql://…")


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
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
        ):
            cursor.execute(pragma)
        cursor.close()

    return on_connect


def _sqlite_on_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get(_READ):
        return  # reads run in autocommit mode: no transaction, no COMMIT to pay for
    conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_WRITE) else "BEGIN DEFERRED")


def configure_sqlite(sync_engine: Any, busy_timeout_ms: int = 30_000) -> None:
    """Install the connect/begin hooks on a (sync) SQLite engine. ``busy_timeout_ms`` is
    how long one statement may block waiting for another process's lock."""
    event.listen(sync_engine, "connect", _sqlite_pragmas(busy_timeout_ms))
    event.listen(sync_engine, "begin", _sqlite_on_begin)


_INLINE_BUSY_MS = 50
_LOCK_WAIT_S = 30.0


async def _begin_immediate(sync: Connection) -> Any:
    """BEGIN IMMEDIATE on SQLite, waiting for another process's write lock without
    blocking the event loop: each attempt waits at most _INLINE_BUSY_MS, then we sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _LOCK_WAIT_S
    while True:
        try:
            return sync.begin()
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or loop.time() > deadline:
                raise
            await asyncio.sleep(random.uniform(0.005, 0.02))


class Conn(Protocol):
    """What the repositories run statements on: ``execute`` and ``dialect`` of SQLAlchemy's
    :class:`AsyncConnection`, which also takes :class:`~scimgate.store.prepared.Prepared`
    statements (:class:`InlineConnection` on SQLite, :class:`PostgresConnection`)."""

    @property
    def dialect(self) -> Any: ...

    async def execute(self, statement: Any, parameters: Any = None) -> Any: ...


class InlineConnection:
    """The part of :class:`AsyncConnection` the repositories use, over a synchronous
    SQLite connection whose statements run inline on the event loop.

    SQLite answers an indexed query in microseconds; the thread hop aiosqlite makes for
    every statement (and for BEGIN, COMMIT and the pool's reset) cost ~200 µs each and
    dominated request time. Writers are serialised anyway, so running inline loses no
    parallelism. Results are the same buffered ``CursorResult`` objects; a
    :class:`~scimgate.store.prepared.Prepared` statement goes straight to sqlite3.
    """

    def __init__(self, sync: Connection) -> None:
        self._sync = sync

    @property
    def dialect(self) -> Any:
        return self._sync.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if not isinstance(statement, Prepared):
            return self._sync.execute(statement, parameters)
        dialect = self._sync.dialect
        compiled = statement.compiled(dialect)
        args = statement.arguments(compiled, parameters)
        driver: Any = self._sync.connection.dbapi_connection
        try:
            if isinstance(args, list):
                cursor = driver.executemany(compiled.sql, args)
                raw: list[Any] = []
            else:
                cursor = driver.execute(compiled.sql, args)
                raw = cursor.fetchall() if compiled.row is not None else []
        except dialect.loaded_dbapi.Error as exc:
            raise translate(exc, compiled, args, dialect) from exc
        return Prepared.rows(compiled, raw, cursor.rowcount)


class PostgresConnection:
    """An :class:`AsyncConnection` whose :class:`~scimgate.store.prepared.Prepared`
    statements go straight to psycopg; everything else is SQLAlchemy's.

    The connection is in autocommit mode; :meth:`begin`, :meth:`commit` and
    :meth:`rollback` send the transaction's own SQL, saving round trips (each costs
    ~100 µs of CPU in psycopg's async path, more than most statements): ``BEGIN`` rides in
    one pipeline with the transaction's first statement, and a result-less
    ``executemany`` inside a transaction (the events INSERT), or a statement marked
    ``deferrable`` (a group's version bump), waits to ride with the next statement or with
    ``COMMIT``. A write such as ``POST /Users`` is then three round
    trips instead of five. An error in a deferred statement surfaces at that next
    statement or at ``COMMIT``, still inside the transaction.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._driver: Any = None
        self._in_transaction = False
        self._begin_pending = False
        self._deferred: list[tuple[str, list[Any]]] = []

    @property
    def dialect(self) -> Any:
        return self._conn.dialect

    async def _raw(self) -> Any:
        if self._driver is None:
            self._driver = (await self._conn.get_raw_connection()).driver_connection
        return self._driver

    async def begin(self) -> None:
        self._in_transaction = self._begin_pending = True

    async def commit(self) -> None:
        if self._begin_pending and not self._deferred:
            self._reset()  # nothing was run: nothing to commit
            return
        await self._send(b"COMMIT")
        self._reset()

    async def rollback(self) -> None:
        begun = not self._begin_pending
        self._reset()
        if begun:
            await self._send(b"ROLLBACK", pending=False)

    def _reset(self) -> None:
        self._in_transaction = self._begin_pending = False
        self._deferred.clear()

    async def _queue_pending(self, driver: Any) -> None:
        if self._begin_pending:
            self._begin_pending = False
            await driver.execute(b"BEGIN")
        for sql, args in self._deferred:
            await driver.cursor().executemany(sql, args)
        self._deferred.clear()

    async def _send(self, sql: bytes, *, pending: bool = True) -> None:
        """One SQL command, after whatever is pending, in one round trip."""
        driver = await self._raw()
        try:
            if pending and (self._begin_pending or self._deferred):
                async with driver.pipeline():
                    await self._queue_pending(driver)
                    await driver.execute(sql)
            else:
                await driver.execute(sql)
        except self._conn.dialect.loaded_dbapi.Error as exc:
            raise self._error(sql.decode(), exc) from exc

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        driver = await self._raw()
        if not isinstance(statement, Prepared):
            if self._begin_pending or self._deferred:
                try:
                    async with driver.pipeline():
                        await self._queue_pending(driver)
                except self._conn.dialect.loaded_dbapi.Error as exc:
                    raise self._error("BEGIN", exc) from exc
            return await self._conn.execute(statement, parameters)
        dialect = self._conn.dialect
        compiled = statement.compiled(dialect)
        args = statement.arguments(compiled, parameters)
        if self._in_transaction and compiled.row is None:
            if isinstance(args, list):
                self._deferred.append((compiled.sql, args))
                return Prepared.rows(compiled, [], -1)
            if statement.deferrable:
                self._deferred.append((compiled.sql, [args]))
                return Prepared.rows(compiled, [], -1)
        try:
            cursor = driver.cursor()
            if self._begin_pending or self._deferred:
                async with driver.pipeline():
                    await self._queue_pending(driver)
                    await self._run(cursor, compiled.sql, args)
            else:
                await self._run(cursor, compiled.sql, args)
            raw = await cursor.fetchall() if compiled.row is not None else []
        except dialect.loaded_dbapi.Error as exc:
            raise translate(exc, compiled, args, dialect) from exc
        return Prepared.rows(compiled, raw, cursor.rowcount)

    def _error(self, sql: str, exc: Exception) -> Exception:
        dialect = self._conn.dialect
        return DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error, dialect=dialect)

    @staticmethod
    async def _run(cursor: Any, sql: str, args: Any) -> None:
        if isinstance(args, list):
            await cursor.executemany(sql, args)
        else:
            await cursor.execute(sql, args)


class Database:
    """An engine plus the transaction discipline every repository uses.

    PostgreSQL: an async engine (psycopg 3); reads run in autocommit mode (no BEGIN and
    COMMIT round trips), writes in a transaction. SQLite: a synchronous engine driven
    inline (see :class:`InlineConnection`), one writer at a time.
    """

    def __init__(self, database_url: str, *, pool_size: int = 10) -> None:
        # psycopg 3 serves both the sync and the async engine; SQLite is driven inline.
        url = sync_url(database_url)
        self.url = url
        self.dialect = url.get_backend_name()
        self._sqlite_writer = asyncio.Lock()
        if self.dialect == "sqlite":
            self.sync_engine = create_engine(
                sync_url(database_url),
                pool_size=max(pool_size, 5),
                max_overflow=0,
                connect_args={"check_same_thread": False},
                json_serializer=jsoncodec.dumps,
            )
            # Statements run on the event loop: never let one block it for long waiting
            # for another process's write lock; write() retries BEGIN asynchronously.
            configure_sqlite(self.sync_engine, busy_timeout_ms=_INLINE_BUSY_MS)
            return
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_pre_ping=False,
            pool_size=pool_size,
            max_overflow=pool_size // 2,
            pool_recycle=1800,
            # Prepared statements break behind PgBouncer in transaction mode.
            connect_args={"prepare_threshold": None},
            # Connections stay in autocommit: reads need no BEGIN/COMMIT, and no
            # isolation-level switch per checkout (~60 µs each way); write() sends its
            # own BEGIN and COMMIT (see PostgresConnection).
            isolation_level="AUTOCOMMIT",
            json_serializer=jsoncodec.dumps,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        """A connection for reads, in autocommit mode: each statement sees the latest
        committed data. Code that needs one snapshot across statements uses write()."""
        if self.is_sqlite:
            with self.sync_engine.connect() as sync:
                sync.execution_options(**{_READ: True})
                yield InlineConnection(sync)
            return
        async with self.engine.connect() as conn:
            yield PostgresConnection(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Conn]:
        """A read-write transaction; commits on success, rolls back on any exception."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn:
                pg = PostgresConnection(conn)
                await pg.begin()
                try:
                    yield pg
                    await pg.commit()
                except BaseException:
                    await pg.rollback()
                    raise
            return
        async with self._sqlite_writer:
            with self.sync_engine.connect() as sync:
                sync.execution_options(**{_WRITE: True})
                with await _begin_immediate(sync):
                    yield InlineConnection(sync)

    async def transact(self, work: Callable[[Conn], Awaitable[T]], *, attempts: int = 5) -> T:
        """Run ``work`` in a write transaction, retrying PostgreSQL deadlocks and
        serialization failures (the whole transaction is replayed, so ``work`` must not
        have effects outside the database)."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.write() as conn:
                    return await work(conn)
            except DBAPIError as exc:
                if attempt == attempts or not _retryable(exc):
                    raise
                await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    async def dispose(self) -> None:
        if self.is_sqlite:
            self.sync_engine.dispose()
        else:
            await self.engine.dispose()
