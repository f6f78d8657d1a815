"""scimgate behind a real PgBouncer in transaction pooling mode (docs/deployment.md,
"PgBouncer").

The database is created and migrated directly on PostgreSQL, as the docs say (migrations
take a session-level advisory lock). Everything else reaches it only through PgBouncer:
two ``scimgate serve`` processes, the CLI and a ``scimgate worker`` process. PgBouncer
gets POOL_SIZE server connections for the database, far fewer than the clients that
scimgate's pools open, so transactions of different requests and processes run on
shared server connections.

The whole Entra lifecycle and concurrency suites (test_entra_lifecycle.py and
test_concurrency.py) run here unchanged against the pooled server, through the
``server`` fixture below. The tests defined here add what pooling could break:
races between two processes, the event feed, the webhook worker, and proof that the
server connections really were shared. PgBouncer is installed by .ci/run; without it,
this module is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook

from tests.conftest import PG_ADMIN_URL, fresh_database
from tests.integration import test_concurrency, test_entra_lifecycle
from tests.integration.helpers import (
    assert_scim_error,
    create_group,
    create_user,
    ids,
    member_ids,
    patch_body,
    patch_ok,
    search,
    user_body,
)
from tests.integration.test_concurrency import Request, run_together
from tests.live import Directory, LiveServer, free_port, start_server
from tests.webhooks.receiver import Receiver

# The Entra lifecycle and concurrency suites run here as they are, on the pooled server.
globals().update(
    {
        name: test
        for suite in (test_entra_lifecycle, test_concurrency)
        for name, test in vars(suite).items()
        if name.startswith("test_")
    }
)

POOL_SIZE = 5
CLIENT_POOL_SIZE = 20  # per serve process: four times PgBouncer's server connections
PGBOUNCER_SETTINGS = {
    "pool_mode": "transaction",
    # Server connections per database and user: fewer than scimgate's clients.
    "default_pool_size": str(POOL_SIZE),
    "reserve_pool_size": "0",
    # Every scimgate process keeps up to SCIMGATE_DB_POOL_SIZE client connections.
    "max_client_conn": "200",
    # A client that cannot get a server connection fails fast rather than hanging the
    # suite (the default is 120 s).
    "query_wait_timeout": "15",
    # No ignore_startup_parameters: psycopg sends none that PgBouncer refuses.
}


def _pgbouncer_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found is not None:
        return found
    return "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None


@dataclass
class PgBouncer:
    url: str
    """The database through PgBouncer: all that scimgate is given."""
    direct_url: str
    port: int
    user: str
    log_path: Path

    @property
    def database(self) -> str:
        return make_url(self.direct_url).database or ""

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` on the admin console, which speaks only the simple query
        protocol (hence the client-side cursor)."""
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            dbname="pgbouncer",
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,
        ) as conn:
            return conn.cursor(row_factory=dict_row).execute(f"SHOW {what}").fetchall()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _ini(direct_url: str, port: int, tmp: Path) -> Path:
    direct = make_url(direct_url)
    user = direct.username or "postgres"
    userlist = tmp / "userlist.txt"
    userlist.write_text(f'"{user}" "{direct.password or ""}"\n')
    lines = [
        "[databases]",
        f"{direct.database} = host={direct.host} port={direct.port or 5432} "
        f"dbname={direct.database}",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {userlist}",
        f"admin_users = {user}",
        "logfile =",  # stderr, into the log below
        "pidfile =",
        *(f"{key} = {value}" for key, value in PGBOUNCER_SETTINGS.items()),
    ]
    ini = tmp / "pgbouncer.ini"
    ini.write_text("\n".join(lines) + "\n")
    return ini


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL if it has not exited within 20 s; the exit code."""
    proc.terminate()
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@contextmanager
def _running_pgbouncer(binary: str, direct_url: str, tmp: Path) -> Iterator[PgBouncer]:
    port = free_port()
    ini = _ini(direct_url, port, tmp)
    # PgBouncer will not run as root (CI): -u drops to another user once it has read
    # its files. It logs to stderr, which stays open across the switch.
    run_as = ["-u", "nobody"] if os.geteuid() == 0 else []
    log_path = tmp / "pgbouncer.log"
    url = make_url(direct_url).set(drivername="postgresql", host="127.0.0.1", port=port)
    with log_path.open("wb") as log:
        proc = subprocess.Popen([binary, *run_as, str(ini)], stdout=log, stderr=subprocess.STDOUT)
        pooler = PgBouncer(
            url.render_as_string(hide_password=False),
            direct_url,
            port,
            make_url(direct_url).username or "postgres",
            log_path,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"pgbouncer exited early:\n{pooler.log()}")
                try:
                    pooler.show("VERSION")
                    break
                except psycopg.OperationalError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"pgbouncer did not start:\n{pooler.log()}") from None
                    time.sleep(0.05)
            yield pooler
        finally:
            _stop(proc)


@pytest.fixture(scope="module")
def pgbouncer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgBouncer]:
    """A fresh database, migrated directly, and a PgBouncer in front of it."""
    binary = _pgbouncer_binary()
    if binary is None:
        pytest.skip("pgbouncer is not installed (.ci/run installs it: apt-get install pgbouncer)")
    tmp = tmp_path_factory.mktemp("pgbouncer")
    with (
        contextmanager(fresh_database)("postgresql", tmp) as direct_url,
        _running_pgbouncer(binary, direct_url, tmp) as pooler,
    ):
        yield pooler


@pytest.fixture(scope="module", autouse=True)
def _no_prepared_statements() -> Iterator[None]:
    """As docs/deployment.md says for transaction mode: every process of this module (the
    servers, the worker, the in-process CLI) runs without server-side prepared
    statements, except where a test says otherwise."""
    name = "SCIMGATE_PG_PREPARED_STATEMENTS"
    before = os.environ.get(name)
    os.environ[name] = "false"
    yield
    if before is None:
        del os.environ[name]
    else:
        os.environ[name] = before


@pytest.fixture(scope="module")
def servers(
    pgbouncer: PgBouncer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two ``scimgate serve`` processes on the pooled URL (their CLI goes through it too).
    Webhooks are left to the worker process of test_worker_process_delivers_webhooks."""
    env = {
        "SCIMGATE_WEBHOOK_WORKER": "false",
        "SCIMGATE_WEBHOOK_ALLOW_PRIVATE": "true",
        # More client connections than PgBouncer's server ones, whatever the host's cores.
        "SCIMGATE_DB_POOL_SIZE": str(CLIENT_POOL_SIZE),
    }
    with ExitStack() as stack:
        a, b = (
            stack.enter_context(
                contextmanager(start_server)(pgbouncer.url, tmp_path_factory.mktemp("srv"), env)
            )
            for _ in range(2)
        )
        yield a, b


