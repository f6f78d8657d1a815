"""The feed-order condition (store/feed_order.py) on its own: which last writers it lets
pass, what it raises, and that it costs a new session nothing it would have to undo."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, text, update
from sqlalchemy.exc import DBAPIError

from scimgate.store import engine
from scimgate.store.engine import Database, replayable
from scimgate.store.feed_order import FUNCTION, WARM, in_feed_order, out_of_order
from scimgate.store.transient import DatabaseUnavailable

_scratch = Table("feed_order_scratch", MetaData(), Column("id", Integer, primary_key=True))


async def _check_against(conn: Any, last_writer: Callable[[int], int]) -> Any:
    """Run the function on ``conn`` (a transaction) for the last writer
    ``last_writer(mine)``, ``mine`` being the transaction's id (32 bits; assigned now if
    it had none)."""
    mine = (
        await conn.execute(text("SELECT CAST(CAST(pg_current_xact_id() AS xid) AS text)"))
    ).scalar_one()
    value = last_writer(int(mine)) % 2**32
    return await conn.execute(text(f"SELECT {FUNCTION}(CAST('{value}' AS xid))"))


def _newer(mine: int) -> int:
    return mine + 10


async def _verdict(db: Database, last_writer: Callable[[int], int]) -> bool | str:
    """The function's answer in a transaction that has an id, for the last writer
    ``last_writer(mine)`` (``mine``: our transaction id, 32 bits): True, or the error's
    SQLSTATE."""
    async with db.engine.connect() as conn:
        await conn.execute(text("BEGIN"))
        try:
            return bool((await _check_against(conn, last_writer)).scalar_one())
        except DBAPIError as exc:
            assert replayable(exc) and out_of_order(exc), exc
            return str(getattr(exc.orig, "sqlstate", None))
        finally:
            await conn.rollback()


@pytest.fixture()
async def pg(database_url: str) -> AsyncIterator[Database]:
    if database_url.startswith("sqlite"):
        pytest.skip("the function is PostgreSQL's (SQLite has one writer at a time)")
    database = Database(database_url, pool_size=1)
    yield database
    await database.dispose()


@pytest.fixture()
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The attempts ``Database.transact`` paused before (its back-off, recorded instead)."""
    paused: list[int] = []

    async def pause(attempt: int) -> None:
        paused.append(attempt)

    monkeypatch.setattr(engine, "_backoff", pause)
    return paused


@pytest.mark.parametrize(
    ("last_writer", "verdict"),
    [
        (lambda mine: mine, True),  # we wrote the row earlier in this transaction
        (lambda mine: mine - 1, True),
        (lambda mine: mine - 2**31 + 1, True),  # as old as a live row's writer can be
        (lambda mine: mine + 1, "40001"),  # a newer transaction wrote it: replay
        (lambda mine: mine + 1000, "40001"),
        (lambda mine: 2, True),  # frozen
    ],
    ids=["ours", "older", "oldest", "newer", "much-newer", "frozen"],
)
async def test_the_last_writer_must_not_be_newer(
    pg: Database, last_writer: Callable[[int], int], verdict: bool | str
) -> None:
    assert await _verdict(pg, last_writer) == verdict


async def test_warming_assigns_no_transaction_id(pg: Database) -> None:
    async with pg.engine.connect() as conn:
        await conn.execute(text("BEGIN"))
        assert (await conn.execute(text(WARM))).scalar_one() is True
        assigned = await conn.execute(text("SELECT pg_current_xact_id_if_assigned()"))
        assert assigned.scalar_one() is None
        await conn.rollback()


async def test_the_condition_changes_rows_on_both_backends(database_url: str) -> None:
    """On SQLite it renders as plain true; on PostgreSQL a row we just inserted passes."""
    db = Database(database_url, pool_size=1)
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE feed_order_scratch (id INTEGER PRIMARY KEY)"))
            await conn.execute(_scratch.insert().values(id=1))
            statement = update(_scratch).where(_scratch.c.id == 1, in_feed_order(_scratch))
            await conn.execute(statement.values(id=2))
        async with db.read() as conn:
            rows = await conn.execute(text("SELECT id FROM feed_order_scratch"))
            assert [r.id for r in rows] == [2]
        async with db.write() as conn:
            await conn.execute(text("DROP TABLE feed_order_scratch"))
    finally:
        await db.dispose()


_OTHER_SERIALIZATION_FAILURE = """DO $$ BEGIN
  RAISE EXCEPTION USING ERRCODE = 'serialization_failure', MESSAGE = 'not ours';
END $$"""


@pytest.mark.parametrize("ours", [True, False], ids=["out-of-order", "other-40001"])
async def test_an_out_of_order_change_is_replayed_at_once(
    pg: Database, ours: bool, pauses: list[int]
) -> None:
    """Its newer writer has committed already: waiting gains nothing. Other replayable
    failures (deadlocks, serialization failures) still wait a random moment first."""
    runs = 0

    async def work(conn: Any) -> int:
        nonlocal runs
        runs += 1
        if runs == 1:
            if ours:
                await _check_against(conn, _newer)
            else:
                await conn.execute(text(_OTHER_SERIALIZATION_FAILURE))
        return runs

    assert await pg.transact(work) == 2
    assert pauses == ([] if ours else [1])


async def test_a_change_still_out_of_order_after_every_attempt_is_busy_not_a_bug(
    pg: Database, pauses: list[int]
) -> None:
    """Contention that outlasts the replays is a 503 the IdP retries (busy), not a 500."""
    runs = 0

    async def work(conn: Any) -> None:
        nonlocal runs
        runs += 1
        await _check_against(conn, _newer)

    with pytest.raises(DatabaseUnavailable) as raised:
        await pg.transact(work, attempts=3)
    assert raised.value.busy
    assert runs == 3
    assert pauses == []
