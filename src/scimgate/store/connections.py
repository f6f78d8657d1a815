"""The connections repositories run statements on, one per backend.

Both take :class:`~scimgate.store.prepared.Prepared` statements straight to the driver
(sqlite3, psycopg) and everything else through SQLAlchemy. :class:`~scimgate.store.engine.
Database` lends them to units of work (see :mod:`scimgate.store.held`).
"""

from __future__ import annotations

import select
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg import AsyncClientCursor, adapt
from psycopg.pq import PipelineStatus, TransactionStatus
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from scimgate.store import simple_query
from scimgate.store.feed_order import WARM
from scimgate.store.follower import Finisher, Follower
from scimgate.store.literals import LOST_SQLSTATES, Literals, lost, prepare_anew, stale_plan
from scimgate.store.precondition import AssumptionFailed, Precondition
from scimgate.store.prepared import Prepared, Rows, translate

OnError = Callable[[Exception], Exception | None]
"""Maps the error of a statement to the one its caller raises (None: leave it). A deferred
statement's error surfaces later, at another statement or at COMMIT; its mapping still
applies there (see :class:`PostgresConnection`)."""

_IDLE = TransactionStatus.IDLE
# Up to this many statements go in one simple-query message (parameters bound by psycopg;
# a batch INSERT counts as one: it is sent as one multi-row INSERT); longer batches in a
# pipeline, where PostgreSQL parses each statement once per batch rather than once per row.
_BATCH_MAX = 6
_PIPELINE_OFF = PipelineStatus.OFF
_DIVISION_BY_ZERO = "22012"  # how an assumption's statement says it no longer holds
_INTEGRITY = "23"  # integrity constraint violations: only writes raise them
# PostgreSQL plans a prepared statement for its values five times, then builds its generic
# plan on the sixth execution and keeps it if it costs no more (plancache.c).
_CUSTOM_PLANS = 5
T = TypeVar("T")