@pytest.fixture(scope="module")
def server(servers: tuple[LiveServer, LiveServer]) -> LiveServer:
    """The server of the imported suites (conftest's ``directory`` fixture uses it)."""
    return servers[0]


def _on(server: LiveServer, directory: Directory, path: str) -> str:
    """The URL of ``path`` in ``directory`` on ``server`` (any of the two processes)."""
    return f"{server.base_url}/scim/v2/{directory.id}{path}"


# -- races between two processes ------------------------------------------------------------


def test_races_across_two_processes(servers: tuple[LiveServer, LiveServer]) -> None:
    """The suites above race within one process; here the racers are split between two
    processes whose transactions interleave on PgBouncer's shared connections."""
    a, b = servers
    directory = a.new_directory()
    tag = uuid.uuid4().hex[:10]
    spellings = [f"duo.{tag}@contoso.com", f"Duo.{tag}@Contoso.com", f"DUO.{tag}@CONTOSO.COM"]

    def post(i: int) -> Request:
        url = _on(servers[i % 2], directory, "/Users")
        body = user_body(userName=spellings[i % 3])
        return lambda client: client.post(url, json=body)

    responses = run_together(directory, [post(i) for i in range(20)])
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 19}, [
        (r.status_code, r.text[:200]) for r in responses
    ]
    for response in responses:
        if response.status_code == 409:
            assert_scim_error(response, 409, "uniqueness")
    [winner] = [r.json()["id"] for r in responses if r.status_code == 201]
    found = search(directory, "/Users", filter=f'userName eq "DUO.{tag}@contoso.com"')
    assert ids(found) == [winner]

    users = [create_user(directory)["id"] for _ in range(20)]
    gid = create_group(directory)["id"]

    def add(i: int) -> Request:
        url = _on(servers[i % 2], directory, f"/Groups/{gid}")
        body = patch_body({"op": "add", "path": "members", "value": [{"value": users[i]}]})
        return lambda client: client.patch(url, json=body)

    responses = run_together(directory, [add(i) for i in range(20)])
    assert all(r.status_code in (200, 204) for r in responses), [r.text[:300] for r in responses]
    assert member_ids(directory, gid) == set(users)
    # Read-after-write across processes: B sees at once what A's requests committed.
    on_b = directory.client.get(_on(b, directory, f"/Groups/{gid}"))
    assert on_b.status_code == 200, on_b.text
    assert {m["value"] for m in on_b.json()["members"]} == set(users)


