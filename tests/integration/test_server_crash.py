"""``kill -9`` of the SCIM server mid-provisioning loses no acknowledged write and leaves
nothing half done.

Eight provisioning lanes (as Entra runs several threads per job, half of them in each PATCH
dialect) each own a group and its users and send one request after another: creates,
department PATCHes, adds of up to ten members, one-member removals, deletes. The server
is killed with SIGKILL at a random moment while they run, then started again on the same
database, three times over. After each restart:

- every write the server answered is there: users with the department last acknowledged,
  deleted users gone, each group's members exactly those acknowledged;
- the one request of each lane that was in flight at the kill took effect entirely or not
  at all (ten members added, or none);
- nothing else exists (no user the lanes do not know of);
- the event log is in step with the data: replaying ``group.member_added``/``removed``
  gives each group's members, ``user.created``/``deleted`` the users, and each user's last
  event carries its department;
- on SQLite, ``PRAGMA integrity_check`` is ``ok``.

With ``--workers 2`` on PostgreSQL, one worker at a time is killed while the lanes go on:
each lane settles the request the dead worker took with it through the other worker (as
an IdP retries) and carries on, the supervisor starts a new worker, and the same checks
hold at the end.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from scimgate.store.engine import Database
from scimgate.store.tables import events
from tests.conftest import fresh_database
from tests.integration.helpers import (
    COMPLIANT,
    ENTERPRISE,
    LEGACY,
    SCIM_JSON,
    Dialect,
    group_body,
    patch_body,
    user_body,
)
from tests.live import Directory, start_server, worker_pids

ROUNDS = 3
LANES = 8
DEPARTMENT = f"{ENTERPRISE}:department"


@dataclass
class Pending:
    """The request a lane had sent when the server died: its outcome is unknown."""

    kind: str  # create | department | add | remove | delete
    user_ids: list[str] = field(default_factory=list)
    user_name: str = ""
    department: str = ""


@dataclass
class Lane:
    """One provisioning thread: its own group and users, one request at a time, and what
    the server acknowledged of them."""

    number: int
    dialect: Dialect
    group_id: str
    departments: dict[str, str] = field(default_factory=dict)  # live user id → department
    deleted: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    pending: Pending | None = None
    acknowledged: int = 0
    resumed: int = 0
    counter: int = 0
    failure: str | None = None

    def department(self) -> str:
        self.counter += 1
        return f"dept-{self.number}-{self.counter}"


class ServerGone(Exception):
    """The connection failed: the server was killed under the request."""


def _send(client: httpx.Client, method: str, url: str, body: Any, *expect: int) -> httpx.Response:
    try:
        response = client.request(method, url, json=body)
    except httpx.TransportError as exc:
        raise ServerGone from exc
    if response.status_code not in expect:
        raise AssertionError(f"{method} {url} → {response.status_code}: {response.text}")
    return response


def _step(lane: Lane, client: httpx.Client, base: str, rng: random.Random) -> None:
    """One request of the lane; its bookkeeping only once the answer is in."""
    d = lane.dialect
    url = f"{base}{{}}" + ("?aadOptscim062020" if d.flag else "")
    outside = [u for u in lane.departments if u not in lane.members]
    kind = (
        "create"
        if len(outside) < 10
        else rng.choice(
            ["create", "department", "department", "add", "add", "remove", "remove", "delete"]
        )
    )
    if kind == "remove" and not lane.members:
        kind = "add"
    if kind == "create":
        department = lane.department()
        body = user_body(**{ENTERPRISE: {"department": department}})
        lane.pending = Pending("create", user_name=body["userName"], department=department)
        created = _send(client, "POST", url.format("/Users"), body, 201).json()
        lane.departments[created["id"]] = department
    elif kind == "department":
        user_id = rng.choice(list(lane.departments))
        department = lane.department()
        lane.pending = Pending("department", [user_id], department=department)
        op = d.op("replace", DEPARTMENT, department)
        _send(client, "PATCH", url.format(f"/Users/{user_id}"), patch_body(op), 200, 204)
        lane.departments[user_id] = department
    elif kind == "add":
        ids = rng.sample(outside, min(10, len(outside)))
        lane.pending = Pending("add", ids)
        body = patch_body(d.add_members(*ids))
        _send(client, "PATCH", url.format(f"/Groups/{lane.group_id}"), body, 204)
        lane.members.update(ids)
    elif kind == "remove":
        user_id = rng.choice(sorted(lane.members))
        lane.pending = Pending("remove", [user_id])
        body = patch_body(*d.remove_members(user_id))
        _send(client, "PATCH", url.format(f"/Groups/{lane.group_id}"), body, 204)
        lane.members.discard(user_id)
    else:
        user_id = rng.choice(list(lane.departments))
        lane.pending = Pending("delete", [user_id])
        _send(client, "DELETE", url.format(f"/Users/{user_id}"), None, 204)
        del lane.departments[user_id]
        lane.deleted.add(user_id)
        lane.members.discard(user_id)
    lane.pending = None
    lane.acknowledged += 1


def _run_lane(
    lane: Lane, token: str, base: str, seed: float, stop: threading.Event | None = None
) -> None:
    """Send the lane's requests until the server dies; with ``stop``, settle the request
    a dead process took with it and go on (as an IdP retries) until ``stop`` is set, each
    request on a new connection (so that every worker gets a share of every lane)."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}
    if stop is not None:
        headers["Connection"] = "close"
    with httpx.Client(headers=headers, timeout=30) as client:
        try:
            while stop is None or not stop.is_set():
                try:
                    _step(lane, client, base, rng)
                except ServerGone:
                    if stop is None:
                        return
                    lane.resumed += 1
                    _settle_when_served(lane, client, base)
        except Exception as exc:  # the test thread reports it
            lane.failure = f"{type(exc).__name__}: {exc}"