class Conn(Protocol):
    """What the repositories run statements on: ``execute`` and ``dialect`` of SQLAlchemy's
    :class:`AsyncConnection`, which also takes :class:`~scimgate.store.prepared.Prepared`
    statements (:class:`InlineConnection` on SQLite, :class:`PostgresConnection`)."""

    @property
    def dialect(self) -> Any: ...

    async def execute(
        self, statement: Any, parameters: Any = None, *, on_error: OnError | None = None
    ) -> Any: ...

    async def precede(
        self, statement: Prepared, parameters: Any, check: Callable[[Rows], T]
    ) -> Precondition[T]:
        """Run ``statement`` ahead of the next one, and ``check`` on its rows before any
        later statement's rows are used or any write is sent (see
        :mod:`scimgate.store.precondition`). If ``check`` raises, so does the statement
        that carried it. SQLite runs it at once; PostgreSQL sends it with the next read."""
        ...

    async def assume(
        self, statement: Prepared, parameters: Any, condition: Precondition[Any]
    ) -> None:
        """Send ``statement`` ahead of whatever is sent next, a write or ``COMMIT``
        included, and confirm the assumed ``condition`` when it succeeds. The statement
        must fail (on PostgreSQL with ``division_by_zero``; on SQLite, where it runs at
        once, by answering anything but 1) when the assumption no longer holds: the unit
        then raises :class:`~scimgate.store.precondition.AssumptionFailed` and nothing it
        did is committed."""
        ...

    async def resolve(self) -> None:
        """Run the preconditions still waiting for a statement to ride with."""
        ...

    def follow(self, statement: Prepared, parameters: Any) -> Follower:
        """Send ``statement`` right after the next statement that returns rows, in the same
        message, and keep its rows for ``await follower.rows()`` (see
        :mod:`scimgate.store.follower`); where nothing carried it, it runs there. Await
        them before running anything that changes what it reads. A write follows only
        inside a transaction and never behind an unchecked precondition."""
        ...

    def finish(self, statement: Prepared, parameters: Any) -> Finisher:
        """Send ``statement`` and then ``COMMIT`` right after the next statement that
        returns rows, in the same message; the transaction ends there (see
        :class:`~scimgate.store.follower.Finisher`). Only on PostgreSQL, inside a
        transaction and with no precondition unchecked: otherwise it is not sent at all and
        ``rows()`` is None. The caller runs nothing on the connection after it was sent,
        and gives it only a statement that changes nothing unless every condition of the
        change holds (the carrying statement's rows are read only after the commit)."""
        ...


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
        self.sync = sync  #: the SQLAlchemy connection (the lender keeps or closes it)
        self._dialect = sync.dialect
        # The sqlite3 connection, looked up once: SQLAlchemy's ``Connection.connection``
        # costs ~10 µs a call, and the lender reuses this object from unit to unit.
        self._driver: Any = sync.connection.dbapi_connection
        self._results: list[Any] = []

    @property
    def dialect(self) -> Any:
        return self._dialect

    def close_results(self) -> None:
        """Close the SQLAlchemy results of this unit that were not read to the end. A
        half-read cursor keeps a SQLite read snapshot open on its connection, and neither
        ``rollback()`` nor the pool's reset clears it (Python 3.11's sqlite3 leaves
        statements alone), so the next unit on this connection would read stale data."""
        for result in self._results:
            if not result._soft_closed:
                result.close()
        self._results.clear()

    async def execute(
        self, statement: Any, parameters: Any = None, *, on_error: OnError | None = None
    ) -> Any:
        if not isinstance(statement, Prepared):
            result = self.sync.execute(statement, parameters)
            self._results.append(result)
            return result
        dialect = self._dialect
        compiled = statement.compiled(dialect)
        args = statement.arguments(compiled, parameters)
        driver = self._driver
        try:
            if isinstance(args, list):
                cursor = driver.executemany(compiled.sql, args)
                raw: list[Any] = []
            else:
                cursor = driver.execute(compiled.sql, args)
                raw = cursor.fetchall() if compiled.row is not None else []
        except dialect.loaded_dbapi.Error as exc:
            raise _mapped(translate(exc, compiled, args, dialect), [on_error]) from exc
        return Prepared.rows(compiled, raw, cursor.rowcount)

    async def precede(
        self, statement: Prepared, parameters: Any, check: Callable[[Rows], T]
    ) -> Precondition[T]:
        # Statements here cost microseconds and no round trip: check at once.
        condition = Precondition(check)
        condition.settle(await self.execute(statement, parameters))
        return condition

    async def assume(
        self, statement: Prepared, parameters: Any, condition: Precondition[Any]
    ) -> None:
        if (await self.execute(statement, parameters)).scalar() != 1:
            raise AssumptionFailed("the assumed precondition no longer holds")
        condition.confirm()

    async def resolve(self) -> None:
        return None

    def follow(self, statement: Prepared, parameters: Any) -> Follower:
        # Nothing to save here: it runs when its rows are asked for.
        _check_followable(statement.compiled(self._dialect), parameters)
        return Follower(statement, parameters, self._run_follower)

    async def _run_follower(self, follower: Follower) -> Rows:
        rows: Rows = await self.execute(follower.statement, follower.parameters)
        return rows

    def finish(self, statement: Prepared, parameters: Any) -> Finisher:
        return Finisher(statement, parameters)  # never sent: no round trip to save here


def _check_followable(compiled: Any, parameters: Any) -> None:
    if compiled.row is None or isinstance(parameters, list):
        raise ValueError("a follower is one statement that returns rows")


def _mapped(error: Exception, handlers: Sequence[OnError | None]) -> Exception:
    for handler in handlers:
        if handler is not None and (mapped := handler(error)) is not None:
            return mapped
    return error


