"""Every command migrates first; several processes starting at once on one database must
all succeed and leave it at the head revision."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from scimgate.store.engine import sync_url
from scimgate.store.migrate import head_revision
from tests.conftest import BACKENDS, _create_pg_database, _drop_pg_database


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
        return
    url = _create_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(url)


def test_concurrent_starts_migrate_once_and_all_succeed(empty_database: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "scimgate", "migrate", "--database-url", empty_database],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], results
    engine = create_engine(sync_url(empty_database))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == (
            head_revision()
        )
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
    engine.dispose()