def _settle_when_served(lane: Lane, client: httpx.Client, base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            _settle(lane, client, base)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _get(client: httpx.Client, url: str) -> httpx.Response:
    response = client.get(url)
    assert response.status_code in (200, 404), f"GET {url} → {response.status_code}"
    return response


def _department(resource: dict[str, Any]) -> str | None:
    value = (resource.get(ENTERPRISE) or {}).get("department")
    return value if isinstance(value, str) else None


def _settle(lane: Lane, client: httpx.Client, base: str) -> None:
    """Resolve the lane's in-flight request against what the restarted server holds: all
    of it happened, or none of it."""
    p = lane.pending
    if p is None:
        return
    members = _members(client, base, lane.group_id)
    if p.kind == "create":
        found = client.get(f"{base}/Users", params={"filter": f'userName eq "{p.user_name}"'})
        resources = found.json().get("Resources", [])
        assert len(resources) <= 1
        if resources:
            assert _department(resources[0]) == p.department
            lane.departments[resources[0]["id"]] = p.department
    elif p.kind == "department":
        (user_id,) = p.user_ids
        now = _department(_get(client, f"{base}/Users/{user_id}").json())
        assert now in (lane.departments[user_id], p.department), (now, p)
        lane.departments[user_id] = now or ""
    elif p.kind == "add":
        assert members in (lane.members, lane.members | set(p.user_ids)), "a half-done add"
        lane.members = members
    elif p.kind == "remove":
        assert members in (lane.members, lane.members - set(p.user_ids)), "a half-done remove"
        lane.members = members
    else:
        (user_id,) = p.user_ids
        if _get(client, f"{base}/Users/{user_id}").status_code == 404:
            del lane.departments[user_id]
            lane.deleted.add(user_id)
            assert members == lane.members - {user_id}, "a deleted user left a membership"
            lane.members = members
        else:
            assert members == lane.members
    lane.pending = None


def _members(client: httpx.Client, base: str, group_id: str) -> set[str]:
    group = client.get(f"{base}/Groups/{group_id}")
    assert group.status_code == 200, group.text
    values = [m["value"] for m in group.json().get("members") or []]
    assert len(values) == len(set(values))
    return set(values)


def _check_lane(lane: Lane, client: httpx.Client, base: str) -> None:
    assert _members(client, base, lane.group_id) == lane.members, f"lane {lane.number}"
    for user_id, department in lane.departments.items():
        response = _get(client, f"{base}/Users/{user_id}")
        assert response.status_code == 200, f"acknowledged user {user_id} lost"
        assert _department(response.json()) == department, f"user {user_id}'s department"
    for user_id in lane.deleted:
        assert _get(client, f"{base}/Users/{user_id}").status_code == 404


async def _event_log(database_url: str, directory_id: str) -> list[tuple[str, dict[str, Any]]]:
    db = Database(database_url, pool_size=1)
    try:
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(events.c.type, events.c.data)
                    .where(events.c.directory_id == directory_id)
                    .order_by(events.c.txid, events.c.seq)
                )
            ).all()
    finally:
        await db.dispose()
    return [(row.type, row.data) for row in rows]


