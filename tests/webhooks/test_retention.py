"""Event retention: old events go, with their deliveries and attempts; newer ones, the
dispatcher's cursor and later deliveries are unaffected."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, Table, func, select

from scimgate.directory.tenancy import Directory
from scimgate.events import feed
from scimgate.events.webhooks import Webhooks
from scimgate.events.worker import utcnow
from scimgate.store.engine import Database
from scimgate.store.tables import events, webhook_attempts, webhook_deliveries
from tests.webhooks.conftest import make_worker, until
from tests.webhooks.helpers import emit
from tests.webhooks.receiver import Receiver


async def count(db: Database, table: Table, *where: ColumnElement[bool]) -> int:
    async with db.read() as conn:
        found = await conn.execute(select(func.count()).select_from(table).where(*where))
        return int(found.scalar_one())


async def test_purge_deletes_old_events_with_their_deliveries(
    db: Database, hooks: Webhooks, org_directory: Directory, receiver: Receiver
) -> None:
    endpoint, _ = await hooks.create_endpoint(org_directory.organization_id, receiver.url())
    now = utcnow()
    old = await emit(db, org_directory, 3)
    recent = await emit(db, org_directory, 2, occurred_at=now + timedelta(days=10))
    test_delivery = await hooks.send_test_event(endpoint.id)
    worker = make_worker(db, retention_days=30)
    await worker.run_once()
    await until(lambda: len(receiver.hits) == 6, what="six deliveries")
    mine = webhook_deliveries.c.endpoint_id == endpoint.id
    assert await count(db, webhook_deliveries, mine) == 6
    old_ids = [
        d.id for d in await hooks.list_deliveries(endpoint.id) if d.event_id in {e.id for e in old}
    ]
    assert len(old_ids) == 3

    assert await make_worker(db, retention_days=None).purge(now=now + timedelta(days=400)) == 0
    assert await make_worker(db, retention_days=0).purge(now=now + timedelta(days=400)) == 0
    # 35 days on, the first events are past 30 days of retention; the others are not.
    deleted = await worker.purge(now=now + timedelta(days=35))
    assert deleted >= 3  # other tests' events of this module are as old
    ids = events.c.directory_id == org_directory.id
    assert await count(db, events, ids) == 2
    async with db.read() as conn:
        left, _ = await feed.read(conn, directory_id=org_directory.id)
    assert [e.id for e in left] == [e.id for e in recent]
    remaining = await hooks.list_deliveries(endpoint.id)
    assert sorted(d.event_id for d in remaining) == sorted(e.id for e in recent)
    assert test_delivery.id not in {d.id for d in remaining}
    assert await count(db, webhook_attempts, webhook_attempts.c.delivery_id.in_(old_ids)) == 0

    # The dispatcher goes on from where it was.
    [newest] = await emit(db, org_directory)
    await worker.run_once()
    await until(lambda: newest.id in receiver.ids("/hook"), what="a delivery after the purge")


async def test_the_worker_purges_on_its_own(db: Database, org_directory: Directory) -> None:
    [event] = await emit(db, org_directory, occurred_at=utcnow() - timedelta(days=2))
    worker = make_worker(db, retention_days=1, purge_interval=0)
    await worker.run_once()
    assert await count(db, events, events.c.id == event.id) == 0
