"""A server on PostgreSQL opens its pool before it answers anything, each session with the
hot statements prepared and planned (``SCIMGATE_PG_WARM_SESSIONS``, on by default), and
an Entra burst then runs on those sessions without opening or preparing more. Off, the
sessions are opened by the requests that need them."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from tests.conftest import fresh_database
from tests.live import LiveServer, start_server

_SESSIONS = (
    "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from fresh_database("postgresql", tmp_path_factory.mktemp("pg"))


def _server(database_url: str, tmp: Path, warm: bool) -> Iterator[LiveServer]:
    env = {
        "SCIMGATE_DB_POOL_SIZE": "3",
        "SCIMGATE_WEBHOOK_WORKER": "false",
        "SCIMGATE_PG_WARM_SESSIONS": "true" if warm else "false",
    }
    yield from start_server(database_url, tmp, env)


def _sessions(database_url: str) -> list[str]:
    """The last statement of each session the server holds."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return [row[0] for row in conn.execute(_SESSIONS)]


def test_the_pool_is_open_and_warm_before_the_first_request(
    database_url: str, tmp_path: Path
) -> None:
    server = _server(database_url, tmp_path, warm=True)
    live = next(server)
    try:
        sessions = _sessions(database_url)  # only /healthz has been asked (SELECT 1)
        assert len(sessions) == 3
        warmed = [q for q in sessions if q.startswith("EXPLAIN EXECUTE scimgate_")]
        assert len(warmed) >= 2, sessions

        directory = live.new_directory()

        def create(n: int) -> str:
            body = {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": f"warm{n}@example.com",
                "active": True,
            }
            found = directory.client.get(
                directory.url("/Users"), params={"filter": f'userName eq "warm{n}@example.com"'}
            )
            assert found.status_code == 200 and found.json()["totalResults"] == 0
            created = directory.client.post(directory.url("/Users"), json=body)
            assert created.status_code == 201, created.text
            return str(created.json()["id"])

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(create, range(24)))
        group = directory.client.post(
            directory.url("/Groups"),
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "W"},
        )
        assert group.status_code == 201, group.text
        patch = directory.client.patch(
            directory.url(f"/Groups/{group.json()['id']}"),
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Add", "path": "members", "value": [{"value": i} for i in ids]}
                ],
            },
        )
        assert patch.status_code == 204, patch.text
        members = directory.client.get(directory.url(f"/Groups/{group.json()['id']}"))
        assert len(members.json()["members"]) == 24

        assert len(_sessions(database_url)) == 3  # the burst opened none beyond the pool
        assert "prepared statements failed" not in live.log()  # none was prepared twice
    finally:
        server.close()


def test_with_warming_off_sessions_open_on_demand(database_url: str, tmp_path: Path) -> None:
    server = _server(database_url, tmp_path, warm=False)
    next(server)
    try:
        sessions = _sessions(database_url)
        assert len(sessions) == 1, sessions  # the one /healthz needed
        assert not sessions[0].startswith("EXPLAIN")
    finally:
        server.close()
