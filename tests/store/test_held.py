"""Connections are lent to units of work and kept between them. A unit must never see
what an earlier unit left behind: an open transaction, a stale SQLite read snapshot, a
dead link, a cancelled query. Each case below ends with the next unit working normally
and seeing the latest committed data."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from scimgate.store.engine import Database
from scimgate.store.transient import DatabaseUnavailable

_COUNT = text("SELECT count(*) FROM organizations")


@pytest.fixture()
def db(bare_db: Database) -> Database:
    return bare_db


async def _add_org(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(
            text(
                "INSERT INTO organizations (id, name, created_at, updated_at) "
                "VALUES (:id, 'n', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"
            ),
            {"id": uuid.uuid4().hex},
        )


async def _count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(_COUNT)).scalar_one())


async def test_a_read_after_a_half_read_cursor_sees_new_commits(db: Database) -> None:
    """A SQLAlchemy result left half-read keeps a SQLite read snapshot open on its
    connection, and returning the connection to the pool does not clear it (the pool's
    rollback leaves statements alone): the lender closes such results when a unit ends."""
    for _ in range(3):
        await _add_org(db)
    async with db.read() as conn:
        result = await conn.execute(text("SELECT id FROM organizations"))
        result.fetchone()  # two rows left unread
    await _add_org(db)
    assert await _count(db) == 4
    async with db.write() as conn:
        result = await conn.execute(text("SELECT id FROM organizations"))
        result.fetchone()
    await _add_org(db)
    assert await _count(db) == 5


async def test_overlapping_reads_and_writes_each_get_a_working_connection(db: Database) -> None:
    async def slow_read() -> int:
        async with db.read() as conn:
            await asyncio.sleep(0.05)  # the reader stays lent while others run
            return int((await conn.execute(_COUNT)).scalar_one())

    reads = [asyncio.create_task(slow_read()) for _ in range(10)]
    writes = [asyncio.create_task(_add_org(db)) for _ in range(10)]
    await asyncio.gather(*writes)
    counts = await asyncio.gather(*reads)
    assert all(0 <= c <= 10 for c in counts)
    assert await _count(db) == 10


async def test_a_failed_write_leaves_nothing_behind(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(
                text(
                    "INSERT INTO organizations (id, name, created_at, updated_at) "
                    "VALUES ('gone', 'n', '2026-01-01', '2026-01-01')"
                )
            )
            raise RuntimeError("the unit fails after its insert")
    assert await _count(db) == 0
    await _add_org(db)
    assert await _count(db) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_transaction_left_open_is_not_lent_again(db: Database) -> None:
    """A unit that sends its own BEGIN and never ends it: the lender drops the
    connection, so the insert is rolled back and no later unit runs inside it."""
    async with db.read() as conn:
        await conn.execute(text("BEGIN"))
        await conn.execute(
            text(
                "INSERT INTO organizations (id, name, created_at, updated_at) "
                "VALUES ('open', 'n', now(), now())"
            )
        )
    for _ in range(8):  # more units than the pool keeps: any reuse would show
        assert await _count(db) == 0
        async with db.read() as conn:
            in_tx = (await conn.execute(text("SELECT now() <> statement_timestamp()"))).scalar()
        assert in_tx is False


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_killed_connection_is_replaced(db: Database) -> None:
    async with db.read() as victim:
        pid = (await victim.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with db.read() as killer:
            await killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    failures = 0
    for _ in range(3):
        try:
            async with db.read() as conn:
                other = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        except DatabaseUnavailable:
            failures += 1  # the one unit that may meet the dead link before it hangs up
            continue
        assert other != pid
    assert failures <= 1
    await _add_org(db)
    assert await _count(db) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_cancelled_query_does_not_poison_the_next_unit(db: Database) -> None:
    async def slow() -> None:
        async with db.read() as conn:
            await conn.execute(text("SELECT pg_sleep(5)"))

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow(), 0.2)
    for n in range(6):
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT :n"), {"n": n})).scalar_one() == n


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_units_beyond_the_pool_wait_their_turn(db: Database) -> None:
    """pool_size=4 means at most 4 connections, in use or open: 30 concurrent units (reads
    and writes) all complete, never more than 4 at once, in the order they asked, on the
    same 4 PostgreSQL sessions (kept, not reopened per unit)."""
    in_flight = 0
    peak = 0
    entered: list[int] = []
    backends: set[int] = set()

    async def unit(n: int) -> int:
        nonlocal in_flight, peak
        lend = db.write() if n % 3 == 0 else db.read()
        async with lend as conn:
            entered.append(n)
            in_flight += 1
            peak = max(peak, in_flight)
            backends.add((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            await conn.execute(text("SELECT pg_sleep(0.02)"))
            got = int((await conn.execute(text("SELECT :n"), {"n": n})).scalar_one())
            in_flight -= 1
            return got

    assert await asyncio.gather(*(unit(n) for n in range(30))) == list(range(30))
    assert peak == 4
    assert len(backends) == 4, backends
    assert entered[4:] == sorted(entered[4:]), entered  # first come, first served
    async with db.read() as conn:
        sessions = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND backend_type = 'client backend'"
                )
            )
        ).scalar_one()
    assert sessions <= 4


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_connection_the_server_ended_while_idle_is_not_lent_again(db: Database) -> None:
    """A backend terminated between units (a restart, an administrator, an idle timeout)
    says so on its socket: the next unit gets a new connection and does not fail."""
    async with db.read() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with db.read() as killer:  # the same connection: the only idle one
        other = (await killer.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert other == pid
    admin = Database(db.url.render_as_string(hide_password=False), pool_size=1)
    try:
        async with admin.read() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            for _ in range(100):  # until it is gone
                gone = (
                    await conn.execute(
                        text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
                    )
                ).scalar_one()
                if gone:
                    break
                await asyncio.sleep(0.01)
    finally:
        await admin.dispose()
    async with db.read() as conn:
        fresh = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert fresh != pid


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_wait_past_the_pool_timeout_fails_busy_and_loses_no_connection(
    database_url: str,
) -> None:
    """Units that give up waiting (some just as a connection is handed to them) must
    leave every connection lendable: afterwards, all of them can be lent at once."""
    db = Database(database_url, pool_size=2, pool_timeout=0.05)
    outcomes: list[str] = []

    async def unit(hold: float) -> None:
        try:
            async with db.read() as conn:
                await conn.execute(text("SELECT pg_sleep(:s)"), {"s": hold})
            outcomes.append("served")
        except DatabaseUnavailable as exc:
            assert exc.busy and "all 2 connections of this process stayed in use" in str(exc)
            outcomes.append("busy")

    try:
        # Holds around the timeout, so that grants and time-outs race.
        await asyncio.gather(*(unit(0.01 + 0.004 * (n % 20)) for n in range(80)))
        assert "busy" in outcomes and "served" in outcomes, outcomes
        held = asyncio.Event()
        lent = 0

        async def hold_one() -> None:
            nonlocal lent
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
                lent += 1
                if lent == 2:
                    held.set()
                await held.wait()

        await asyncio.wait_for(asyncio.gather(hold_one(), hold_one()), timeout=5)
    finally:
        await db.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_each_session_gets_the_timeouts_and_a_pooler_session_does_not(
    database_url: str,
) -> None:
    """Set once per connection opened, not per unit; left to the server (the role's
    settings) where a pooler may share sessions, i.e. with prepared statements off."""
    show = text("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
    for prepared, expected in ((True, ("1500ms", "2min")), (False, ("0", "0"))):
        db = Database(
            database_url,
            pool_size=2,
            prepared_statements=prepared,
            lock_timeout=1.5,
            statement_timeout=120,
        )
        try:
            for _ in range(3):
                async with db.write() as conn:
                    assert tuple((await conn.execute(show)).one()) == expected
                async with db.read() as conn:
                    assert tuple((await conn.execute(show)).one()) == expected
        finally:
            await db.dispose()
