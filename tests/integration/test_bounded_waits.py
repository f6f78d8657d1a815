"""Waits on the database are bounded: a request gets a 503 with ``Retry-After`` in time.

A lock held elsewhere (an operator's open transaction, a migration, another process on a
SQLite file), a statement that runs too long, or a process whose every PostgreSQL
connection is taken by such requests: without bounds, the IdP's requests hang until it
gives up (Entra waits ~60 s), and on PostgreSQL one tenant's stuck lock holds the
connections every other tenant of the process needs. With them, each request gets a
SCIM 503 ("the database is busy") within its bound, rolls back, and the same request
succeeds once the lock is gone. Real servers, real locks, real HTTP.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import fresh_database
from tests.integration.helpers import create_group, create_user, patch_body
from tests.live import Directory, LiveServer, start_server

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def _locked_elsewhere(database_url: str, group_id: str) -> Iterator[None]:
    """Another client holds a lock a member PATCH of ``group_id`` needs: the group's row
    on PostgreSQL, the file's write lock on SQLite."""
    if database_url.startswith("sqlite"):
        holder = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with psycopg.connect(_libpq(database_url)) as holder:
        holder.execute("SELECT 1 FROM groups WHERE id = %s FOR UPDATE", (group_id,))
        yield
        holder.rollback()


def _add(directory: Directory, group_id: str, user_id: str) -> httpx.Response:
    return directory.client.patch(
        directory.url(f"/Groups/{group_id}"),
        json=patch_body({"op": "add", "path": "members", "value": [{"value": user_id}]}),
    )


def _members(directory: Directory, group_id: str) -> list[str]:
    got = directory.client.get(directory.url(f"/Groups/{group_id}"))
    assert got.status_code == 200, got.text
    return [m["value"] for m in got.json().get("members", [])]


def _assert_busy(response: httpx.Response, *, within: tuple[float, float]) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == "503"
    assert body["detail"] == "the database is busy; retry later"
    low, high = within
    assert low <= response.elapsed.total_seconds() < high, response.elapsed


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"SCIMGATE_WEBHOOK_WORKER": "false", "SCIMGATE_DB_LOCK_TIMEOUT": "1"}
    with contextmanager(start_server)(database_url, tmp_path_factory.mktemp("srv"), env) as srv:
        yield srv


def test_a_lock_held_elsewhere_gets_503_within_the_lock_timeout_and_changes_nothing(
    server: LiveServer,
) -> None:
    directory = server.new_directory()
    user = create_user(directory)
    group = create_group(directory)
    with _locked_elsewhere(server.database_url, group["id"]):
        _assert_busy(_add(directory, group["id"], user["id"]), within=(0.9, 4))
        # Reads wait for no lock: the IdP's matching goes on meanwhile.
        assert directory.client.get(directory.url(f"/Users/{user['id']}")).status_code == 200
    assert _members(directory, group["id"]) == [], "the refused PATCH must store nothing"
    assert _add(directory, group["id"], user["id"]).status_code in (200, 204)
    assert _members(directory, group["id"]) == [user["id"]]
    log = server.log()
    assert "the database is busy" in log
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from fresh_database("postgresql", tmp_path_factory.mktemp("pg"))


@pytest.fixture(scope="module")
def one_connection(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One PostgreSQL connection, no lock timeout: a request that waits on a lock holds
    the process's only connection until its statement timeout (3 s)."""
    env = {
        "SCIMGATE_WEBHOOK_WORKER": "false",
        "SCIMGATE_DB_POOL_SIZE": "1",
        "SCIMGATE_DB_LOCK_TIMEOUT": "0",
        "SCIMGATE_DB_STATEMENT_TIMEOUT": "3",
        "SCIMGATE_DB_POOL_TIMEOUT": "1",
    }
    with contextmanager(start_server)(pg_url, tmp_path_factory.mktemp("one"), env) as srv:
        yield srv


def test_one_tenants_stuck_lock_holds_other_tenants_back_only_for_the_pool_timeout(
    one_connection: LiveServer,
) -> None:
    server = one_connection
    stuck, other = server.new_directory(), server.new_directory()
    user, group = create_user(stuck), create_group(stuck)
    neighbour = create_user(other)
    key = server.cli("api-key", "create", "--name", "backend")["key"]
    api = f"{server.base_url}/api/v1/organizations"
    with _locked_elsewhere(server.database_url, group["id"]), ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_add, stuck, group["id"], user["id"])
        time.sleep(0.5)  # it holds the only connection, waiting for the row lock
        _assert_busy(other.client.get(other.url(f"/Users/{neighbour['id']}")), within=(0.9, 2.9))
        refused = httpx.get(api, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        assert refused.json()["error"] == {
            "code": "database_unavailable",
            "message": "the database is busy; retry later",
        }
        # The stuck request itself ends at the statement timeout, lock or no lock.
        _assert_busy(waiting.result(timeout=30), within=(2.9, 8))
    assert _members(stuck, group["id"]) == []
    assert other.client.get(other.url(f"/Users/{neighbour['id']}")).status_code == 200
    assert _add(stuck, group["id"], user["id"]).status_code in (200, 204)
    assert _members(stuck, group["id"]) == [user["id"]]
    log = server.log()
    assert "connections of this process stayed in use for 1 s" in log
    assert "statement timeout" in log
    assert "Traceback" not in log, log
