"""SQLite write units that are ready at the same moment share one ``COMMIT``.

A SQLite commit writes every page the transaction changed to the write-ahead log, two
writes per page: an add-10-members PATCH changes 16 pages (its rows, their indexes, the
file's header and the events' sequence among them), and its ``COMMIT`` was a sixth of
its CPU time (121 to 143 of ~880 µs). The writers of one process take turns anyway (one
write lock), and under load they are ready together: the requests in flight are read in
one turn of the event loop. So a unit that began a transaction lets the write units that
are ready run in it before it commits, and they commit together: the pages they share are
written once.

- **One unit at a time**, as before: a unit has the connection to itself from its first
  statement to its last (``_turn``), so units never interleave, even one that awaits
  something between its statements.
- **A unit that fails changes nothing.** The unit that begins the transaction runs alone
  in it, so if it fails the transaction is rolled back. A unit that joins runs in a
  ``SAVEPOINT`` of its own and rolls back to it, leaving the others' work alone.
- **No unit returns before the ``COMMIT`` that holds its work succeeded.** If that
  ``COMMIT`` fails, every unit in it fails with its error and nothing of any of them is
  stored, as when a unit's own commit failed.
- **Alone, a unit commits at once**: after its work it lets the event loop run the tasks
  that are ready (``asyncio.sleep(0)``), and when no writer is waiting to join, commits.
- **Bounded**: at most :data:`MAX_UNITS` share a transaction, and none joins one that
  began more than :data:`MAX_OPEN_S` ago, so a unit's answer never waits long for the
  units that came after it.

On PostgreSQL each unit has its transaction (PostgreSQL groups concurrent commits'
log flushes itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from scimgate.store.connections import InlineConnection

__all__ = ["MAX_OPEN_S", "MAX_UNITS", "SharedCommits"]

MAX_UNITS = 32
"""At most this many units share one ``COMMIT``, so a steady stream of writers cannot
hold one transaction open for ever."""

MAX_OPEN_S = 0.05
"""A transaction older than this (seconds since its ``BEGIN``) takes no more units: it
commits when the unit in it is done."""

Begin = Callable[[], Awaitable[tuple[InlineConnection, Any]]]
"""Begins a transaction (``BEGIN IMMEDIATE``: the file's write lock): the writer connection
and its SQLAlchemy transaction. Called only once the last transaction has ended."""
End = Callable[[bool], None]
"""After the transaction ended (True: committed): gives the connection back (to keep or,
after a failure, to close)."""


class _Transaction:
    __slots__ = (
        "broken",
        "closed",
        "done",
        "inline",
        "joined",
        "running",
        "transaction",
        "until",
    )

    def __init__(self, inline: InlineConnection, transaction: Any) -> None:
        self.inline = inline
        self.transaction = transaction
        loop = asyncio.get_running_loop()
        self.until = loop.time() + MAX_OPEN_S  #: units may join until then
        self.done: asyncio.Future[None] = loop.create_future()
        # Read here: a failed COMMIT that only failed units were in is no unread error.
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.joined = 0  #: units that ran in it so far
        self.running = False  #: a unit is inside it now
        self.closed = False  #: no unit may join any more: full, ended, or ending
        self.broken: BaseException | None = None
        """What ended the transaction under a unit that joined (SQLite rolls the whole
        transaction back on some errors, a full disk say): roll back, fail every unit."""


class SharedCommits:
    """The write units of one process on one SQLite file (see the module docstring)."""

    def __init__(self, begin: Begin, end: End) -> None:
        self._begin = begin
        self._end = end
        self._turn = asyncio.Lock()  # one unit at a time on the writer connection
        self._waiting = 0  # units waiting for their turn
        self._open: _Transaction | None = None

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[InlineConnection]:
        """One unit of work on the writer connection, inside a transaction (begun or
        joined). On exit its changes are committed (with those of the units that joined)
        or, if it raised, rolled back alone."""
        await self._take_turn()
        try:
            tx, savepoint = await self._enter()
            tx.joined += 1
            if tx.joined >= MAX_UNITS:
                tx.closed = True  # full: it commits when this unit is done
            tx.running = True
            try:
                yield tx.inline
            except BaseException as exc:
                self._undo(tx, savepoint, exc)
                failure: BaseException | None = exc
            else:
                failure = self._keep(tx, savepoint)
            finally:
                tx.running = False
                tx.inline.close_results()
        finally:
            self._turn.release()
        await self._finish(tx, wait=failure is None)
        if failure is not None:
            raise failure

    async def _take_turn(self) -> None:
        self._waiting += 1
        try:
            await self._turn.acquire()
        except BaseException:
            self._waiting -= 1
            if self._open is not None:
                self._commit_if_due(self._open)  # the writers it would have joined
            raise
        self._waiting -= 1

    async def _enter(self) -> tuple[_Transaction, str | None]:
        """Join the open transaction in a savepoint, or begin one (no savepoint: the unit
        that begins it runs alone in it until it is done)."""
        tx = self._open
        if tx is not None and not tx.closed and not self._expired(tx):
            savepoint = f"scimgate_unit_{tx.joined}"
            try:
                tx.inline._driver.execute(f"SAVEPOINT {savepoint}")
                return tx, savepoint
            except sqlite3.Error as exc:  # the transaction is gone: it fails, we begin anew
                self._break(tx, exc)
        if tx is not None:
            self._commit_if_due(tx)  # full, expired or broken: it ends before ours begins
        inline, transaction = await self._begin()
        tx = self._open = _Transaction(inline, transaction)
        return tx, None

    def _expired(self, tx: _Transaction) -> bool:
        """Whether ``tx`` is past :data:`MAX_OPEN_S` (then closed to new units)."""
        if asyncio.get_running_loop().time() < tx.until:
            return False
        tx.closed = True
        return True

    def _break(self, tx: _Transaction, error: BaseException) -> None:
        """The transaction cannot commit (SQLite ended it under a unit, a full disk say):
        no unit joins it any more, and when the last is out it rolls back, failing all."""
        tx.broken = tx.broken or error
        self._close(tx)

    def _undo(self, tx: _Transaction, savepoint: str | None, error: BaseException) -> None:
        """Roll the failed unit's changes back: its savepoint, or (it began the
        transaction, and ran alone in it) the transaction."""
        if savepoint is None:
            self._close(tx)
            try:
                tx.transaction.rollback()
            finally:
                self._end(False)
                tx.done.set_result(None)
            return
        driver: Any = tx.inline._driver
        try:
            driver.execute(f"ROLLBACK TO {savepoint}")
            driver.execute(f"RELEASE {savepoint}")
        except sqlite3.Error as exc:  # the transaction itself is gone
            self._break(tx, exc)

    def _keep(self, tx: _Transaction, savepoint: str | None) -> BaseException | None:
        """Fold the unit's savepoint into the transaction; the error if that failed."""
        if savepoint is None:
            return None
        try:
            tx.inline._driver.execute(f"RELEASE {savepoint}")
        except sqlite3.Error as exc:
            self._break(tx, exc)
            return exc
        return None

    async def _finish(self, tx: _Transaction, *, wait: bool) -> None:
        """Let the writers that are ready join, commit when none is left to, and (``wait``)
        wait for that commit, raising its error."""
        try:
            if not tx.closed:
                await asyncio.sleep(0)  # the tasks that are ready run: writers queue up
        finally:
            self._commit_if_due(tx)  # cancelled or not: someone must commit
        if wait:
            await asyncio.shield(tx.done)

    def _commit_if_due(self, tx: _Transaction) -> None:
        """Commit ``tx`` unless it ended, a unit is in it, or writers wait to join it."""
        if tx.done.done() or tx.running:
            return
        if self._waiting and not tx.closed and not self._expired(tx):
            return
        self._close(tx)
        committed = False
        try:
            if tx.broken is not None:
                raise tx.broken
            tx.transaction.commit()
            committed = True
        except BaseException as exc:
            with contextlib.suppress(Exception):  # the connection is let go below anyway
                tx.transaction.rollback()
            tx.done.set_exception(exc)
        else:
            tx.done.set_result(None)
        finally:
            self._end(committed)

    def _close(self, tx: _Transaction) -> None:
        tx.closed = True
        if self._open is tx:
            self._open = None
