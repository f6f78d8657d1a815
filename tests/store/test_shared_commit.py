"""Write units that are ready together share one SQLite ``COMMIT``
(:mod:`scimgate.store.shared_commit`), and sharing changes nothing a unit can observe:
a unit that fails leaves no trace and takes no other unit's work with it, no unit returns
before its work is committed, a commit that fails fails every unit in it, and units never
interleave. The behaviour every backend shares runs on both; the rest on a SQLite file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from scimgate.store.engine import Database
from scimgate.store.shared_commit import MAX_OPEN_S, MAX_UNITS

_INSERT = text(
    "INSERT INTO organizations (id, name, created_at, updated_at) "
    "VALUES (:id, :name, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"
)
_NAMES = text("SELECT name FROM organizations ORDER BY name")
_HANG_S = 5.0  # a unit that has not finished by then never will


@pytest.fixture()
def db(bare_db: Database) -> Database:
    return bare_db


@pytest.fixture()
def sqlite_db(db: Database) -> Database:
    if not db.is_sqlite:
        pytest.skip("shared commits are SQLite's (PostgreSQL groups commits itself)")
    return db


@pytest.fixture()
def commits(sqlite_db: Database) -> list[int]:
    """One entry per COMMIT sent to the SQLite file."""
    sent: list[int] = []
    event.listen(sqlite_db.sync_engine, "commit", lambda conn: sent.append(1))
    return sent


async def _add(db: Database, name: str, *, fail: bool = False) -> None:
    async with db.write() as conn:
        await conn.execute(_INSERT, {"id": uuid.uuid4().hex, "name": name})
        if fail:
            # A duplicate key: the unit fails after it changed something.
            await conn.execute(_INSERT, {"id": "dup", "name": "x"})
            await conn.execute(_INSERT, {"id": "dup", "name": "x"})


async def _names(db: Database) -> list[str]:
    async with db.read() as conn:
        return [row[0] for row in (await conn.execute(_NAMES)).all()]


async def _together(*units: Awaitable[Any]) -> list[Any]:
    """Run ``units`` concurrently, all ready in the same turn of the event loop."""
    return await asyncio.wait_for(asyncio.gather(*units, return_exceptions=True), _HANG_S)


async def test_a_failing_unit_among_concurrent_ones_takes_nothing_with_it(db: Database) -> None:
    names = [f"n{i:02}" for i in range(12)]
    results = await _together(*(_add(db, n, fail=n in {"n00", "n05", "n11"}) for n in names))
    failed = [n for n, r in zip(names, results, strict=True) if r is not None]
    assert failed == ["n00", "n05", "n11"]
    assert all(isinstance(r, IntegrityError) for r in results if r is not None)
    assert await _names(db) == [n for n in names if n not in failed]


async def test_concurrent_units_each_see_the_ones_before(sqlite_db: Database) -> None:
    """A unit that joins a transaction sees the work of the units before it: read the
    highest number, write the next, twenty at once, and the numbers are 1..20."""

    async def next_number() -> None:
        async with sqlite_db.write() as conn:
            found = (await conn.execute(text("SELECT max(name) FROM organizations"))).scalar()
            name = f"{int(found or 0) + 1:03}"
            await conn.execute(_INSERT, {"id": uuid.uuid4().hex, "name": name})

    assert await _together(*(next_number() for _ in range(20))) == [None] * 20
    assert await _names(sqlite_db) == [f"{i:03}" for i in range(1, 21)]


async def test_units_ready_together_share_one_commit(
    sqlite_db: Database, commits: list[int]
) -> None:
    await _together(*(_add(sqlite_db, f"n{i:02}") for i in range(10)))
    assert len(commits) == 1
    assert len(await _names(sqlite_db)) == 10


async def test_a_transaction_holds_at_most_max_units(
    sqlite_db: Database, commits: list[int]
) -> None:
    count = MAX_UNITS + 8
    await _together(*(_add(sqlite_db, f"n{i:03}") for i in range(count)))
    assert len(commits) == 2
    assert len(await _names(sqlite_db)) == count


async def test_no_unit_joins_a_transaction_open_too_long(
    sqlite_db: Database, commits: list[int]
) -> None:
    """A unit that took longer than MAX_OPEN_S commits without the units that queued
    behind it meanwhile: its answer does not wait for theirs."""
    returned: list[str] = []

    async def slow() -> None:
        async with sqlite_db.write() as conn:
            await conn.execute(_INSERT, {"id": uuid.uuid4().hex, "name": "slow"})
            await asyncio.sleep(MAX_OPEN_S * 3)
        returned.append(f"slow, after {len(commits)} commit(s)")

    async def quick() -> None:
        await _add(sqlite_db, "quick")
        returned.append(f"quick, after {len(commits)} commit(s)")

    await _together(slow(), quick())
    assert returned == ["slow, after 1 commit(s)", "quick, after 2 commit(s)"]
    assert await _names(sqlite_db) == ["quick", "slow"]


async def test_a_lone_unit_commits_as_it_ends(sqlite_db: Database, commits: list[int]) -> None:
    for i in range(3):
        await _add(sqlite_db, f"n{i}")
        assert len(commits) == i + 1
        assert len(await _names(sqlite_db)) == i + 1


async def test_no_unit_returns_before_its_work_is_committed(sqlite_db: Database) -> None:
    """A unit that joined sees the work before it; a reader does not until the commit, and
    every unit's work is readable the moment the unit returns."""
    seen: dict[str, list[str]] = {}

    async def unit(name: str) -> None:
        async with sqlite_db.write() as conn:
            await conn.execute(_INSERT, {"id": uuid.uuid4().hex, "name": name})
            found = await conn.execute(_NAMES)
            seen[f"{name} in its unit"] = [row[0] for row in found.all()]
            seen[f"{name} by a reader"] = await _names(sqlite_db)
        seen[f"{name} after"] = await _names(sqlite_db)

    await _together(unit("a"), unit("b"))
    assert seen == {
        "a in its unit": ["a"],
        "a by a reader": [],
        "b in its unit": ["a", "b"],
        "b by a reader": [],
        "a after": ["a", "b"],
        "b after": ["a", "b"],
    }


