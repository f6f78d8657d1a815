"""A statement sent right after the next one, in the same message.

A member PATCH locks its group (``SELECT … FOR UPDATE``), then looks up the members it
adds, or deletes the one it removes: on PostgreSQL two round trips before ``COMMIT``, the
group's row lock held across both. The second statement does not depend on the first's
rows, only on running after it: :meth:`~scimgate.store.connections.Conn.follow` lets the
connection send it in the lock's message. Under READ COMMITTED each statement of a
message reads a snapshot taken when it starts, so a follower of a lock that had to wait
sees what the lock's previous holder committed, as a statement sent later would.

Its rows are kept for :meth:`Follower.rows`; a follower no statement carried (SQLite, a
full message, a write behind an unchecked precondition) runs there instead. A follower's
error surfaces at the statement it rode with.

A :class:`Finisher` goes one step further: the unit's last write, sent after the lock
with ``COMMIT`` in the same message, so that the whole unit is one round trip. It rides
with the next statement that returns rows or never, and only where a write may follow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scimgate.store.prepared import Prepared, Rows


class Follower:
    """A statement waiting to follow the next one; :meth:`rows` gives its rows."""

    __slots__ = ("_rows", "_run", "parameters", "statement")

    def __init__(
        self,
        statement: Prepared,
        parameters: Any,
        run: Callable[[Follower], Awaitable[Rows]],
    ) -> None:
        """``run``: the connection's way to run it on its own (no statement carried it)."""
        self.statement = statement
        self.parameters = parameters
        self._run = run
        self._rows: Rows | None = None

    @property
    def sent(self) -> bool:
        """Whether its rows are here (a statement carried it, or it ran on its own)."""
        return self._rows is not None

    def settle(self, rows: Rows) -> None:
        """Its rows, from the message that carried it (called by the connection)."""
        self._rows = rows

    async def rows(self) -> Rows:
        """Its rows: those of the message that carried it, or of running it now."""
        if self._rows is None:
            self._rows = await self._run(self)
        return self._rows


class Finisher:
    """A write that ends its transaction: sent with ``COMMIT`` right after the next
    statement that returns rows, in its message, or not at all (see
    :meth:`~scimgate.store.connections.Conn.finish`).

    For a change whose every condition the database can check in the statement itself
    (a member PATCH: the group is there, every id is a user of the directory), so that the
    whole unit is one round trip. The caller reads :meth:`rows` once the carrying
    statement returned: None means it was not sent (SQLite, a full message, an
    authentication still to check), and the caller makes the change the ordinary way."""

    __slots__ = ("_rows", "parameters", "statement")

    def __init__(self, statement: Prepared, parameters: Any) -> None:
        self.statement = statement
        self.parameters = parameters
        self._rows: Rows | None = None

    def settle(self, rows: Rows) -> None:
        """Its rows, from the message that carried it and committed (the connection)."""
        self._rows = rows

    def rows(self) -> Rows | None:
        """Its rows if it was sent (and its transaction committed), else None."""
        return self._rows
