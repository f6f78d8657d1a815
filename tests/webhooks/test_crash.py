"""kill -9 at any point loses no event: a worker process is killed repeatedly — while
requests are in flight, and at random moments (starting, dispatching, recording) — while
a live server keeps writing events; after a last restart every event has been delivered
at least once, and every delivery is recorded as succeeded."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import select

from scimgate.events.webhooks import Webhooks
from scimgate.store.engine import Database
from scimgate.store.tables import events, webhook_deliveries
from tests.integration.helpers import create_user
from tests.live import Directory
from tests.webhooks.conftest import until
from tests.webhooks.receiver import Receiver, Reply

ROOT = Path(__file__).resolve().parents[2]
CYCLES = 6
USERS_PER_CYCLE = 8


def start_worker(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.webhooks.worker_proc", database_url],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": f"{ROOT}/src:{ROOT}"},
        )


def started(log: Path) -> int:
    return log.read_text().count("webhook worker started") if log.exists() else 0


async def test_kill_9_loses_no_event(
    database_url: str,
    db: Database,
    hooks: Webhooks,
    directory: Directory,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    receiver.behaviour = lambda _hit, _n: Reply(200, delay=0.25)
    endpoint, _ = await hooks.create_endpoint(directory.organization_id, receiver.url())
    log = tmp_path / "worker.log"
    rng = random.Random(7)
    resent_needed: set[str] = set()

    for cycle in range(CYCLES):
        producer = threading.Thread(
            target=lambda: [create_user(directory) for _ in range(USERS_PER_CYCLE)]
        )
        producer.start()
        proc = start_worker(database_url, log)
        try:
            if cycle % 2 == 0:
                # Kill mid-delivery: the receiver holds requests it has not answered.
                seen = len(receiver.hits)
                await until(
                    lambda seen=seen: len(receiver.hits) > seen and receiver.in_flight(),
                    within=30,
                    what="requests in flight",
                )
            else:
                # Kill at a random moment: while starting up (last cycle) or once running,
                # wherever it is (dispatching, claiming, sending, recording).
                if cycle != CYCLES - 1:
                    await until(lambda n=cycle: started(log) > n, within=30, what="startup")
                await asyncio.sleep(rng.uniform(0.0, 0.6))
            assert proc.poll() is None, log.read_text()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        await asyncio.to_thread(producer.join, 60)
        # Requests that were unanswered when the worker died must be sent again.
        async with db.read() as conn:
            leased = set(
                (
                    await conn.execute(
                        select(webhook_deliveries.c.event_id).where(
                            webhook_deliveries.c.endpoint_id == endpoint.id,
                            webhook_deliveries.c.lease_until.is_not(None),
                        )
                    )
                ).scalars()
            )
        resent_needed |= leased & set(receiver.ids("/hook"))

    # Every committed event (read from the table: the feed may briefly hold back events
    # while PostgreSQL has not yet noticed the killed worker's connection is gone).
    async with db.read() as conn:
        expected = set(
            (
                await conn.execute(select(events.c.id).where(events.c.directory_id == directory.id))
            ).scalars()
        )
    assert len(expected) == CYCLES * USERS_PER_CYCLE

    proc = start_worker(database_url, log)
    try:

        async def all_delivered() -> bool:
            deliveries = await hooks.list_deliveries(endpoint.id, limit=200)
            return (
                expected <= set(receiver.ids("/hook"))
                and len(deliveries) == len(expected)
                and all(d.status == "succeeded" for d in deliveries)
            )

        await until(all_delivered, within=120, what="every event delivered")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    assert code == 0, log.read_text()[-3000:]

    received = receiver.ids("/hook")
    assert set(received) == expected
    assert resent_needed, "no kill happened mid-delivery; the test proved nothing"
    for event_id in resent_needed:
        assert received.count(event_id) >= 2, event_id