# -- the event feed -------------------------------------------------------------------------


def _api(server: LiveServer) -> httpx.Client:
    key = server.cli("api-key", "create", "--name", f"pgbouncer-{uuid.uuid4().hex[:6]}")["key"]
    client = httpx.Client(
        base_url=f"{server.base_url}/api/v1", headers={"Authorization": f"Bearer {key}"}
    )
    server.clients.append(client)
    return client


def _feed(api: httpx.Client, want: int, **params: Any) -> list[dict[str, Any]]:
    """Read the event feed from the start until ``want`` events came (an event is served
    once every older transaction has ended, so a fresh one may take a moment)."""
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    deadline = time.monotonic() + 20
    while len(seen) < want and time.monotonic() < deadline:
        page = api.get("/events", params={**params, **({"after": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        seen.extend(page.json()["data"])
        cursor = page.json()["next_cursor"]
        if not page.json()["data"]:
            time.sleep(0.05)
    return seen


def _subject(event: dict[str, Any]) -> tuple[str, str]:
    data = event["data"]
    if "member" in data:
        return event["type"], f"{data['group']['id']}/{data['member']['id']}"
    return event["type"], (data.get("user") or data["group"])["id"]


def test_event_feed_records_each_change_in_commit_order(
    servers: tuple[LiveServer, LiveServer],
) -> None:
    """Each SCIM write records its events in its own transaction; the feed (read through
    PgBouncer, on the other process) lists them once each, in commit order."""
    a, b = servers
    directory = a.new_directory()
    u1 = create_user(directory)["id"]
    created_on_b = directory.client.post(_on(b, directory, "/Users"), json=user_body())
    assert created_on_b.status_code == 201, created_on_b.text
    u2 = created_on_b.json()["id"]
    gid = create_group(directory, members=[{"value": u1}])["id"]
    patch_ok(directory, f"/Users/{u2}", {"op": "replace", "path": "title", "value": "Chief"})
    patch_ok(directory, f"/Users/{u2}", {"op": "replace", "path": "active", "value": False})
    patch_ok(
        directory, f"/Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": u2}]}
    )
    patch_ok(directory, f"/Groups/{gid}", {"op": "remove", "path": f'members[value eq "{u1}"]'})
    assert directory.client.delete(_on(b, directory, f"/Users/{u1}")).status_code == 204
    assert directory.client.delete(directory.url(f"/Groups/{gid}")).status_code == 204
    expected = [
        ("user.created", u1),
        ("user.created", u2),
        ("group.created", gid),
        ("group.member_added", f"{gid}/{u1}"),
        ("user.updated", u2),
        ("user.deactivated", u2),
        ("group.member_added", f"{gid}/{u2}"),
        ("group.member_removed", f"{gid}/{u1}"),
        ("user.deleted", u1),
        ("group.deleted", gid),
    ]
    events = _feed(_api(b), len(expected), directory_id=directory.id)
    assert [_subject(e) for e in events] == expected
    assert len({e["id"] for e in events}) == len(events)


# -- the webhook worker -----------------------------------------------------------------------


def test_worker_process_delivers_webhooks(
    servers: tuple[LiveServer, LiveServer], pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    """``scimgate worker`` claims and delivers through PgBouncer (FOR UPDATE SKIP LOCKED
    in its write transactions) and stops cleanly on SIGTERM."""
    a, _ = servers
    directory = a.new_directory()
    receiver = Receiver()
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "scimgate", "worker", "--database-url", pgbouncer.url],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SCIMGATE_WEBHOOK_ALLOW_PRIVATE": "true"},
        )
        try:
            secret = receiver.subscribe(_api(a), directory.organization_id, ["user.created"])
            users = [create_user(directory)["userName"] for _ in range(3)]
            deadline = time.monotonic() + 20
            while len(receiver.on("/hook")) < len(users) and time.monotonic() < deadline:
                assert worker.poll() is None, log_path.read_text()
                time.sleep(0.05)
            payloads = [Webhook(secret).verify(h.body, h.headers) for h in receiver.on("/hook")]
            assert sorted(p["data"]["user"]["username"] for p in payloads) == sorted(users), (
                log_path.read_text()
            )
        finally:
            receiver.close()
            code = _stop(worker)
    assert code == 0, log_path.read_text()
    assert "Traceback" not in log_path.read_text()