async def test_a_failing_first_unit_leaves_the_rest_to_commit(
    sqlite_db: Database, commits: list[int]
) -> None:
    """The unit that begins a transaction runs without a savepoint: when it fails, the
    transaction is rolled back before any other unit joins, and the others begin anew."""
    results = await _together(
        _add(sqlite_db, "first", fail=True), _add(sqlite_db, "b"), _add(sqlite_db, "c")
    )
    assert isinstance(results[0], IntegrityError)
    assert results[1:] == [None, None]
    assert await _names(sqlite_db) == ["b", "c"]
    assert len(commits) == 1


async def test_a_commit_that_fails_fails_every_unit_in_it(sqlite_db: Database) -> None:
    """A foreign key checked at COMMIT (deferred) fails the commit: the units that shared
    it all fail with its error and none of their work is stored."""

    async def orphan_directory() -> None:
        async with sqlite_db.write() as conn:
            await conn.execute(text("PRAGMA defer_foreign_keys = ON"))
            await conn.execute(
                text(
                    "INSERT INTO directories (id, organization_id, name, provider, enabled,"
                    " token_hash, token_hint, token_rotated_at, created_at, updated_at)"
                    " VALUES ('d', 'no such organization', 'd', 'entra', 1, 'h', 'h',"
                    " '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00',"
                    " '2026-01-01T00:00:00+00:00')"
                )
            )

    results = await _together(_add(sqlite_db, "a"), orphan_directory(), _add(sqlite_db, "c"))
    assert [type(r) for r in results] == [IntegrityError] * 3
    assert "FOREIGN KEY" in str(results[0])
    assert await _names(sqlite_db) == []
    await _add(sqlite_db, "after")  # the writer works again
    assert await _names(sqlite_db) == ["after"]


