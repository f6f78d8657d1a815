"""Bring a database to the latest schema, safely when several processes start at once.

PostgreSQL: the upgrade runs under a session-level advisory lock, so concurrent starters
queue and the later ones find nothing to do. SQLite: an exclusive file lock beside the
database file does the same for processes on one host (SQLite is single-host anyway).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from scimgate.store.engine import configure_sqlite, sync_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x5C1A6A7E  # arbitrary, constant: "scimgate migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


@contextmanager
def _file_lock(db_path: str) -> Iterator[None]:
    lock_path = f"{db_path}.lock"
    Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(database_url: str) -> None:
    """Upgrade to head; a no-op (one cheap query) when already there."""
    url = sync_url(database_url)
    engine = create_engine(url, poolclass=NullPool)
    is_sqlite = url.get_backend_name() == "sqlite"
    if is_sqlite:
        configure_sqlite(engine)
    cfg = _config()
    head = head_revision()
    try:
        if is_sqlite:
            db_path = url.database or ""
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            with _file_lock(db_path or "scimgate-memory"), engine.connect() as conn:
                if _current(conn) != head:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                    conn.commit()
        else:
            with engine.connect() as conn:
                current = _current(conn)
                conn.commit()
                if current == head:
                    # The common case: one read, no lock (also safe behind PgBouncer in
                    # transaction mode, where a session lock would stick to a backend).
                    return
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
                try:
                    if _current(conn) != head:
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, "head")
                        conn.commit()
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                    conn.commit()
    finally:
        engine.dispose()
