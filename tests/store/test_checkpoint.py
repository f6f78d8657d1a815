"""The server checkpoints SQLite's write-ahead log from a background thread, never inside
a request's COMMIT, and leaves an empty log when it stops."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

from sqlalchemy import text

from scimgate.store.checkpoint import INTERVAL_S
from scimgate.store.engine import Database
from scimgate.store.migrate import upgrade

_INSERT = text(
    "INSERT INTO organizations (id, name, created_at, updated_at) "
    "VALUES (:id, :name, '2026-01-01', '2026-01-01')"
)


def _rows_in_main_file(path: Path) -> int:
    """Rows in the database file itself, ignoring the log (``immutable=1``)."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM organizations").fetchone()[0])
    finally:
        conn.close()


def _log_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def _write(db: Database, n: int) -> None:
    for i in range(n):
        async with db.write() as conn:
            await conn.execute(_INSERT, {"id": uuid.uuid4().hex, "name": f"org {i}"})


async def test_commits_do_not_checkpoint_and_the_thread_does(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}", background_checkpoints=True)
    try:
        async with db.read() as conn:
            auto = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
        assert auto == 0, "request connections must not checkpoint inside COMMIT"
        await _write(db, 300)
        for _ in range(40):
            if _rows_in_main_file(path) == 300:
                break
            await asyncio.sleep(INTERVAL_S / 2)
        assert _rows_in_main_file(path) == 300, "the background checkpoint copied the log"
    finally:
        await db.dispose()
    assert _log_size(path) == 0, "stopping leaves an empty log"
    assert _rows_in_main_file(path) == 300


async def test_without_background_checkpoints_sqlite_checkpoints_itself(tmp_path: Path) -> None:
    """CLI commands and tools keep SQLite's automatic checkpoints."""
    path = tmp_path / "auto.db"
    upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    try:
        async with db.read() as conn:
            auto = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
        assert auto == 1000
        await _write(db, 5)
    finally:
        await db.dispose()
    assert _rows_in_main_file(path) == 5
