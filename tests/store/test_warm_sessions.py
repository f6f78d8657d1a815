"""New PostgreSQL sessions are warmed off the request path: the pool opens at start-up
with every hot statement prepared and planned five times for sample values
(``Database.warm_up``), and a connection retired for its age is replaced by a warm one in
the background. A warmed session then serves requests without preparing anything again.
SQLite has nothing to warm: the same calls do nothing there."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

import scimgate.app  # noqa: F401  (importing the app declares every hot statement)
from scimgate.directory.records import ColumnMatch
from scimgate.directory.users import search
from scimgate.store import literals
from scimgate.store.connections import Conn
from scimgate.store.engine import Database
from scimgate.store.held import PostgresLender
from scimgate.store.prepared import warm_statements
from tests.live import free_port

_PLANS = text(
    "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements "
    "WHERE name LIKE 'scimgate\\_%'"
)
_PID = text("SELECT pg_backend_pid()")


@pytest.fixture()
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=3)
    yield database
    await database.dispose()


def _hot_names(dialect: Any) -> set[str]:
    return {literals._prepared_form(s.compiled(dialect).sql)[0] for s in warm_statements()}


async def _plans(conn: Conn) -> dict[str, tuple[int, int]]:
    """Each prepared statement of the session: (generic plans, custom plans)."""
    return {row.name: (row.generic_plans, row.custom_plans) for row in await conn.execute(_PLANS)}


async def _all_lent_at_once(db: Database, size: int) -> list[tuple[int, dict[str, Any]]]:
    """(backend pid, plans) of ``size`` connections lent together: the whole pool."""
    arrived = 0
    all_in = asyncio.Event()

    async def one() -> tuple[int, dict[str, Any]]:
        nonlocal arrived
        async with db.read() as conn:
            arrived += 1
            if arrived == size:
                all_in.set()
            await all_in.wait()
            return int((await conn.execute(_PID)).scalar_one()), await _plans(conn)

    return await asyncio.gather(*(one() for _ in range(size)))


def test_the_hot_statements_are_declared() -> None:
    """The statements of an Entra cycle are among them (a typo in a declaration would
    silently leave one cold)."""
    sql = [" ".join(s.statement.compile().string.split()) for s in warm_statements()]
    assert len(sql) == len(set(sql)) >= 25
    for fragment in (
        "FROM directories JOIN organizations",  # the token's directory, every request
        "INSERT INTO users",
        "INSERT INTO events",
        "users.user_name_key = :value",  # the match before a create
        "groups.display_name_key = :value",
        "INSERT INTO group_members",
    ):
        assert any(fragment in one for one in sql), fragment


async def test_warm_up_opens_the_pool_with_every_hot_statement_planned(db: Database) -> None:
    opened = await db.warm_up()
    if db.is_sqlite:
        assert opened == 0
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        return
    assert opened == 3
    assert await db.warm_up() == 0  # the pool is full
    lent = await _all_lent_at_once(db, 3)
    assert len({pid for pid, _ in lent}) == 3
    hot = _hot_names(db.engine.dialect)
    for _, plans in lent:
        assert set(plans) == hot
        # Five custom plans each; the generic one is left to the first real execution.
        assert set(plans.values()) == {(0, 5)}


async def test_a_warm_session_serves_requests_without_preparing_again(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await db.warm_up()
    with caplog.at_level(logging.WARNING, logger="scimgate.store"):
        for n in range(3):
            async with db.read() as conn:
                match = ColumnMatch("user_name_key", f"nobody-{n}@example.com")
                page = await search(conn, "no-such-directory", match, (), 0, 1, groups=True)
                assert page.total == 0 and page.records == []
    assert not caplog.records
    assert not literals._lost  # a second PREPARE of a name would have turned them off
    if db.is_sqlite:
        return
    lent = await _all_lent_at_once(db, 3)
    hot = _hot_names(db.engine.dialect)
    runs = [sum(plans[name]) for _, plans in lent for name in plans]
    assert all(set(plans) == hot for _, plans in lent)  # nothing new was prepared
    assert sum(runs) == 3 * len(hot) * 5 + 3  # the three searches ran on warm sessions


async def test_without_prepared_statements_nothing_is_warmed(database_url: str) -> None:
    database = Database(database_url, pool_size=2, prepared_statements=False)
    try:
        assert await database.warm_up() == 0
        async with database.read() as conn:
            if not database.is_sqlite:
                assert await _plans(conn) == {}
    finally:
        await database.dispose()


async def test_warm_up_with_the_database_down_logs_and_leaves_it_to_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server starting while PostgreSQL is unreachable still starts."""
    database = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/test", pool_size=2)
    try:
        with caplog.at_level(logging.WARNING, logger="scimgate.store"):
            assert await database.warm_up() == 0
        assert "opened 0 of 2 warm PostgreSQL connections" in caplog.text
    finally:
        await database.dispose()


async def test_a_connection_retired_for_its_age_is_replaced_by_a_warm_one(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite keeps no sessions to retire")
    lender = PostgresLender(db.engine, size=1, recycle_s=0.3, prepare=True, warm=True)
    try:
        assert await lender.fill() == 1
        async with lender.lend() as conn:
            old = (await conn.execute(_PID)).scalar_one()
            await asyncio.sleep(0.35)  # past its age: retired as it is given back
        await lender.warming_done()
        async with lender.lend() as conn:
            assert (await conn.execute(_PID)).scalar_one() != old
            plans = await _plans(conn)
        assert set(plans) == _hot_names(db.engine.dialect)
        assert set(plans.values()) == {(0, 5)}
    finally:
        await lender.close()


async def test_a_replacement_never_grows_the_pool_past_its_size(db: Database) -> None:
    """A unit that opens a connection while the replacement waits for its slot leaves the
    replacement nothing to do."""
    if db.is_sqlite:
        pytest.skip("SQLite keeps no sessions to retire")
    lender = PostgresLender(db.engine, size=1, recycle_s=0.3, prepare=True, warm=True)
    try:
        async with lender.lend() as conn:
            await asyncio.sleep(0.35)
        async with lender.lend() as conn:  # before the replacement gets the slot
            pid = (await conn.execute(_PID)).scalar_one()
        await lender.warming_done()
        async with lender.lend() as conn:
            assert (await conn.execute(_PID)).scalar_one() == pid
        assert lender._open_count == 1
    finally:
        await lender.close()
