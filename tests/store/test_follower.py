"""A follower (``conn.follow``) goes right after the next statement that returns rows, in
its message on PostgreSQL, and its rows wait for ``await follower.rows()``; where nothing
carried it, it runs there. A write follows only inside a transaction, never behind an
unchecked precondition, and goes with its unit's rollback. Every test runs on both
backends."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import bindparam, func, select, update

from scimgate.store.engine import Database
from scimgate.store.prepared import Prepared, Rows
from scimgate.store.tables import organizations

from .organization_rows import COLUMNS, org_row

_INSERT = Prepared(organizations.insert(), column_keys=COLUMNS)
_KEY = organizations.c.external_id == bindparam("external_id")
_LOCK = Prepared(select(organizations.c.id, organizations.c.name).where(_KEY).with_for_update())
_NAME = Prepared(select(organizations.c.name).where(_KEY))
_RENAME = Prepared(
    update(organizations)
    .where(_KEY)
    .values(name=bindparam("new_name"))
    .returning(organizations.c.name)
)


class Refused(Exception):
    pass


def _refuse(_rows: Rows) -> None:
    raise Refused("the precondition does not hold")


async def _name(db: Database, external_id: str) -> str:
    async with db.read() as conn:
        return str((await conn.execute(_NAME, {"external_id": external_id})).scalar_one())


async def test_a_follower_rides_with_the_next_read(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    round_trips.clear()
    async with db.write() as conn:
        follower = conn.follow(_RENAME, {"external_id": keyed, "new_name": "renamed"})
        locked = await conn.execute(_LOCK, {"external_id": keyed})
        assert [r.name for r in locked] == ["key"]  # the lock's rows: before the follower
        assert [r.name for r in await follower.rows()] == ["renamed"]
    if db.dialect == "postgresql":
        assert len(round_trips) == 2, round_trips  # the lock with its follower; COMMIT
        assert "'renamed'" in round_trips[0]
    assert await _name(db, keyed) == "renamed"


async def test_a_follower_no_statement_carried_runs_on_its_own(db: Database, keyed: str) -> None:
    async with db.read() as conn:
        follower = conn.follow(_NAME, {"external_id": keyed})
        assert [r.name for r in await follower.rows()] == ["key"]
        assert [r.name for r in await follower.rows()] == ["key"]  # kept, not run again
        # it no longer waits for a statement to ride with
        assert [r.name for r in await conn.execute(_NAME, {"external_id": keyed})] == ["key"]


async def test_a_follower_sees_what_the_lock_waited_for(database_url: str, keyed: str) -> None:
    """The follower reads after the lock is granted: it sees what the lock's previous
    holder committed, as a statement sent after the lock's answer would."""
    db = Database(database_url, pool_size=2)
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with db.write() as conn:
            await conn.execute(_LOCK, {"external_id": keyed})
            await conn.execute(_RENAME, {"external_id": keyed, "new_name": "by the holder"})
            holding.set()
            await release.wait()

    async def waiter() -> str:
        await holding.wait()
        async with db.write() as conn:
            follower = conn.follow(_NAME, {"external_id": keyed})
            await conn.execute(_LOCK, {"external_id": keyed})
            return str((await follower.rows()).scalar_one())

    try:
        first = asyncio.create_task(holder())
        second = asyncio.create_task(waiter())
        await holding.wait()
        await asyncio.sleep(0.2)  # the waiter is blocked on the lock (or the writer lock)
        release.set()
        await first
        assert await second == "by the holder"
    finally:
        await db.dispose()


