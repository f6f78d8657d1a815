"""Shared fixtures: a fresh, migrated database per test module on SQLite and PostgreSQL.

Every storage test takes ``database_url`` and so runs once per backend. PostgreSQL tests
create a uniquely named database on the server given by ``SCIMGATE_TEST_PG`` (default: the
local server, trust auth) and drop it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from scimgate.store import simple_query
from scimgate.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "SCIMGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


def _create_pg_database() -> str:
    name = f"scimgate_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return (
        make_url(PG_ADMIN_URL)
        .set(drivername="postgresql", database=name)
        .render_as_string(hide_password=False)
    )


def _drop_pg_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a new, migrated, empty database of the given backend."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'scimgate.db'}"
        upgrade(url)
        yield url
        return
    url = _create_pg_database()
    try:
        upgrade(url)
        yield url
    finally:
        _drop_pg_database(url)


@pytest.fixture(params=BACKENDS, scope="module")
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh migrated database, once per backend, shared by one test module."""
    yield from fresh_database(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A running ``scimgate serve`` on the module's database (one per backend)."""
    from tests.live import start_server

    # Webhook tests run their own workers against this database; the server's in-process
    # worker is covered by tests/webhooks/test_in_server.py with its own server.
    env = {"SCIMGATE_WEBHOOK_WORKER": "false"}
    yield from start_server(database_url, tmp_path_factory.mktemp("server"), env)


@pytest.fixture()
def directory(server: LiveServer) -> Directory:
    """A fresh Entra directory (own organization, own token) on the live server."""
    return server.new_directory("entra")


if TYPE_CHECKING:
    from tests.live import Directory, LiveServer


@pytest.fixture()
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL of every message sent (one round trip each: psycopg's async cursors, and
    ``store/simple_query.py``), but a connection's one-time ``PREPARE`` of a statement
    (see ``store/literals.py``)."""
    sent: list[str] = []
    for cls in (psycopg.AsyncCursor, psycopg.AsyncClientCursor):
        if "execute" not in vars(cls):
            continue  # inherited: wrapped once, on its own class
        original = cls.execute

        async def execute(self: Any, query: Any, *args: Any, _o: Any = original, **kw: Any) -> Any:
            sent.append(str(query))
            return await _o(self, query, *args, **kw)

        monkeypatch.setattr(cls, "execute", execute)
    run = simple_query.run

    async def simple(driver: Any, sql: str, loader: Any) -> Any:
        if not sql.startswith("PREPARE "):
            sent.append(sql)
        return await run(driver, sql, loader)

    monkeypatch.setattr(simple_query, "run", simple)
    yield sent
