"""A statement whose result is checked before anything after it counts.

A SCIM request authenticates, then reads: two statements, and on PostgreSQL two round
trips of ~0.15 ms of driver CPU and up to a millisecond of latency each. The read does not
depend on the authentication's result, only on the check passing, so
:meth:`~scimgate.store.connections.Conn.precede` lets the connection send the
authentication together with the next read and run the check on its rows before that
read's rows are handed back. If the check raises, the read's rows are dropped and the
check's error is what the caller sees. A connection never sends a write (or ``COMMIT``)
before its pending checks have passed.

An *assumed* precondition (:meth:`~scimgate.store.connections.Conn.assume`) goes further:
its value is known in advance (the directory a token opened on the previous request) and
its statement fails on the server when the assumption no longer holds. It can then ride
with anything, a write or ``COMMIT`` included: a failure aborts the transaction, so
nothing the unit did is kept, and the caller redoes the unit the ordinary way. A create
is then one round trip instead of two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class AssumptionFailed(Exception):
    """An assumed precondition no longer holds: its unit was rolled back; redo it with an
    ordinary (checked) precondition."""


class PreconditionPending(RuntimeError):
    """Code used a precondition's value before the connection checked it: a bug (the
    caller should have run a statement, or :meth:`Conn.resolve`, first)."""


class Precondition(Generic[T]):
    """The outcome of a statement sent ahead of the next one: ``check(rows)``'s value
    once the connection has run it (it may raise, and then there is no value)."""

    __slots__ = ("_assumed", "_check", "_checked", "_failed", "_value")

    def __init__(self, check: Callable[[Any], T]) -> None:
        self._check = check
        self._checked = self._failed = self._assumed = False
        self._value: T | None = None

    @classmethod
    def assumed(cls, value: T) -> Precondition[T]:
        """A precondition whose value is known now and confirmed by the server later (its
        statement fails when the value no longer holds): see :meth:`confirm`."""
        condition: Precondition[T] = cls(lambda _rows: value)
        condition._value, condition._assumed = value, True
        return condition

    def confirm(self) -> None:
        """The assumed precondition's statement succeeded (called by the connection)."""
        self._checked = True

    @property
    def checked(self) -> bool:
        """Whether the check ran and passed."""
        return self._checked

    @property
    def known(self) -> bool:
        """Whether ``value`` can be read now: checked, or assumed."""
        return self._checked or self._assumed

    @property
    def decided(self) -> bool:
        """Whether the check ran, passed or not (False: its statement was never answered)."""
        return self._checked or self._failed

    @property
    def value(self) -> T:
        """The checked value, or the assumed one (which a failed assumption never lets a
        unit commit with)."""
        if not (self._checked or self._assumed):
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
