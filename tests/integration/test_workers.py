"""``scimgate serve --workers 2`` on PostgreSQL: two worker processes behind one port,
both serving, with uniqueness and membership changes correct across them, under a lean
supervisor (the process that started them execs into uvicorn's, which never loads the
app)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from scimgate.settings import default_db_pool_size
from tests.conftest import fresh_database
from tests.integration.helpers import create_group, patch_body, search, user_body
from tests.live import LiveServer, start_server, worker_pids


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    for url in fresh_database("postgresql", tmp_path_factory.mktemp("pg")):
        yield from start_server(url, tmp_path_factory.mktemp("workers"), args=["--workers", "2"])


def test_two_workers_serve_behind_a_lean_supervisor(two_workers: LiveServer) -> None:
    supervisor = two_workers.process.pid
    workers = worker_pids(supervisor)
    assert len(workers) == 2, workers
    # The supervisor imports uvicorn only; a worker holds the whole app (~100 MiB).
    assert _rss_mib(supervisor) < 60, _rss_mib(supervisor)


def test_concurrent_writes_through_both_workers_stay_correct(two_workers: LiveServer) -> None:
    directory = two_workers.new_directory()
    body = user_body()
    with ThreadPoolExecutor(max_workers=16) as pool:
        # Fresh connections per request: the kernel spreads them over both workers.
        statuses = list(
            pool.map(
                lambda _: (
                    httpx.post(
                        directory.url("/Users"),
                        json=body,
                        headers=dict(directory.client.headers),
                        timeout=30,
                    ).status_code
                ),
                range(16),
            )
        )
    assert sorted(statuses) == [201] + [409] * 15, statuses
    users = [user_body() for _ in range(20)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(
            pool.map(
                lambda b: httpx.post(
                    directory.url("/Users"), json=b, headers=dict(directory.client.headers)
                ).json()["id"],
                users,
            )
        )
    group = create_group(directory)
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(
            pool.map(
                lambda uid: httpx.patch(
                    directory.url(f"/Groups/{group['id']}"),
                    json=patch_body({"op": "add", "path": "members", "value": [{"value": uid}]}),
                    headers=dict(directory.client.headers),
                    timeout=30,
                ).raise_for_status(),
                created,
            )
        )
    members = directory.client.get(directory.url(f"/Groups/{group['id']}")).json()["members"]
    assert sorted(m["value"] for m in members) == sorted(created)
    assert search(directory, "/Users")["totalResults"] == 21


def test_workers_write_the_access_log(two_workers: LiveServer) -> None:
    """Workers configure logging as serve does (uvicorn's configuration covers only its
    own loggers): one JSON line per request, whichever worker served it."""
    directory = two_workers.new_directory()
    for _ in range(6):
        assert directory.client.get(directory.url("/Users")).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [
            json.loads(line)
            for line in two_workers.log().splitlines()
            if line.startswith("{") and directory.id in line
        ]
        if len(lines) >= 6:
            break
        time.sleep(0.1)
    assert len(lines) == 6, lines
    assert {line["status"] for line in lines} == {200}


def test_the_workers_share_the_machines_connections(two_workers: LiveServer) -> None:
    """The default pool is per machine (scimgate.settings.default_db_pool_size): under a
    burst of requests far beyond it, the two workers together never hold more than two
    workers' share of PostgreSQL sessions, and every request still succeeds."""
    per_worker = int(os.environ.get("SCIMGATE_DB_POOL_SIZE") or default_db_pool_size(2))
    directory = two_workers.new_directory()
    ids = [
        directory.client.post(directory.url("/Users"), json=user_body()).json()["id"]
        for _ in range(8)
    ]
    headers = dict(directory.client.headers)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        with psycopg.connect(two_workers.database_url, autocommit=True) as conn:
            while not done.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                ).fetchone()
                peak = max(peak, row[0] if row else 0)

    def burst(n: int) -> list[int]:
        with httpx.Client(headers=headers, timeout=30) as client:
            return [
                client.get(directory.url(f"/Users/{ids[(n + i) % len(ids)]}")).status_code
                for i in range(20)
            ]

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(max_workers=48) as pool:
            statuses = [s for batch in pool.map(burst, range(48)) for s in batch]
    finally:
        done.set()
        sampler.join()
    assert statuses == [200] * len(statuses)
    assert 1 <= peak <= 2 * per_worker, (peak, per_worker)
