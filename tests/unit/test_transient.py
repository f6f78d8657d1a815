"""Which database errors mean "the database is out of reach" or "busy" (HTTP 503, retry)
and which are a statement's own failure (the request's error, or a 500)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors
from sqlalchemy.exc import DBAPIError

from scimgate.store.transient import busy, transient, unavailable


def _wrapped(orig: Exception, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.OperationalError("connection failed: Connection refused"),  # no SQLSTATE
        psycopg.OperationalError("server closed the connection unexpectedly"),
        errors.AdminShutdown("terminating connection due to administrator command"),
        errors.CrashShutdown("crash"),
        errors.CannotConnectNow("the database system is starting up"),
        errors.TooManyConnections("sorry, too many clients already"),
        errors.ConnectionFailure("connection failure"),  # class 08
    ],
)
def test_lost_links_are_unavailable(orig: Exception) -> None:
    assert unavailable(orig)
    assert unavailable(_wrapped(orig))


@pytest.mark.parametrize(
    "orig",
    [
        errors.SerializationFailure("could not serialize"),  # replayed, not unavailable
        errors.DeadlockDetected("deadlock"),
        errors.UniqueViolation("duplicate key"),
        errors.InvalidTextRepresentation("invalid input"),
        errors.UndefinedTable("no such table"),
        ValueError("not a database error"),
    ],
)
def test_statement_failures_are_not(orig: Exception) -> None:
    assert not unavailable(orig)
    assert not unavailable(_wrapped(orig))
    assert not busy(orig)
    assert transient(_wrapped(orig)) is None


@pytest.mark.parametrize(
    "orig",
    [
        errors.LockNotAvailable("canceling statement due to lock timeout"),
        errors.QueryCanceled("canceling statement due to statement timeout"),
    ],
)
def test_bounded_waits_are_busy_not_unavailable(orig: Exception) -> None:
    assert busy(orig) and busy(_wrapped(orig))
    assert not unavailable(orig)
    mapped = transient(_wrapped(orig))
    assert mapped is not None and mapped.busy
    assert mapped.public == "the database is busy; retry later"
    assert "lock timeout" in str(mapped) or "statement timeout" in str(mapped)


def test_an_outage_reads_unavailable_to_the_client_and_keeps_its_cause_for_the_log() -> None:
    mapped = transient(_wrapped(psycopg.OperationalError("connection refused\n  is it up?")))
    assert mapped is not None and not mapped.busy
    assert mapped.public == "the database is unavailable; retry later"
    assert str(mapped) == "the database is unavailable: connection refused is it up?"


def test_a_link_sqlalchemy_invalidated_is_unavailable() -> None:
    assert unavailable(_wrapped(psycopg.DatabaseError("?"), invalidated=True))
