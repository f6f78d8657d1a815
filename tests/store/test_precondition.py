"""A precondition (``conn.precede``) is checked before anything after it counts: the rows
of the read it rode with are only handed back when the check passed, and no write is sent
(nor ``COMMIT``) while a check is still open. On PostgreSQL it shares the read's round
trip; on SQLite it runs at once. Every test runs on both backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import BigInteger, Integer, bindparam, func, literal, select, type_coerce
from sqlalchemy.exc import IntegrityError

from scimgate.store.engine import Database
from scimgate.store.precondition import AssumptionFailed, Precondition, PreconditionPending
from scimgate.store.prepared import Prepared, Rows
from scimgate.store.tables import organizations

from .organization_rows import COLUMNS, DEFERRED_INSERT, org_row

_INSERT = DEFERRED_INSERT
_INSERT_NOW = Prepared(organizations.insert(), column_keys=COLUMNS)
_BY_EXTERNAL_ID = Prepared(
    select(organizations.c.id, organizations.c.name).where(
        organizations.c.external_id == bindparam("external_id")
    )
)


class Refused(Exception):
    pass


def _name_is(expected: str) -> Any:
    """A check that passes (giving the name) when the row's name is ``expected``."""

    def check(rows: Rows) -> str:
        row = rows.first()
        if row is None or row.name != expected:
            raise Refused(f"expected {expected!r}, found {row and row.name!r}")
        return str(row.name)

    return check


@pytest.fixture()
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def test_a_passing_check_hands_back_the_read_it_rode_with(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    other = f"other-{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(_INSERT_NOW, org_row(other, "other"))
    round_trips.clear()
    async with db.read() as conn:
        condition = await conn.precede(_BY_EXTERNAL_ID, {"external_id": keyed}, _name_is("key"))
        rows = await conn.execute(_BY_EXTERNAL_ID, {"external_id": other})
        assert condition.checked and condition.value == "key"
        assert [r.name for r in rows] == ["other"]
    if db.dialect == "postgresql":
        assert len(round_trips) == 1, round_trips  # the check and the read: one message


async def test_a_failing_check_drops_the_read_it_rode_with(db: Database, keyed: str) -> None:
    handed: Any = None
    async with db.read() as conn:
        with pytest.raises(Refused):
            await conn.precede(_BY_EXTERNAL_ID, {"external_id": keyed}, _name_is("someone else"))
            handed = await conn.execute(_BY_EXTERNAL_ID, {"external_id": keyed})
        assert handed is None
        # the connection serves the next statement as usual
        assert (await conn.execute(_BY_EXTERNAL_ID, {"external_id": keyed})).first() is not None
    async with db.read() as conn:  # and the next unit
        assert (await conn.execute(_BY_EXTERNAL_ID, {"external_id": keyed})).first() is not None


async def test_a_value_read_before_the_check_ran_is_a_loud_error(db: Database, keyed: str) -> None:
    async with db.read() as conn:
        condition = await conn.precede(_BY_EXTERNAL_ID, {"external_id": keyed}, _name_is("key"))
        if db.dialect == "postgresql":
            with pytest.raises(PreconditionPending):
                _ = condition.value
            assert not condition.decided
        await conn.resolve()
        assert condition.value == "key"


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "immediate"])
async def test_no_write_is_sent_while_a_check_is_open(
    db: Database, keyed: str, deferrable: bool
) -> None:
    fresh = f"fresh-{uuid.uuid4().hex}"
    with pytest.raises(Refused):
        async with db.write() as conn:
            await conn.precede(_BY_EXTERNAL_ID, {"external_id": keyed}, _name_is("nobody"))
            await conn.execute(_INSERT if deferrable else _INSERT_NOW, org_row(fresh))
    async with db.read() as conn:
        assert (await conn.execute(_BY_EXTERNAL_ID, {"external_id": fresh})).first() is None


async def test_a_write_on_a_read_connection_waits_for_the_check(db: Database, keyed: str) -> None:
    """Reads run in autocommit mode: a write sent with the check would be committed
    whatever the check says, so it goes after it."""
    fresh = f"fresh-{uuid.uuid4().hex}"
    with pytest.raises(Refused):
        async with db.read() as conn:
            await conn.precede(_BY_EXTERNAL_ID, {"external_id": keyed}, _name_is("nobody"))
            await conn.execute(_INSERT_NOW, org_row(fresh))
    async with db.read() as conn:
        assert (await conn.execute(_BY_EXTERNAL_ID, {"external_id": fresh})).first() is None