def _check_events(lanes: list[Lane], log: list[tuple[str, dict[str, Any]]]) -> None:
    """Replay the log: it must give exactly the data the server holds."""
    members: dict[str, set[str]] = {lane.group_id: set() for lane in lanes}
    departments: dict[str, str | None] = {}
    for kind, data in log:
        if kind == "group.member_added":
            members[data["group"]["id"]].add(data["member"]["id"])
        elif kind == "group.member_removed":
            members[data["group"]["id"]].discard(data["member"]["id"])
        elif kind in ("user.created", "user.updated"):
            departments[data["user"]["id"]] = data["user"]["department"]
        elif kind == "user.deleted":
            departments.pop(data["user"]["id"])
    for lane in lanes:
        assert members[lane.group_id] == lane.members, f"lane {lane.number}'s member events"
    live = {u: d for lane in lanes for u, d in lane.departments.items()}
    assert departments == live, "user events out of step with the users"


def _lanes(directory: Directory) -> list[Lane]:
    return [
        Lane(
            n,
            (LEGACY, COMPLIANT)[n % 2],
            directory.client.post(directory.url("/Groups"), json=group_body()).json()["id"],
        )
        for n in range(LANES)
    ]


def _threads(
    lanes: list[Lane], directory: Directory, base: str, rng: random.Random, **kw: Any
) -> list[threading.Thread]:
    threads = [
        threading.Thread(
            target=_run_lane, args=(lane, directory.token, base, rng.random()), kwargs=kw
        )
        for lane in lanes
    ]
    for t in threads:
        t.start()
    return threads


def _join(threads: list[threading.Thread], lanes: list[Lane]) -> None:
    for t in threads:
        t.join(timeout=90)
        assert not t.is_alive()
    failures = [f"lane {lane.number}: {lane.failure}" for lane in lanes if lane.failure]
    assert not failures, failures


def _check_all(lanes: list[Lane], directory: Directory, base: str, database_url: str) -> None:
    """Settle every lane's in-flight request, then hold the data and the event log
    against what the lanes were told."""
    with httpx.Client(headers={"Authorization": f"Bearer {directory.token}"}, timeout=30) as c:
        for lane in lanes:
            _settle(lane, c, base)
        for lane in lanes:
            _check_lane(lane, c, base)
        total = c.get(f"{base}/Users", params={"count": 0}).json()["totalResults"]
        assert total == sum(len(lane.departments) for lane in lanes), "phantom users"
    _check_events(lanes, asyncio.run(_event_log(database_url, directory.id)))
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


ENV = {"SCIMGATE_WEBHOOK_WORKER": "false"}


def test_kill_9_mid_provisioning_loses_no_acknowledged_write(
    database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(20261206)
    run = start_server(database_url, tmp_path, ENV)
    server = next(run)
    directory: Directory = server.new_directory("entra")
    lanes = _lanes(directory)
    try:
        for _round in range(ROUNDS):
            threads = _threads(lanes, directory, f"{server.base_url}/scim/v2/{directory.id}", rng)
            threading.Event().wait(rng.uniform(0.6, 1.5))
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)
            _join(threads, lanes)
            run.close()
            run = start_server(database_url, tmp_path, ENV)
            server = next(run)
            _check_all(lanes, directory, f"{server.base_url}/scim/v2/{directory.id}", database_url)
        assert all(lane.acknowledged >= 5 for lane in lanes), [lane.acknowledged for lane in lanes]
    finally:
        run.close()


def test_kill_9_of_one_worker_of_two_loses_nothing_while_the_other_serves_on(
    tmp_path: Path,
) -> None:
    """``--workers 2`` on PostgreSQL: a worker killed under load takes its in-flight
    requests with it and nothing else; the lanes it served settle them through the other
    worker and go on, the supervisor starts a new worker, and the data and the event log
    end exactly as acknowledged."""
    rng = random.Random(6)
    for database_url in fresh_database("postgresql", tmp_path):
        run = start_server(database_url, tmp_path, ENV, args=["--workers", "2"])
        server = next(run)
        try:
            directory = server.new_directory("entra")
            lanes = _lanes(directory)
            base = f"{server.base_url}/scim/v2/{directory.id}"
            stop = threading.Event()
            threads = _threads(lanes, directory, base, rng, stop=stop)
            for _kill in range(ROUNDS):
                threading.Event().wait(rng.uniform(0.5, 1.0))
                workers = worker_pids(server.process.pid)
                assert len(workers) == 2, workers
                victim = rng.choice(workers)
                os.kill(victim, signal.SIGKILL)
                deadline = time.monotonic() + 30
                while victim in (now := worker_pids(server.process.pid)) or len(now) < 2:
                    assert time.monotonic() < deadline, f"no new worker after {victim}: {now}"
                    time.sleep(0.05)
            threading.Event().wait(0.5)
            stop.set()
            _join(threads, lanes)
            assert sum(lane.resumed for lane in lanes) >= 1, [lane.resumed for lane in lanes]
            _check_all(lanes, directory, base, database_url)
        finally:
            run.close()