# -- what PgBouncer saw -----------------------------------------------------------------------


def test_server_connections_were_shared(
    servers: tuple[LiveServer, LiveServer], pgbouncer: PgBouncer
) -> None:
    """After 40 requests at once from both processes, PgBouncer has more clients than
    server connections, and PostgreSQL at most POOL_SIZE backends on the database
    (PgBouncer keeps idle server connections, so that is the most it opened)."""
    a, _ = servers
    directory = a.new_directory()
    uid = create_user(directory)["id"]

    def get(i: int) -> Request:
        url = _on(servers[i % 2], directory, f"/Users/{uid}")
        return lambda client: client.get(url)

    responses = run_together(directory, [get(i) for i in range(40)])
    assert [r.status_code for r in responses] == [200] * 40

    [pool] = [p for p in pgbouncer.show("POOLS") if p["database"] == pgbouncer.database]
    assert pool["pool_mode"] == "transaction"
    clients = [c for c in pgbouncer.show("CLIENTS") if c["database"] == pgbouncer.database]
    assert len(clients) > POOL_SIZE, clients
    admin = create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            backends = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"),
                {"d": pgbouncer.database},
            ).scalar_one()
    finally:
        admin.dispose()
    assert 0 < backends <= POOL_SIZE
    [stats] = [s for s in pgbouncer.show("STATS") if s["database"] == pgbouncer.database]
    assert stats["total_xact_count"] > 40


def test_control_server_side_prepared_statements_break_here(pgbouncer: PgBouncer) -> None:
    """The control: this PgBouncer really hands one server connection to several clients,
    so what scimgate's engine turns off (psycopg's prepare_threshold) fails here."""
    with (
        psycopg.connect(pgbouncer.url, autocommit=True, prepare_threshold=0) as one,
        psycopg.connect(pgbouncer.url, autocommit=True, prepare_threshold=0) as two,
        pytest.raises(
            (psycopg.errors.DuplicatePreparedStatement, psycopg.errors.InvalidSqlStatementName)
        ),
    ):
        for i in range(20):
            (one, two)[i % 2].execute(f"SELECT {i}")


def test_nothing_went_wrong_in_the_logs(
    servers: tuple[LiveServer, LiveServer], pgbouncer: PgBouncer
) -> None:
    for server in servers:
        assert server.process.poll() is None
        assert "Traceback" not in server.log(), server.log()
    errors = [
        line
        for line in pgbouncer.log().splitlines()
        if " ERROR " in line or " WARNING " in line or " FATAL " in line
    ]
    assert errors == [], "\n".join(errors)


def test_prepared_statements_left_on_turn_themselves_off(
    pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    """A server started without the setting behind transaction pooling: its first
    statement missing (or already there) on a shared server session turns preparing off
    for the process with a warning that names the setting, the failed read or write is
    run again, and every request of a concurrent burst succeeds."""
    env = {
        "SCIMGATE_PG_PREPARED_STATEMENTS": "true",
        "SCIMGATE_WEBHOOK_WORKER": "false",
        "SCIMGATE_DB_POOL_SIZE": str(CLIENT_POOL_SIZE),
    }
    with contextmanager(start_server)(pgbouncer.url, tmp_path, env) as server:
        directory = server.new_directory()

        def provision(n: int) -> list[int]:
            name = f"pooled.{n}.{uuid.uuid4().hex[:8]}@contoso.com"
            found = directory.client.get(
                directory.url("/Users"), params={"filter": f'userName eq "{name}"'}
            )
            created = directory.client.post(directory.url("/Users"), json=user_body(userName=name))
            got = directory.client.get(directory.url(f"/Users/{created.json().get('id')}"))
            return [found.status_code, created.status_code, got.status_code]

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(provision, range(48)))
        assert statuses == [[200, 201, 200]] * 48, server.log()
        assert "SCIMGATE_PG_PREPARED_STATEMENTS=false" in server.log()
        assert "Traceback" not in server.log()
