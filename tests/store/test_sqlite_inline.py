"""SQLite runs inline on the event loop: waiting for another process's write lock must
not block the loop, and the write must still happen once the lock is free."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from scimgate.store.engine import Database
from scimgate.store.migrate import upgrade
from scimgate.store.transient import DatabaseUnavailable


async def test_a_write_waits_for_a_foreign_lock_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    db = Database(url)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer, in effect
    release_after = 0.5
    threading.Timer(release_after, holder.execute, args=("COMMIT",)).start()

    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        for _ in range(60):
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def writer() -> float:
        start = time.monotonic()
        async with db.write() as conn:
            await conn.execute(
                text(
                    "INSERT INTO organizations (id, name, created_at, updated_at) "
                    "VALUES ('o1', 'n', '2026-01-01', '2026-01-01')"
                )
            )
        return time.monotonic() - start

    try:
        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.03)  # the ticker is running before the write starts
        waited = await writer()
        await ticking
        async with db.read() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM organizations"))).scalar_one()
    finally:
        await db.dispose()
        holder.close()
    assert count == 1, "the write must happen once the lock is released"
    assert waited >= release_after * 0.8, "the write cannot have run while the lock was held"
    assert max(gaps) < 0.2, f"the event loop was blocked for {max(gaps):.3f} s"


async def test_a_lock_held_past_the_wait_is_unavailable_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process keeps the write lock longer than a write waits
    (``SCIMGATE_DB_LOCK_TIMEOUT``, 10 s by default; 0.3 s here): the write fails as
    DatabaseUnavailable, busy (a 503 over HTTP, to retry), not as sqlite3's
    OperationalError (a 500), and nothing of it is stored."""
    path = tmp_path / "held.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    db = Database(url, lock_timeout=0.3)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        start = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="busy: locked by another process") as e:
            async with db.write() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO organizations (id, name, created_at, updated_at) "
                        "VALUES ('o1', 'n', '2026-01-01', '2026-01-01')"
                    )
                )
        assert 0.3 <= time.monotonic() - start < 5
        assert e.value.busy and e.value.public == "the database is busy; retry later"
        holder.execute("COMMIT")
        async with db.write() as conn:  # the lock is free: writes work again
            await conn.execute(
                text(
                    "INSERT INTO organizations (id, name, created_at, updated_at) "
                    "VALUES ('o2', 'n', '2026-01-01', '2026-01-01')"
                )
            )
        async with db.read() as conn:
            ids = (await conn.execute(text("SELECT id FROM organizations"))).scalars().all()
    finally:
        await db.dispose()
        holder.close()
    assert ids == ["o2"]
