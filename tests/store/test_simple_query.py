"""What a message sent through ``store/simple_query.py`` (PostgreSQL's libpq handle, no
psycopg cursor) must get right, checked through ``Database`` on both backends: a message
larger than the socket takes at once, row counts, the failing statement's own error, and a
unit cancelled while it waits for its answer."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import Float, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from scimgate.store.engine import Database
from scimgate.store.prepared import Prepared
from scimgate.store.tables import organizations

from .organization_rows import DEFERRED_INSERT, org_row

_NAMES = Prepared(
    select(organizations.c.name).where(organizations.c.external_id.like(bindparam("prefix")))
)
_RENAME = Prepared(
    update(organizations)
    .where(organizations.c.external_id.like(bindparam("prefix")))
    .values(name=bindparam("name"))
)
_SLEEP = Prepared(select(func.pg_sleep(bindparam("seconds", type_=Float))))


async def test_a_message_larger_than_the_socket_buffer_goes_whole(db: Database) -> None:
    """One multi-row INSERT of ~16 MB, beyond what loopback's socket buffers take at
    once: sent in parts as the socket drains."""
    prefix = f"big-{uuid.uuid4().hex}"
    name = "x" * 32_000
    rows = [org_row(f"{prefix}-{n}", name) for n in range(500)]
    async with db.write() as conn:
        await conn.execute(DEFERRED_INSERT, rows)
    async with db.read() as conn:
        names = (await conn.execute(_NAMES, {"prefix": f"{prefix}-%"})).all()
    assert len(names) == 500 and {n.name for n in names} == {name}


async def test_row_counts_and_rows_read_as_a_cursor_reads_them(db: Database) -> None:
    prefix = f"count-{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(DEFERRED_INSERT, [org_row(f"{prefix}-{n}") for n in range(3)])
        renamed = await conn.execute(_RENAME, {"prefix": f"{prefix}-%", "name": "renamed"})
        found = await conn.execute(_NAMES, {"prefix": f"{prefix}-%"})
    assert renamed.rowcount == 3
    assert [r.name for r in found] == ["renamed"] * 3
    if not db.is_sqlite:  # sqlite3 counts no SELECT rows (-1); psycopg counts them
        assert found.rowcount == 3


async def test_the_failing_statement_raises_its_own_error_and_nothing_stays(
    db: Database,
) -> None:
    prefix = f"clash-{uuid.uuid4().hex}"
    taken = org_row(f"{prefix}-taken")
    async with db.write() as conn:
        await conn.execute(DEFERRED_INSERT, taken)
    with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"):
        async with db.write() as conn:
            await conn.execute(DEFERRED_INSERT, org_row(f"{prefix}-fresh"))
            await conn.execute(DEFERRED_INSERT, {**org_row("other"), "id": taken["id"]})
    async with db.read() as conn:
        names = (await conn.execute(_NAMES, {"prefix": f"{prefix}-%"})).all()
    assert len(names) == 1  # the fresh row went with the failed transaction


async def test_a_unit_cancelled_while_waiting_leaves_no_busy_connection(db: Database) -> None:
    """The message's answer is never read: the connection is not lent again as it is."""
    if db.is_sqlite:
        return  # statements run inline: nothing to await, nothing to cancel mid-way
    waiting = asyncio.Event()

    async def slow() -> None:
        async with db.read() as conn:
            waiting.set()
            await conn.execute(_SLEEP, {"seconds": 5})

    task = asyncio.create_task(slow())
    await waiting.wait()
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with db.read() as conn:  # the pool's only connection, or a new one
        rows = await conn.execute(_NAMES, {"prefix": "no-such-%"})
        assert rows.all() == []