async def test_commit_checks_first(db: Database, keyed: str) -> None:
    """A unit that ran nothing after its precondition still has it checked at COMMIT."""
    with pytest.raises(Refused):
        async with db.write() as conn:
            await conn.precede(_BY_EXTERNAL_ID, {"external_id": keyed}, _name_is("nobody"))
    async with db.write() as conn:
        condition = await conn.precede(_BY_EXTERNAL_ID, {"external_id": keyed}, _name_is("key"))
    assert condition.value == "key"


async def test_a_check_left_open_by_a_read_unit_does_not_leak_into_the_next(
    db: Database, keyed: str
) -> None:
    async with db.read() as conn:
        await conn.precede(_BY_EXTERNAL_ID, {"external_id": keyed}, _name_is("key"))
    for _ in range(3):  # the lender hands the same connection back
        async with db.read() as conn:
            rows = await conn.execute(_BY_EXTERNAL_ID, {"external_id": keyed})
            assert [r.name for r in rows] == ["key"]


async def test_a_failed_statement_leaves_the_check_undecided(db: Database, keyed: str) -> None:
    """When the read it rode with fails, the check's outcome is unknown: callers must
    check again on their own (the SCIM layer then re-authenticates)."""
    bad = Prepared(select(func.abs(bindparam("x", type_=BigInteger))))
    async with db.read() as conn:
        condition = await conn.precede(_BY_EXTERNAL_ID, {"external_id": keyed}, _name_is("key"))
        with pytest.raises(Exception):  # noqa: B017 - the backend's own error type
            await conn.execute(bad, {"x": -(2**63)})  # out of range on both
        if db.dialect == "postgresql":
            assert not condition.decided


# -- assumptions: checked by the database, so they ride with writes and COMMIT too ----------

_STILL_THERE = Prepared(
    select(type_coerce(literal(1, Integer) // func.count(), Integer)).where(
        organizations.c.external_id == bindparam("external_id")
    )
)
"""1 while the organization exists; else a division by zero (SQLite: NULL)."""


async def test_a_holding_assumption_rides_with_the_commit(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    fresh = f"fresh-{uuid.uuid4().hex}"
    condition = Precondition.assumed("key")
    round_trips.clear()
    async with db.write() as conn:
        await conn.assume(_STILL_THERE, {"external_id": keyed}, condition)
        assert condition.value == "key"  # usable at once
        await conn.execute(_INSERT, org_row(fresh))
    assert condition.checked
    if db.dialect == "postgresql":
        assert len(round_trips) == 1, round_trips  # BEGIN, the assumption, INSERT, COMMIT
    async with db.read() as conn:
        assert (await conn.execute(_BY_EXTERNAL_ID, {"external_id": fresh})).first() is not None


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "immediate"])
async def test_a_failed_assumption_commits_nothing(db: Database, deferrable: bool) -> None:
    fresh = f"fresh-{uuid.uuid4().hex}"
    condition = Precondition.assumed("gone")
    with pytest.raises(AssumptionFailed):
        async with db.write() as conn:
            await conn.assume(_STILL_THERE, {"external_id": "no-such-org"}, condition)
            await conn.execute(_INSERT if deferrable else _INSERT_NOW, org_row(fresh))
    assert not condition.decided
    async with db.read() as conn:
        assert (await conn.execute(_BY_EXTERNAL_ID, {"external_id": fresh})).first() is None


async def test_a_constraint_failing_after_an_assumption_confirms_it(
    db: Database, keyed: str
) -> None:
    """The assumption ran first: a later write's constraint error says it held."""
    condition = Precondition.assumed("key")
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.assume(_STILL_THERE, {"external_id": keyed}, condition)
            await conn.execute(_INSERT, org_row(keyed))  # external_id is unique
    assert condition.checked


async def test_a_failed_assumption_on_a_read_hands_back_nothing(db: Database, keyed: str) -> None:
    handed: Any = None
    async with db.read() as conn:
        with pytest.raises(AssumptionFailed):
            await conn.assume(
                _STILL_THERE, {"external_id": "no-such-org"}, Precondition.assumed(None)
            )
            handed = await conn.execute(_BY_EXTERNAL_ID, {"external_id": keyed})
        assert handed is None
        assert (await conn.execute(_BY_EXTERNAL_ID, {"external_id": keyed})).first() is not None
