"""With no webhook endpoint enabled the worker reads no events (the feed's dispatch cursor
stays put); the first endpoint registered then gets every event from its registration
on, and none from before."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from scimgate.app import create_app
from scimgate.directory.tenancy import Organization, Tenancy
from scimgate.events.webhooks import Webhooks
from scimgate.settings import Settings
from scimgate.store.engine import Database
from scimgate.store.tables import feed_cursors
from tests.integration.helpers import SCIM_JSON, user_body
from tests.webhooks.conftest import make_worker, running, until
from tests.webhooks.receiver import Receiver


async def _cursor(db: Database) -> tuple[int, int] | None:
    async with db.read() as conn:
        row = (await conn.execute(select(feed_cursors.c.txid, feed_cursors.c.seq))).first()
    return None if row is None else (row.txid, row.seq)


async def test_events_before_the_first_endpoint_are_skipped_lazily(
    database_url: str, db: Database, org: Organization, receiver: Receiver
) -> None:
    directory, token = await Tenancy(db).create_directory(org.id, "Lazy", "entra")
    worker = make_worker(db)
    hooks = Webhooks(db, allow_private=True, notify=worker.wake)
    app = create_app(
        Settings(database_url=database_url, webhook_worker=False),
        on_event=lambda _e: worker.wake(),
        migrate=False,
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}
    transport = httpx.ASGITransport(app=app)
    async with (
        running(worker),
        httpx.AsyncClient(transport=transport, base_url="http://scim.test") as client,
    ):
        before = await _cursor(db)
        for _ in range(3):
            created = await client.post(
                f"/scim/v2/{directory.id}/Users", json=user_body(), headers=headers
            )
            assert created.status_code == 201, created.text
        await asyncio.sleep(0.5)  # many worker cycles (FAST polls every few ms)
        assert await _cursor(db) == before, "no endpoint: the worker must not read events"

        await hooks.create_endpoint(org.id, receiver.url())
        after = await client.post(
            f"/scim/v2/{directory.id}/Users", json=user_body(), headers=headers
        )
        assert after.status_code == 201, after.text
        hits = await until(
            lambda: [h for h in receiver.on("/hook") if h.json["type"] == "user.created"],
            within=10,
            what="the user.created delivery after the endpoint was registered",
        )
        await asyncio.sleep(0.5)  # time for any wrong delivery of the earlier users
        assert await _cursor(db) != before, "with an endpoint the worker dispatches"
    delivered = [h.json["data"]["user"]["id"] for h in receiver.on("/hook")]
    assert delivered == [after.json()["id"]], "only events after the registration"
    assert hits
    await app.state.db.dispose()