class PostgresConnection:
    """An :class:`AsyncConnection` whose :class:`~scimgate.store.prepared.Prepared`
    statements go straight to psycopg; everything else is SQLAlchemy's.

    The connection is in autocommit mode; :meth:`begin`, :meth:`commit` and
    :meth:`rollback` send the transaction's own SQL, saving round trips (each costs
    ~100 µs of CPU in psycopg's async path, more than most statements): ``BEGIN`` rides
    with the transaction's first statement, and a result-less ``executemany`` inside a
    transaction (the events INSERT), or a statement marked ``deferrable`` (a user's INSERT
    or UPDATE, a group's version bump), waits to ride with the next statement or with
    ``COMMIT``. A few statements go as one simple-query message (psycopg's async pipeline
    polls a writable socket until the answer comes, ~100 µs of CPU each time); longer
    batches in a pipeline.
    An error in a deferred statement surfaces at that next statement or at ``COMMIT``,
    still inside the transaction, mapped by the ``on_error`` its caller gave. A batch
    INSERT in such a message is one multi-row statement.

    A precondition (:meth:`precede`: the authentication) waits for the next read and goes
    in front of it in the same message; its check runs on its rows before the read's
    rows are returned. A write, a SQLAlchemy statement or ``COMMIT`` sends it on its own
    first (:meth:`resolve`). An assumption (:meth:`assume`: the directory a token opened on
    an earlier request) is checked by the database itself, so it goes in front of
    whatever is sent next, ``COMMIT`` included: a write such as ``POST /Users`` is then
    one round trip.

    A follower (:meth:`follow`: a member PATCH's look-up or removal behind the group's
    row lock) goes right after the next statement that returns rows, in its message. A
    finisher (:meth:`finish`: the whole of adding users to a group) goes there too, last,
    with ``COMMIT``: the unit is then one round trip, and nothing more may run in it.
    """

    def __init__(self, conn: AsyncConnection, *, prepare: bool = True) -> None:
        """``prepare``: send statements as ``EXECUTE`` of server-side prepared ones
        (see :mod:`scimgate.store.literals`)."""
        self._conn = conn
        self._prepare = prepare
        #: The SQLAlchemy connection underneath (the lender returns it to the pool).
        self.sqlalchemy = conn
        self._driver: Any = None
        self._batch: Any = None
        self._literals: Any = None
        self._loader: Any = None
        self._in_transaction = False
        self._begin_pending = False
        self._deferred: list[tuple[Any, list[Any], OnError | None]] = []
        self._confirming: list[Precondition[Any]] = []
        self._preceding: list[tuple[Any, Any, Precondition[Any]]] = []
        self._assumed: list[tuple[Any, Any, Precondition[Any]]] = []
        self._following: list[tuple[Any, Any, Follower]] = []
        self._finishing: tuple[Any, Any, Finisher] | None = None
        self._finished = False
        """A finisher committed the transaction: nothing more may run in it."""

    @property
    def dialect(self) -> Any:
        return self._conn.dialect

    async def _raw(self) -> Any:
        if self._driver is None:
            self._driver = (await self._conn.get_raw_connection()).driver_connection
            self._batch = AsyncClientCursor(self._driver)
            self._literals = Literals.of(self._driver, prepare=self._prepare)
            self._loader = adapt.Transformer(self._driver)
        return self._driver

    async def configure(self, settings: Mapping[str, str]) -> None:
        """Session settings (``SET name = value``), once, on a connection just opened: one
        round trip. Not where a pooler may share the server session (prepared statements
        off, or turned off by :func:`~scimgate.store.literals.lost`): a ``SET`` there
        would stay on a server session other clients get, and miss the ones this
        connection's transactions land on; set them on the role there instead."""
        driver = await self._raw()
        if settings and self._literals.prepares:
            sql = ";".join(f"SET {name} = {value}" for name, value in settings.items())
            await simple_query.run(driver, sql, self._loader)

    async def warm(self, statements: Sequence[Prepared]) -> int:
        """Prepare ``statements`` on this new session and plan each of them the five
        times PostgreSQL plans a statement for its values, before any request runs them;
        returns how many were prepared (0 where statements are not prepared).

        A session's first execution of a prepared statement fills the backend's catalog
        caches (~3-7 ms for a member PATCH), and its first five are planned for their
        actual values (~1 ms each for the same): on a server just started, the first wave
        of requests paid for it (docs/performance.md). ``EXPLAIN EXECUTE`` plans without
        executing, and counts as an execution for that choice. The generic plan is left
        to the first real execution, so that it is made on the data as it is then: made
        here on a new, empty database it served the whole first cycle badly (+14 % of
        PostgreSQL's CPU). Two round trips: the ``PREPARE``s (as a request sends them,
        then recorded), then the ``EXPLAIN``s and a call of the feed-order function
        (:data:`~scimgate.store.feed_order.WARM`). Sample values stand in for real ones
        (:meth:`Prepared.sample_parameters`); the planner knows neither from its
        statistics."""
        driver = await self._raw()
        literals = self._literals
        if not literals.prepares:
            return 0
        dialect = self._conn.dialect
        prepares: dict[str, str] = {}
        explains: list[str] = []
        for statement in statements:
            compiled = statement.compiled(dialect)
            args = statement.parameters(compiled, statement.sample_parameters(dialect))
            before = len(prepares)
            execute = literals.statement(compiled.sql, args, prepares)
            if len(prepares) > before:  # not prepared on this session yet
                explains += [f"EXPLAIN {execute}"] * _CUSTOM_PLANS
        if prepares:
            await simple_query.run(driver, ";".join(prepares.values()), self._loader)
            literals.prepared(prepares)
            # And the function every user or group change calls, compiled once per session.
            await simple_query.run(driver, ";".join([*explains, WARM]), self._loader)
        return len(prepares)

    async def begin(self) -> None:
        self._in_transaction = self._begin_pending = True
        self._finished = False

    async def commit(self) -> None:
        if self._finished:
            self._reset()  # COMMIT went with the finisher
            return
        if self._preceding:
            await self.resolve()  # never COMMIT in the message of an unchecked precondition
        if self._begin_pending and not (self._deferred or self._assumed):
            self._reset()  # nothing was run: nothing to commit
            return
        await self._send("COMMIT")
        self._reset()

    async def rollback(self) -> None:
        begun = not (self._begin_pending or self._finished)
        self._reset()
        if begun:
            await self._send("ROLLBACK")  # _reset() left nothing pending

    def hung_up(self) -> bool:
        """Whether the server ended this idle connection while it waited in the pool.

        No round trip: a zero-timeout poll of the socket. An idle session that has read
        every result is sent nothing unasked but the FATAL of a shutdown or a terminated
        backend (then EOF), or a link's reset; anything readable counts as gone. The rare
        harmless exceptions (a reported parameter changing on a standby's promotion, a
        TLS key update) cost one reconnect. After a database restart the next unit gets
        a fresh connection instead of failing on the dead one.
        """
        driver = self._driver
        if driver is None:
            return False
        if driver.closed or driver.broken:
            return True
        try:
            readable, _, _ = select.select([driver.pgconn.socket], [], [], 0)
        except (OSError, ValueError, psycopg.OperationalError):
            return True  # no socket left
        return bool(readable)

    async def settle(self) -> bool:
        """After a unit: whether this connection can serve the next one as it is (idle,
        not broken, no transaction or pipeline left open). Closes SQLAlchemy's autobegun
        transaction (a no-op on the server: the connection is in autocommit mode)."""
        driver = self._driver
        if driver is not None and (
            driver.broken
            or driver.info.transaction_status != _IDLE
            or driver.pgconn.pipeline_status != _PIPELINE_OFF
        ):
            return False
        if self._in_transaction:
            return False
        self._preceding.clear()  # a read unit that ended early: nothing was sent
        self._assumed.clear()
        self._following.clear()
        self._finishing = None
        if self._conn.in_transaction():
            await self._conn.rollback()
        return True

    def _reset(self) -> None:
        self._in_transaction = self._begin_pending = self._finished = False
        self._deferred.clear()
        self._preceding.clear()
        self._assumed.clear()
        self._following.clear()
        self._finishing = None

    def _pending(self, prepares: dict[str, str]) -> tuple[list[str], list[tuple[int, Any, Any]]]:
        """What waits to be sent before the next statement, as SQL text (``BEGIN``, the
        assumptions, the preconditions, the deferred statements), and where each
        precondition's result will be: ``(index, compiled, precondition)``. The assumed
        conditions move to ``self._confirming``; the ``PREPARE`` statements the message
        needs first go to ``prepares``."""
        parts = ["BEGIN"] if self._begin_pending else []
        fragment = self._literals.bind

        def bind(sql: str, args: Any) -> str:
            return self._bind(sql, args, prepares)

        for compiled, args, condition in self._assumed:
            parts.append(bind(compiled.sql, args))
            self._confirming.append(condition)
        self._assumed.clear()
        checks = []
        for compiled, args, condition in self._preceding:
            checks.append((len(parts), compiled, condition))
            parts.append(bind(compiled.sql, args))
        for compiled, args, _ in self._deferred:
            if compiled.values is not None and len(args) > 1:
                head, row = compiled.values  # a batch: one multi-row INSERT
                parts.append(head + ", ".join(fragment(row, one) for one in args))
            else:
                parts.extend(bind(compiled.sql, one) for one in args)
        self._deferred.clear()
        self._begin_pending = False
        self._preceding.clear()
        return parts, checks

    def _bind(self, sql: str, args: Any, prepares: dict[str, str]) -> str:
        """One statement of a simple-query message, which carries no parameters: the
        ``EXECUTE`` of a prepared statement (any ``PREPARE`` it needs first is added to
        ``prepares``) or ``sql`` with ``args`` written in as literals."""
        if isinstance(args, Mapping):
            return str(self._literals.statement(sql, args, prepares))
        return str(self._batch.mogrify(sql, args))

    def _pending_count(self) -> int:
        return (
            self._begin_pending
            + len(self._assumed)
            + len(self._preceding)
            + sum(1 if c.values is not None else len(a) for c, a, _ in self._deferred)
        )

    @staticmethod
    async def _settle(cursor: Any, checks: list[tuple[int, Any, Any]], stop: int) -> None:
        """Run the preconditions' checks on their results, in order, then move the
        cursor to result ``stop`` (the statement they rode with)."""
        at = 0
        for index, compiled, condition in checks:
            while at < index:
                cursor.nextset()
                at += 1
            raw = await cursor.fetchall()
            condition.settle(Prepared.rows(compiled, raw, cursor.rowcount))
        while at < stop:
            cursor.nextset()
            at += 1

    async def _queue_pending(self, driver: Any) -> None:
        """Queue what is pending in the current pipeline (for long batches)."""
        if self._begin_pending:
            self._begin_pending = False
            await driver.execute(b"BEGIN")
        for compiled, args, condition in self._assumed:
            await driver.cursor().execute(compiled.sql, args)
            self._confirming.append(condition)
        self._assumed.clear()
        for compiled, args, _ in self._deferred:
            await driver.cursor().executemany(compiled.sql, args)
        self._deferred.clear()

    def _handlers(self) -> list[OnError | None]:
        return [handler for _, _, handler in self._deferred if handler is not None]

    async def _round_trip(self, driver: Any, tail: list[tuple[str, Any]]) -> Any:
        """Whatever is pending, then ``tail`` (``(sql, args)``: a dict, a list of them for
        a batch, or None for a bare command), in one round trip. A few statements go as
        one simple-query message, parameters written in as literals and hot statements as
        ``EXECUTE`` of prepared ones (``store/literals.py``; psycopg's async pipeline
        polls a writable socket until the answer arrives, ~100 µs of CPU per use); longer
        batches in a pipeline (``tail`` then has one statement). Returns the cursor, on
        the result of ``tail``'s first statement."""
        self._confirming = []
        try:
            cursor = await self._send_pending(driver, tail)
        except self._conn.dialect.loaded_dbapi.Error as exc:
            if (failed := self._assumption_failed(exc)) is not None:
                raise failed from exc
            if (state := getattr(exc, "sqlstate", None)) in LOST_SQLSTATES:
                lost(state)
            elif stale_plan(exc):
                prepare_anew()
            raise
        for condition in self._confirming:
            condition.confirm()
        return cursor

    def _assumption_failed(self, exc: Exception) -> AssumptionFailed | None:
        """The error of a message that carried assumptions, as far as they are concerned:
        AssumptionFailed when one of them failed; None otherwise (confirming them when
        a later write broke a constraint: they were sent first and cannot break one, so
        they held, and a duplicate userName stays a 409)."""
        state = getattr(exc, "sqlstate", None) or ""
        if self._confirming and state == _DIVISION_BY_ZERO:
            return AssumptionFailed("an assumed precondition no longer holds")
        if state.startswith(_INTEGRITY):
            for condition in self._confirming:
                condition.confirm()
        return None

    async def _send_pending(self, driver: Any, tail: list[tuple[str, Any]]) -> Any:
        count = self._pending_count() + sum(
            len(args) if isinstance(args, list) else 1 for _, args in tail
        )
        if count > _BATCH_MAX:
            cursor = driver.cursor()
            async with driver.pipeline():
                await self._queue_pending(driver)
                for sql, args in tail:
                    await self._run(cursor, sql, args)
            return cursor
        if len(tail) <= 1 and not (
            self._begin_pending
            or self._deferred
            or self._preceding
            or self._assumed
            or self._literals.prepares
        ):
            cursor = driver.cursor()
            for sql, args in tail:
                await self._run(cursor, sql, args)
            return cursor
        prepares: dict[str, str] = {}
        parts, checks = self._pending(prepares)
        for sql, args in tail:
            rows = [None] if args is None else args if isinstance(args, list) else [args]
            parts.extend(sql if one is None else self._bind(sql, one, prepares) for one in rows)
        if prepares:
            # A round trip of their own, once per connection and statement: had they
            # shared the message, a later statement's failure would leave unknown which
            # of them ran (PREPARE outlives a rolled-back transaction).
            await simple_query.run(driver, ";".join(prepares.values()), self._loader)
            self._literals.prepared(prepares)
        results = await simple_query.run(driver, ";".join(parts), self._loader)
        await self._settle(results, checks, len(parts) - len(tail))
        return results

    async def precede(
        self, statement: Prepared, parameters: Any, check: Callable[[Rows], T]
    ) -> Precondition[T]:
        compiled = statement.compiled(self._conn.dialect)
        if compiled.row is None or not compiled.reads_only:
            raise ValueError("only a SELECT can be a precondition")
        condition = Precondition(check)
        self._preceding.append((compiled, statement.arguments(compiled, parameters), condition))
        return condition

    async def resolve(self) -> None:
        """Send the preconditions and assumptions now (with whatever else is pending) and
        check them."""
        if self._preceding or self._assumed:
            await self._flush()

    def follow(self, statement: Prepared, parameters: Any) -> Follower:
        compiled = statement.compiled(self._conn.dialect)
        _check_followable(compiled, parameters)
        args = statement.arguments(compiled, parameters)
        follower = Follower(statement, parameters, self._run_follower)
        self._following.append((compiled, args, follower))
        return follower

    async def _run_follower(self, follower: Follower) -> Rows:
        """A follower no statement carried, on its own (it no longer waits for one)."""
        self._following = [f for f in self._following if f[2] is not follower]
        rows: Rows = await self.execute(follower.statement, follower.parameters)
        return rows

    def _riders(self) -> list[tuple[Any, Any, Follower]]:
        """The followers the statement about to be sent takes along (they stop waiting):
        reads, and writes inside a transaction once no precondition is left unchecked
        (a failed check then rolls them back), as many as the message holds."""
        room = _BATCH_MAX - 1 - self._pending_count()
        may_write = self._in_transaction and not self._preceding
        riders, waiting = [], []
        for entry in self._following:
            if room > 0 and (entry[0].reads_only or may_write):
                riders.append(entry)
                room -= 1
            else:
                waiting.append(entry)
        self._following = waiting
        return riders

    def finish(self, statement: Prepared, parameters: Any) -> Finisher:
        compiled = statement.compiled(self._conn.dialect)
        _check_followable(compiled, parameters)
        finisher = Finisher(statement, parameters)
        if self._in_transaction and self._finishing is None:
            self._finishing = (compiled, statement.arguments(compiled, parameters), finisher)
        return finisher

    def _finisher(self, riders: int) -> tuple[Any, Any, Finisher] | None:
        """The finisher the statement about to be sent takes along, with ``riders``
        followers: only if no precondition is left unchecked and the message has room
        for it and ``COMMIT``. Either way it stops waiting: it rides now or never."""
        finishing, self._finishing = self._finishing, None
        if finishing is None or self._preceding:
            return None
        if self._pending_count() + 1 + riders + 2 > _BATCH_MAX:
            return None
        return finishing

    async def _flush(self) -> None:
        """Everything pending (``BEGIN``, assumptions, preconditions, deferred statements)
        in one round trip, with no statement of its own."""
        if not (self._begin_pending or self._deferred or self._preceding or self._assumed):
            return
        driver = await self._raw()
        handlers = self._handlers()
        try:
            await self._round_trip(driver, [])
        except self._conn.dialect.loaded_dbapi.Error as exc:
            raise _mapped(self._error("BEGIN", exc), handlers) from exc

    async def assume(
        self, statement: Prepared, parameters: Any, condition: Precondition[Any]
    ) -> None:
        compiled = statement.compiled(self._conn.dialect)
        self._assumed.append((compiled, statement.arguments(compiled, parameters), condition))

    async def _send(self, sql: str) -> None:
        """One SQL command, after whatever is pending, in one round trip."""
        driver = await self._raw()
        handlers = self._handlers()
        try:
            await self._round_trip(driver, [(sql, None)])
        except self._conn.dialect.loaded_dbapi.Error as exc:
            raise _mapped(self._error(sql, exc), handlers) from exc

    async def execute(
        self, statement: Any, parameters: Any = None, *, on_error: OnError | None = None
    ) -> Any:
        if self._finished:
            raise RuntimeError("this transaction was committed with its finisher")
        driver = await self._raw()
        if not isinstance(statement, Prepared):
            await self._flush()
            return await self._conn.execute(statement, parameters)
        dialect = self._conn.dialect
        compiled = statement.compiled(dialect)
        args = statement.arguments(compiled, parameters)
        if self._preceding and not (
            compiled.reads_only
            and not isinstance(args, list)
            and self._pending_count() < _BATCH_MAX
        ):
            await self.resolve()  # only a read rides with a precondition
        handlers = self._handlers()
        if self._in_transaction and compiled.row is None:
            if isinstance(args, list):
                self._deferred.append((compiled, args, on_error))
                return Prepared.rows(compiled, [], -1)
            if statement.deferrable:
                self._deferred.append((compiled, [args], on_error))
                return Prepared.rows(compiled, [], -1)
        handlers.append(on_error)
        carries = compiled.row is not None and not isinstance(args, list)
        riders = self._riders() if self._following and carries else ()
        finishing = self._finisher(len(riders)) if self._finishing and carries else None
        tail = [(compiled.sql, args), *((c.sql, a) for c, a, _ in riders)]
        if finishing is not None:
            tail += [(finishing[0].sql, finishing[1]), ("COMMIT", None)]
        try:
            cursor = await self._round_trip(driver, tail)
            raw = await cursor.fetchall() if compiled.row is not None else []
            rows = Prepared.rows(compiled, raw, cursor.rowcount)
            for rider, _, follower in riders:
                cursor.nextset()
                follower.settle(Prepared.rows(rider, await cursor.fetchall(), cursor.rowcount))
            if finishing is not None:
                cursor.nextset()
                last, _, finisher = finishing
                finisher.settle(Prepared.rows(last, await cursor.fetchall(), cursor.rowcount))
                self._in_transaction = False
                self._finished = True
                self._following.clear()
        except dialect.loaded_dbapi.Error as exc:
            raise _mapped(translate(exc, compiled, args, dialect), handlers) from exc
        return rows

    def _error(self, sql: str, exc: Exception) -> Exception:
        dialect = self._conn.dialect
        return DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error, dialect=dialect)

    @staticmethod
    async def _run(cursor: Any, sql: str, args: Any) -> None:
        if isinstance(args, list):
            await cursor.executemany(sql, args)
        else:
            await cursor.execute(sql, args)
