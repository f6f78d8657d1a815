"""Server-side prepared statements on PostgreSQL (``store/literals.py``): each hot statement
is prepared once per connection and run as ``EXECUTE``; a statement that fails does not
leave its connection unsure of what it prepared; statements gone missing on a
session (what a pooler that shares sessions causes) turn preparing off for the process and
the transaction is replayed; with the setting off nothing is prepared. On SQLite the same
calls give the same results (the setting does nothing there)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Integer, bindparam, literal_column, select, text
from sqlalchemy.exc import DBAPIError

from scimgate.store import literals
from scimgate.store.connections import Conn
from scimgate.store.engine import Database
from scimgate.store.prepared import Prepared
from scimgate.store.tables import organizations

from .organization_rows import DEFERRED_INSERT, org_row

_INSERT = DEFERRED_INSERT
_BY_EXTERNAL_ID = Prepared(
    select(organizations.c.name).where(organizations.c.external_id == bindparam("external_id"))
)
_PREPARED_HERE = text("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'scimgate\\_%'")


@pytest.fixture(autouse=True)
def _not_lost() -> Iterator[None]:
    """Each test starts (and leaves the process) with prepared statements in use."""
    literals._lost = False
    yield
    literals._lost = False


async def _prepared_count(conn: Conn) -> int:
    return int((await conn.execute(_PREPARED_HERE)).scalar_one())


async def _insert_and_read(db: Database, name: str) -> None:
    external_id = f"ext-{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(_INSERT, org_row(external_id, name))
    async with db.read() as conn:
        assert (await conn.execute(_BY_EXTERNAL_ID, {"external_id": external_id})).scalar() == name


async def test_statements_are_prepared_once_per_connection(db: Database) -> None:
    for n in range(3):
        await _insert_and_read(db, f"O'Brien \\ {n} Zoë")
    if db.is_sqlite:
        return
    async with db.read() as conn:
        # The INSERT and the SELECT, each once, however often they ran (pool of one).
        assert await _prepared_count(conn) == 2


async def test_with_the_setting_off_nothing_is_prepared(database_url: str) -> None:
    db = Database(database_url, pool_size=1, prepared_statements=False)
    try:
        await _insert_and_read(db, "plain")
        if not db.is_sqlite:
            async with db.read() as conn:
                assert await _prepared_count(conn) == 0
    finally:
        await db.dispose()


async def test_a_statement_failing_on_its_first_use_leaves_the_connection_usable(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A statement fails the first time it runs on a connection, and the caller carries on
    with that connection: the statement was prepared all the same (a round trip of its
    own before the message), so it is neither prepared twice (which would fail and turn
    preparing off) nor missing."""
    divide = Prepared(select(literal_column("12").op("/")(bindparam("by", type_=Integer))))
    with caplog.at_level(logging.WARNING, logger="scimgate.store"):
        async with db.read() as conn:
            if db.is_sqlite:  # 12 / 0 is NULL there
                assert (await conn.execute(divide, {"by": 0})).scalar() is None
            else:
                with pytest.raises(DBAPIError, match="division by zero"):
                    await conn.execute(divide, {"by": 0})
            assert (await conn.execute(divide, {"by": 4})).scalar() == 3
        async with db.read() as conn:
            assert (await conn.execute(divide, {"by": 6})).scalar() == 2
    assert not literals._lost
    assert "prepared statements failed" not in caplog.text


