"""Database failures that say "try again later" rather than "this request is wrong".

Two kinds, both answered with HTTP 503 and ``Retry-After`` by the SCIM and management
layers (an IdP retries a 503; a 500 reads as a bug, a 401 as a wrong token):

- **unavailable**: the database is out of reach, or the link to it broke mid-unit;
- **busy**: it is there but did not serve this unit in time: a lock held elsewhere past
  ``lock_timeout``, a statement past ``statement_timeout``, or no pooled connection free
  within the pool's wait (:class:`~scimgate.store.held.PostgresLender`).

A write that met either may or may not have committed only if the link broke during
``COMMIT``; a timeout rolls its transaction back.
"""

from __future__ import annotations

import psycopg
from sqlalchemy.exc import DBAPIError

__all__ = ["DatabaseUnavailable", "busy", "transient", "unavailable"]

_BUSY_SQLSTATES = frozenset({"55P03", "57014"})
"""``lock_not_available`` (``lock_timeout``) and ``query_canceled`` (``statement_timeout``,
or an operator's ``pg_cancel_backend``)."""


class DatabaseUnavailable(Exception):
    """A transient database failure (see the module docstring): a 503, not a refusal of
    the request."""

    retry_after_s = 5
    """What the HTTP layers put in ``Retry-After``: a restart, a fail-over or a lock
    held elsewhere lasts seconds."""

    def __init__(self, message: str, *, busy: bool = False) -> None:
        super().__init__(message)
        self.busy = busy

    @property
    def public(self) -> str:
        """What a client is told (the log gets ``str(self)``, with the cause)."""
        state = "busy" if self.busy else "unavailable"
        return f"the database is {state}; retry later"


def _orig(exc: BaseException) -> BaseException:
    return exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is out of reach rather than that a statement
    failed: no connection (refused, reset, closed; psycopg gives no SQLSTATE then), a
    connection exception (class 08), a server shutting down, restarting or dropping the
    database (57P01-57P05), or no connection slot left (53300)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    orig = _orig(exc)
    if not isinstance(orig, psycopg.OperationalError):
        return False
    state = orig.sqlstate
    return state is None or state.startswith(("08", "57P")) or state == "53300"


def busy(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL giving up on a statement after a wait it bounds:
    ``lock_timeout`` or ``statement_timeout``."""
    orig = _orig(exc)
    return isinstance(orig, psycopg.OperationalError) and orig.sqlstate in _BUSY_SQLSTATES


def transient(exc: BaseException) -> DatabaseUnavailable | None:
    """The :class:`DatabaseUnavailable` that the driver's ``exc`` amounts to, or None."""
    is_busy = busy(exc)
    if not (is_busy or unavailable(exc)):
        return None
    cause = " ".join(str(_orig(exc)).split())
    state = "busy" if is_busy else "unavailable"
    return DatabaseUnavailable(f"the database is {state}: {cause}", busy=is_busy)
