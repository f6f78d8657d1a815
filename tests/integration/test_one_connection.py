"""A server with one PostgreSQL connection (``SCIMGATE_DB_POOL_SIZE=1``) serves everything.

The pool is small by default (three connections per core), and a request beyond it waits
for a connection another request returns. A unit of work that needed a second connection
while holding one would deadlock once every connection was held that way. With one
connection, any such unit deadlocks at once: the whole Entra lifecycle and concurrency
suites (test_entra_lifecycle.py and test_concurrency.py) run here unchanged, with the
in-process webhook worker taking its turns on the same connection, and must pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import fresh_database
from tests.integration import test_concurrency, test_entra_lifecycle
from tests.live import LiveServer, start_server

globals().update(
    {
        name: test
        for suite in (test_entra_lifecycle, test_concurrency)
        for name, test in vars(suite).items()
        if name.startswith("test_")
    }
)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from fresh_database("postgresql", tmp_path_factory.mktemp("pg"))


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"SCIMGATE_DB_POOL_SIZE": "1", "SCIMGATE_WEBHOOK_WORKER": "true"}
    yield from start_server(database_url, tmp_path_factory.mktemp("one"), env)


def test_the_server_held_one_connection(server: LiveServer) -> None:
    """The control: the suites above really ran on one PostgreSQL session."""
    directory = server.new_directory()
    assert directory.client.get(directory.url("/Users")).status_code == 200
    with psycopg.connect(server.database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None and row[0] == 1, row