@pytest.mark.parametrize("then", ["returns", "raises"])
async def test_a_transaction_ended_under_a_unit_fails_them_all(
    sqlite_db: Database, then: str
) -> None:
    """SQLite ends the whole transaction on some errors (a full disk, say): the savepoint
    of the unit it happened in is gone, so nothing of the transaction may be committed."""

    async def ends_it() -> None:
        async with sqlite_db.write() as conn:
            await conn.execute(_INSERT, {"id": uuid.uuid4().hex, "name": "b"})
            conn.sync.connection.dbapi_connection.execute("ROLLBACK")
            if then == "raises":
                raise RuntimeError("after the transaction ended")

    results = await _together(_add(sqlite_db, "a"), ends_it(), _add(sqlite_db, "c"))
    assert isinstance(results[0], sqlite3.OperationalError)
    assert isinstance(results[1], RuntimeError if then == "raises" else sqlite3.OperationalError)
    assert results[2] is None  # it came after: a transaction of its own
    assert await _names(sqlite_db) == ["c"]
    await _add(sqlite_db, "after")
    assert await _names(sqlite_db) == ["after", "c"]


async def test_units_never_interleave(sqlite_db: Database) -> None:
    """A unit that awaits between its statements keeps the writer to itself: the next
    unit's statements run after its last one."""
    steps: list[str] = []

    async def unit(name: str, pause: float) -> None:
        async with sqlite_db.write() as conn:
            steps.append(f"{name} starts")
            await conn.execute(_INSERT, {"id": uuid.uuid4().hex, "name": name})
            await asyncio.sleep(pause)
            steps.append(f"{name} ends")

    await _together(unit("a", 0.02), unit("b", 0), unit("c", 0.01))
    assert steps == ["a starts", "a ends", "b starts", "b ends", "c starts", "c ends"]
    assert await _names(sqlite_db) == ["a", "b", "c"]


async def _holding(db: Database, name: str, go: asyncio.Event) -> None:
    async with db.write() as conn:
        await conn.execute(_INSERT, {"id": uuid.uuid4().hex, "name": name})
        await go.wait()


async def _cancelled_while(db: Database, second: Callable[[], Awaitable[None]]) -> None:
    """``a`` holds the writer; ``second`` is cancelled while it waits or works; then
    ``a`` finishes: it must commit (no unit waits for the cancelled one)."""
    go = asyncio.Event()
    first = asyncio.create_task(_holding(db, "a", go))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(second())
    await asyncio.sleep(0.01)
    waiter.cancel()
    go.set()
    await asyncio.wait_for(first, _HANG_S)
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_a_unit_cancelled_while_waiting_its_turn_holds_up_nothing(
    sqlite_db: Database,
) -> None:
    await _cancelled_while(sqlite_db, lambda: _add(sqlite_db, "never"))
    assert await _names(sqlite_db) == ["a"]
    await _add(sqlite_db, "after")
    assert await _names(sqlite_db) == ["a", "after"]


async def test_a_unit_cancelled_mid_work_leaves_no_trace(sqlite_db: Database) -> None:
    never = asyncio.Event()
    joined = asyncio.create_task(_holding(sqlite_db, "cancelled", never))
    first = asyncio.create_task(_add(sqlite_db, "a"))
    await asyncio.sleep(0.02)  # "cancelled" began the transaction; "a" waits its turn
    joined.cancel()
    await asyncio.wait_for(first, _HANG_S)
    with pytest.raises(asyncio.CancelledError):
        await joined
    assert await _names(sqlite_db) == ["a"]


async def test_a_joiner_cancelled_mid_work_leaves_the_others(sqlite_db: Database) -> None:
    """``a`` begins the transaction and waits to commit; ``b`` joins and is cancelled
    while it works: ``a`` commits without it."""
    never = asyncio.Event()
    b_in = asyncio.Event()

    async def b() -> None:
        async with sqlite_db.write() as conn:
            await conn.execute(_INSERT, {"id": uuid.uuid4().hex, "name": "b"})
            b_in.set()
            await never.wait()

    first = asyncio.create_task(_add(sqlite_db, "a"))
    joiner = asyncio.create_task(b())
    await asyncio.wait_for(b_in.wait(), _HANG_S)
    assert not first.done()  # it waits for the commit b is in
    joiner.cancel()
    await asyncio.wait_for(first, _HANG_S)
    with pytest.raises(asyncio.CancelledError):
        await joiner
    assert await _names(sqlite_db) == ["a"]
