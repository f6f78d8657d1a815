"""Hot statements must probe indexes, not walk a directory: on SQLite before ANALYZE (a
fresh production database), ``directory_id = ? AND id IN (…)`` walked every user of the
directory per member PATCH: 100,000 index entries for a 100,000-user Entra tenant."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.dialects import sqlite as sqlite_dialect

from scimgate.directory.groups import _GROUPS_ANY, _GROUPS_IN, _USERS_ANY, _USERS_IN
from scimgate.store.engine import sync_url
from scimgate.store.migrate import upgrade
from scimgate.store.prepared import Prepared
from tests.conftest import fresh_database


def _plan(conn: sqlite3.Connection, statement: Prepared, ids: int) -> str:
    compiled = statement.compiled(sqlite_dialect.dialect())
    listed = json.dumps([f"id-{i}" for i in range(ids)])
    rows = conn.execute("EXPLAIN QUERY PLAN " + compiled.sql, ["g", listed])
    return "\n".join(str(row[3]) for row in rows)


@pytest.mark.parametrize("statement", [_USERS_IN, _GROUPS_IN], ids=["users", "groups"])
def test_member_lookup_probes_the_primary_key(tmp_path: Path, statement: Prepared) -> None:
    """The ids come as one JSON array (``json_each``): SQLite must still probe the primary
    key once per id rather than scan the table and test each row against the list."""
    path = tmp_path / "plans.db"
    upgrade(f"sqlite:///{path}")  # fresh schema, no statistics: what a new install has
    with sqlite3.connect(path) as conn:
        plan = _plan(conn, statement, 10)
    assert "autoindex" in plan and "(id=?)" in plan, plan
    assert "SCAN users" not in plan and "SCAN groups" not in plan, plan
    assert "ix_users_directory" not in plan and "ix_groups_directory" not in plan, plan


@pytest.mark.parametrize("statement", [_USERS_ANY, _GROUPS_ANY], ids=["users", "groups"])
def test_member_lookup_on_postgresql_can_probe_the_primary_key(
    tmp_path: Path, statement: Prepared
) -> None:
    """``id = ANY(:ids)`` must stay indexable (no cast on the column): with sequential
    scans priced out, the plan probes the primary key."""
    from sqlalchemy.dialects import postgresql

    database = fresh_database("postgresql", tmp_path)
    url = next(database)
    compiled = statement.compiled(postgresql.psycopg.dialect())
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            rows = conn.exec_driver_sql(
                "EXPLAIN " + compiled.sql, {"group_id": "g", "ids": ["a", "b", "c"]}
            )
            plan = "\n".join(row[0] for row in rows)
    finally:
        engine.dispose()
        database.close()  # drops the database
    table = "users" if statement is _USERS_ANY else "groups"
    assert f"pk_{table}" in plan and f"Seq Scan on {table}" not in plan, plan
