"""Several workers on one database: each (endpoint, event) is sent exactly once while they
dispatch and deliver concurrently (FOR UPDATE SKIP LOCKED on PostgreSQL, the single
writer on SQLite). Each worker has its own engine, so its own connections."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack

from sqlalchemy import func, select

from scimgate.directory.tenancy import Directory
from scimgate.events.webhooks import Webhooks
from scimgate.store.engine import Database
from scimgate.store.tables import webhook_attempts, webhook_deliveries
from tests.webhooks.conftest import make_worker, running, until
from tests.webhooks.helpers import emit
from tests.webhooks.receiver import Receiver, Reply

EVENTS = 200
WORKERS = 3


async def test_concurrent_workers_send_each_delivery_once(
    database_url: str,
    db: Database,
    hooks: Webhooks,
    org_directory: Directory,
    receiver: Receiver,
) -> None:
    receiver.behaviour = lambda _hit, _n: Reply(200, delay=0.005)
    org = org_directory.organization_id
    everything, _ = await hooks.create_endpoint(org, receiver.url("/all"))
    scoped, _ = await hooks.create_endpoint(
        org, receiver.url("/dir"), directory_id=org_directory.id
    )
    async with AsyncExitStack() as stack:
        for _ in range(WORKERS):
            worker_db = Database(database_url, pool_size=3)
            stack.push_async_callback(worker_db.dispose)
            worker = make_worker(worker_db, concurrency=8, batch=25)
            await stack.enter_async_context(running(worker))
        # Events arrive while the workers run, 20 commits of 10.
        for _ in range(EVENTS // 10):
            await emit(db, org_directory, 10)
            await asyncio.sleep(0)

        async def all_sent() -> bool:
            async with db.read() as conn:
                pending = (
                    await conn.execute(
                        select(func.count())
                        .select_from(webhook_deliveries)
                        .where(
                            webhook_deliveries.c.endpoint_id.in_([everything.id, scoped.id]),
                            webhook_deliveries.c.status != "succeeded",
                        )
                    )
                ).scalar()
            return len(receiver.hits) >= 2 * EVENTS and pending == 0

        await until(all_sent, within=120, what=f"{2 * EVENTS} deliveries")
    # The workers are stopped and drained: nothing more can arrive.

    for path in ("/all", "/dir"):
        counts = Counter(receiver.ids(path))
        assert len(counts) == EVENTS, path
        duplicates = {wid: n for wid, n in counts.items() if n > 1}
        assert duplicates == {}, f"{path}: sent more than once: {duplicates}"
    async with db.read() as conn:
        rows = list(
            await conn.execute(
                select(webhook_deliveries.c.attempts, func.count(webhook_attempts.c.id))
                .outerjoin(
                    webhook_attempts, webhook_attempts.c.delivery_id == webhook_deliveries.c.id
                )
                .where(webhook_deliveries.c.endpoint_id.in_([everything.id, scoped.id]))
                .group_by(webhook_deliveries.c.id, webhook_deliveries.c.attempts)
            )
        )
    assert len(rows) == 2 * EVENTS
    assert {(r[0], r[1]) for r in rows} == {(1, 1)}
