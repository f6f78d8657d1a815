"""PostgreSQL goes away under a running server and comes back (a real TCP link, cut).

While it is away, every request gets a 503 with ``Retry-After`` (a SCIM error on the SCIM
API, the management API's error shape there), quickly, with one warning line in the log
and no traceback: an IdP retries a 503, where a 500 reads as a bug and a 401 as a wrong
token (the token cannot be checked either). When it is back, the same server serves
again without a restart, and nothing written before the outage is lost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import fresh_database
from tests.integration.helpers import create_group, create_user, patch_body, user_body
from tests.live import LiveServer, start_server
from tests.tcp_proxy import TcpProxy, tcp_proxy


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TcpProxy, str]]:
    for url in fresh_database("postgresql", tmp_path_factory.mktemp("pg")):
        target = make_url(url)
        with tcp_proxy(target.host or "127.0.0.1", target.port or 5432) as p:
            yield p, target.set(port=p.port).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def server(
    proxy: tuple[TcpProxy, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    env = {"SCIMGATE_WEBHOOK_WORKER": "true"}  # it polls the database too
    with contextmanager(start_server)(proxy[1], tmp_path_factory.mktemp("srv"), env) as srv:
        yield srv


@contextmanager
def outage(proxy: TcpProxy) -> Iterator[None]:
    proxy.cut()
    try:
        yield
    finally:
        proxy.restore()


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.elapsed.total_seconds() < 5


def test_scim_requests_get_503_while_the_database_is_away_and_work_after(
    server: LiveServer, proxy: tuple[TcpProxy, str]
) -> None:
    directory = server.new_directory()
    before = create_user(directory)
    group = create_group(directory)
    wrong_token = httpx.Client(headers={"Authorization": "Bearer not-a-token"}, timeout=30)
    with outage(proxy[0]):
        responses = [
            directory.client.get(directory.url("/Users")),
            directory.client.get(directory.url(f"/Users/{before['id']}")),
            directory.client.post(directory.url("/Users"), json=user_body()),
            directory.client.patch(
                directory.url(f"/Groups/{group['id']}"),
                json=patch_body(
                    {"op": "add", "path": "members", "value": [{"value": before["id"]}]}
                ),
            ),
            directory.client.delete(directory.url(f"/Users/{before['id']}")),
            wrong_token.get(directory.url("/Users")),  # cannot be checked: not a 401
        ]
        for response in responses:
            _assert_unavailable(response)
            body = response.json()
            assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            assert body["status"] == "503"
            assert "database is unavailable" in body["detail"]
    wrong_token.close()
    # Back: the same server, the same connections' pool refilled.
    got = directory.client.get(directory.url(f"/Users/{before['id']}"))
    assert got.status_code == 200 and got.json()["userName"] == before["userName"]
    assert directory.client.post(directory.url("/Users"), json=user_body()).status_code == 201
    members = directory.client.patch(
        directory.url(f"/Groups/{group['id']}"),
        json=patch_body({"op": "add", "path": "members", "value": [{"value": before["id"]}]}),
    )
    assert members.status_code in (200, 204)
    listed = directory.client.get(directory.url("/Users")).json()
    assert listed["totalResults"] == 2
    log = server.log()
    assert "Traceback" not in log, log
    assert "the database is unavailable" in log


def test_a_database_restart_between_requests_costs_no_request(
    server: LiveServer, proxy: tuple[TcpProxy, str]
) -> None:
    """A cut while idle (a PostgreSQL restart between requests): every pooled connection
    is dead, and each says so on its socket; the next requests get new connections."""
    directory = server.new_directory()
    user = create_user(directory)
    with outage(proxy[0]):
        pass  # every pooled connection reset
    statuses = [
        directory.client.get(directory.url(f"/Users/{user['id']}")).status_code for _ in range(20)
    ]
    assert statuses == [200] * 20, statuses


def test_the_management_api_gets_503_while_the_database_is_away(
    server: LiveServer, proxy: tuple[TcpProxy, str]
) -> None:
    used = server.cli("api-key", "create", "--name", "backend")["key"]
    unseen = server.cli("api-key", "create", "--name", "other")["key"]
    api = f"{server.base_url}/api/v1/organizations"
    assert httpx.get(api, headers={"Authorization": f"Bearer {used}"}).status_code == 200
    with outage(proxy[0]):
        for key in (used, unseen, "scimgate_key_not_a_key"):
            response = httpx.get(api, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            _assert_unavailable(response)
            assert response.json()["error"]["code"] == "database_unavailable"
    for key in (used, unseen):
        assert httpx.get(api, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert "Traceback" not in server.log()


def test_the_webhook_worker_waits_the_outage_out(
    server: LiveServer, proxy: tuple[TcpProxy, str]
) -> None:
    """The in-process webhook worker polls every second: through an outage it logs a
    warning per failed poll (no traceback), backs off, and the server serves on."""
    directory = server.new_directory()
    with outage(proxy[0]):
        deadline = time.monotonic() + 10
        while "webhook worker: the database is unavailable" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
    assert "Traceback" not in server.log()
    statuses = [
        directory.client.post(directory.url("/Users"), json=user_body()).status_code
        for _ in range(12)
    ]
    assert statuses == [201] * 12, statuses