async def test_statements_lost_on_the_session_turn_preparing_off_and_the_write_is_replayed(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """``DEALLOCATE ALL`` behind the process's back stands in for a pooler handing the
    connection another server session: the next write finds its statement missing."""
    await _insert_and_read(db, "before")
    if db.is_sqlite:
        return
    async with db.read() as conn:
        await conn.execute(text("DEALLOCATE ALL"))
    attempts = 0

    async def work(conn: Conn) -> Any:
        nonlocal attempts
        attempts += 1
        await conn.execute(_INSERT, org_row(f"ext-{uuid.uuid4().hex}", "replayed"))
        return await conn.execute(_BY_EXTERNAL_ID, {"external_id": "none"})

    with caplog.at_level(logging.WARNING, logger="scimgate.store"):
        await db.transact(work)
    assert attempts == 2
    assert literals._lost
    assert "SCIMGATE_PG_PREPARED_STATEMENTS=false" in caplog.text
    async with db.read() as conn:
        names = await conn.execute(
            select(organizations.c.name).where(organizations.c.name == "replayed")
        )
        assert len(names.all()) == 1  # replayed once, committed once
        assert await _prepared_count(conn) == 0  # and nothing prepared since
    await _insert_and_read(db, "after")


_REPLANNED = Prepared(
    select(organizations.c.id, organizations.c.name).where(
        organizations.c.external_id == bindparam("external_id")
    ),
    replan=True,
)
_PLANS_OF = text(
    "SELECT generic_plans + custom_plans FROM pg_prepared_statements WHERE statement LIKE :like"
)


async def test_a_replanned_statement_is_prepared_anew_at_doubling_intervals(db: Database) -> None:
    """``replan=True``: after 16 executions on a connection the statement is prepared anew
    (PostgreSQL's plan counters start again), then after 32, 64 …; other statements keep
    their first PREPARE."""

    async def run(times: int) -> tuple[int, int]:
        async with db.read() as conn:
            for _ in range(times):
                assert (await conn.execute(_REPLANNED, {"external_id": "none"})).first() is None
                assert (
                    await conn.execute(_BY_EXTERNAL_ID, {"external_id": "none"})
                ).first() is None
            if db.is_sqlite:
                return 0, 0
            replanned = (
                await conn.execute(_PLANS_OF, {"like": "%organizations.id, organizations.name%"})
            ).scalar_one()
            plain = (
                await conn.execute(_PLANS_OF, {"like": "%SELECT organizations.name %"})
            ).scalar_one()
            return int(replanned), int(plain)

    first = literals.REPLAN_FIRST
    if db.is_sqlite:
        await run(3)  # the flag changes nothing there
        return
    assert await run(first) == (first, first)
    assert await run(1) == (1, first + 1)  # the 17th ran on a fresh PREPARE
    assert await run(2 * first - 1) == (2 * first, 3 * first)
    assert await run(1) == (1, 3 * first + 1)  # then after 32 more


async def test_a_result_type_changed_under_prepared_statements_replays_on_every_session(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A migration run by another process (a newer version, rolling out) changes the type
    of a column that statements prepared here return: PostgreSQL then refuses to run them
    ("cached plan must not change result type"). The unit that meets it is replayed, and
    every session of the process prepares its statements anew, so the next unit on
    another session does not fail too. Regression: the error reached the client, on
    each session in turn."""
    db = Database(database_url, pool_size=2)
    if db.is_sqlite:
        await db.dispose()
        return
    external_id = f"ext-{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(_INSERT, org_row(external_id, "typed"))
    both_in = asyncio.Barrier(2)

    async def prepare_on_a_session() -> None:
        async with db.read() as conn:
            await both_in.wait()  # two sessions, each with the statement prepared
            assert (await conn.execute(_BY_EXTERNAL_ID, {"external_id": external_id})).scalar()

    attempts = 0

    async def read(conn: Conn) -> Any:
        nonlocal attempts
        attempts += 1
        return (await conn.execute(_BY_EXTERNAL_ID, {"external_id": external_id})).scalar()

    try:
        await asyncio.gather(prepare_on_a_session(), prepare_on_a_session())
        async with db.read() as conn:
            await conn.execute(
                text("ALTER TABLE organizations ALTER COLUMN name TYPE varchar(500)")
            )
        with caplog.at_level(logging.WARNING, logger="scimgate.store"):
            assert await db.transact(read) == "typed"
            assert attempts == 2
            attempts = 0
            await asyncio.gather(prepare_on_a_session(), prepare_on_a_session())
            assert await db.transact(read) == "typed"
            assert attempts == 1
        assert not literals._lost  # still prepared, just anew
        assert "prepared statements failed" not in caplog.text
    finally:
        async with db.read() as conn:
            await conn.execute(text("ALTER TABLE organizations ALTER name TYPE text"))
        await db.dispose()