async def test_a_write_follower_waits_for_an_unchecked_precondition(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    round_trips.clear()
    with pytest.raises(Refused):
        async with db.write() as conn:
            await conn.precede(_NAME, {"external_id": keyed}, _refuse)
            follower = conn.follow(_RENAME, {"external_id": keyed, "new_name": "refused"})
            await conn.execute(_LOCK, {"external_id": keyed})
            await follower.rows()
    if db.dialect == "postgresql":
        assert not any("'refused'" in sql for sql in round_trips), round_trips
    assert await _name(db, keyed) == "key"


async def test_a_read_follower_rides_behind_an_unchecked_precondition(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    round_trips.clear()
    async with db.write() as conn:
        await conn.precede(_NAME, {"external_id": keyed}, lambda rows: rows.first())
        follower = conn.follow(_NAME, {"external_id": keyed})
        await conn.execute(_LOCK, {"external_id": keyed})
        assert [r.name for r in await follower.rows()] == ["key"]
    if db.dialect == "postgresql":
        assert len(round_trips) == 2, round_trips  # check, lock and follower; COMMIT


async def test_a_write_follower_goes_with_its_units_rollback(db: Database, keyed: str) -> None:
    with pytest.raises(Refused):
        async with db.write() as conn:
            conn.follow(_RENAME, {"external_id": keyed, "new_name": "rolled back"})
            await conn.execute(_LOCK, {"external_id": keyed})
            raise Refused("the caller gives up after the lock")  # its rows never read
    assert await _name(db, keyed) == "key"


async def test_a_write_follower_never_rides_outside_a_transaction(db: Database, keyed: str) -> None:
    """A read unit runs in autocommit mode: a write riding there would be committed
    whatever happens next, so it runs only when its rows are asked for."""
    async with db.read() as conn:
        follower = conn.follow(_RENAME, {"external_id": keyed, "new_name": "unasked"})
        await conn.execute(_NAME, {"external_id": keyed})
        if db.dialect == "postgresql":
            assert not follower.sent
    assert await _name(db, keyed) == "key"


async def test_a_follower_left_unread_does_not_leak_into_the_next_unit(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    async with db.read() as conn:
        conn.follow(_NAME, {"external_id": "never-sent"})
    round_trips.clear()
    for _ in range(2):  # one pooled connection: the same one each time
        async with db.read() as conn:
            rows = await conn.execute(_NAME, {"external_id": keyed})
            assert [r.name for r in rows] == ["key"]
    assert not any("never-sent" in sql for sql in round_trips), round_trips


async def test_a_batch_cannot_follow(db: Database) -> None:
    async with db.write() as conn:
        rows: Any = [org_row(f"x-{uuid.uuid4().hex}") for _ in range(2)]
        with pytest.raises(ValueError, match="one statement"):
            conn.follow(_INSERT, rows)
        with pytest.raises(ValueError, match="one statement"):
            conn.follow(_INSERT, rows[0])  # returns no rows


async def test_followers_fill_a_message_and_the_rest_wait(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    round_trips.clear()
    async with db.read() as conn:
        followers = [conn.follow(_NAME, {"external_id": keyed}) for _ in range(8)]
        await conn.execute(_NAME, {"external_id": keyed})
        for follower in followers:
            assert [r.name for r in await follower.rows()] == ["key"]
    if db.dialect == "postgresql":
        # the read with five followers; the sixth, asked for, with the last two
        assert len(round_trips) == 2, round_trips


# -- a finisher (``conn.finish``): the unit's last write, sent with COMMIT -----------------


async def test_a_finisher_commits_the_unit_in_the_locks_message(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    round_trips.clear()
    async with db.write() as conn:
        finisher = conn.finish(_RENAME, {"external_id": keyed, "new_name": "finished"})
        locked = await conn.execute(_LOCK, {"external_id": keyed})
        assert [r.name for r in locked] == ["key"]
        rows = finisher.rows()
        if db.dialect == "postgresql":
            assert rows is not None and [r.name for r in rows] == ["finished"]
            with pytest.raises(RuntimeError, match="committed"):
                await conn.execute(_NAME, {"external_id": keyed})  # nothing after it
        else:
            assert rows is None  # never sent: the caller makes the change itself
    if db.dialect == "postgresql":
        assert len(round_trips) == 1, round_trips  # BEGIN, lock, finisher, COMMIT
        assert round_trips[0].rstrip().endswith("COMMIT")
        assert await _name(db, keyed) == "finished"
    else:
        assert await _name(db, keyed) == "key"


async def test_a_finisher_stays_committed_whatever_the_unit_raises_after(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    """Once sent, its change is committed: the unit's rollback then sends nothing."""
    round_trips.clear()
    with pytest.raises(Refused):
        async with db.write() as conn:
            finisher = conn.finish(_RENAME, {"external_id": keyed, "new_name": "kept"})
            await conn.execute(_LOCK, {"external_id": keyed})
            raise Refused("after the commit")
    if db.dialect == "postgresql":
        assert finisher.rows() is not None
        assert len(round_trips) == 1, round_trips  # no ROLLBACK
        assert await _name(db, keyed) == "kept"
    async with db.write() as conn:  # the connection serves the next unit as usual
        await conn.execute(_RENAME, {"external_id": keyed, "new_name": "next"})
    assert await _name(db, keyed) == "next"


async def test_a_finishers_error_rolls_everything_back(db: Database, keyed: str) -> None:
    """The lock, the write before it and the finisher: all or nothing (on SQLite it is
    never sent, and the unit's rollback undoes the write)."""
    failing = Prepared(
        update(organizations)
        .where(_KEY)
        .values(name=bindparam("new_name"))
        .returning(func.length(organizations.c.name) / 0)  # fails once the row is updated
    )
    with pytest.raises(Exception, match="division by zero"):
        async with db.write() as conn:
            await conn.execute(_RENAME, {"external_id": keyed, "new_name": "earlier"})
            conn.finish(failing, {"external_id": keyed, "new_name": "failed"})
            await conn.execute(_LOCK, {"external_id": keyed})
            if db.dialect != "postgresql":
                raise Exception("division by zero")  # not sent here: the caller gives up
    assert await _name(db, keyed) == "key"


async def test_a_finisher_never_rides_behind_an_unchecked_precondition(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    round_trips.clear()
    async with db.write() as conn:
        await conn.precede(_NAME, {"external_id": keyed}, lambda rows: rows.first())
        finisher = conn.finish(_RENAME, {"external_id": keyed, "new_name": "too early"})
        await conn.execute(_LOCK, {"external_id": keyed})
        assert finisher.rows() is None
        await conn.execute(_LOCK, {"external_id": keyed})  # it rides now or never
        assert finisher.rows() is None
    assert not any("'too early'" in sql for sql in round_trips), round_trips
    assert await _name(db, keyed) == "key"


async def test_a_finisher_never_rides_outside_a_transaction(
    db: Database, keyed: str, round_trips: list[str]
) -> None:
    round_trips.clear()
    async with db.read() as conn:
        finisher = conn.finish(_RENAME, {"external_id": keyed, "new_name": "unasked"})
        await conn.execute(_NAME, {"external_id": keyed})
        assert finisher.rows() is None
    assert not any("'unasked'" in sql for sql in round_trips), round_trips
    assert await _name(db, keyed) == "key"


async def test_a_finisher_without_room_in_the_message_is_not_sent(db: Database, keyed: str) -> None:
    async with db.write() as conn:
        followers = [conn.follow(_NAME, {"external_id": keyed}) for _ in range(5)]
        finisher = conn.finish(_RENAME, {"external_id": keyed, "new_name": "no room"})
        await conn.execute(_LOCK, {"external_id": keyed})
        for follower in followers:
            assert [r.name for r in await follower.rows()] == ["key"]
        assert finisher.rows() is None
        await conn.execute(_RENAME, {"external_id": keyed, "new_name": "ordinary"})
    assert await _name(db, keyed) == "ordinary"
