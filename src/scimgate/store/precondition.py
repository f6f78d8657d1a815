"""A statement whose result is checked before anything after it counts.

A SCIM request authenticates, then reads: two statements, and on PostgreSQL two round
trips of ~0.15 ms of driver CPU and up to a millisecond of latency each. The read does not
depend on the authentication's result, only on the check passing, so
:meth:`~scimgate.store.connections.Conn.precede` lets the connection send the
authentication together with the next read and run the check on its rows before that
read's rows are handed back. If the check raises, the read's rows are dropped and the
check's error is what the caller sees. A connection never sends a write (or ``COMMIT``)
before its pending checks have passed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PreconditionPending(RuntimeError):
    """Code used a precondition's value before the connection checked it: a bug (the
    caller should have run a statement, or :meth:`Conn.resolve`, first)."""


class Precondition(Generic[T]):
    """The outcome of a statement sent ahead of the next one: ``check(rows)``'s value
    once the connection has run it (it may raise, and then there is no value)."""

    __slots__ = ("_check", "_checked", "_failed", "_value")

    def __init__(self, check: Callable[[Any], T]) -> None:
        self._check = check
        self._checked = self._failed = False
        self._value: T | None = None

    @property
    def checked(self) -> bool:
        """Whether the check ran and passed."""
        return self._checked

    @property
    def decided(self) -> bool:
        """Whether the check ran, passed or not (False: its statement was never answered)."""
        return self._checked or self._failed

    @property
    def value(self) -> T:
        if not self._checked:
            raise PreconditionPending("a precondition's value was used before it was checked")
        return self._value  # type: ignore[return-value]

    def settle(self, rows: Any) -> None:
        """Run the check on the statement's rows (called by the connection)."""
        try:
            self._value = self._check(rows)
        except BaseException:
            self._failed = True
            raise
        self._checked = True
