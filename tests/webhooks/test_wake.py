"""The in-process wiring: the app's event bus wakes the worker after commit, so a SCIM
change is delivered at once rather than at the next poll (here 60 s away). This is how
``create_app`` runs the worker when it is not a separate ``scimgate worker``."""

from __future__ import annotations

import asyncio

import httpx

from scimgate.app import create_app
from scimgate.directory.tenancy import Organization, Tenancy
from scimgate.events.webhooks import Webhooks
from scimgate.settings import Settings
from scimgate.store.engine import Database
from tests.integration.helpers import SCIM_JSON, user_body
from tests.webhooks.conftest import make_worker, running, until
from tests.webhooks.receiver import Receiver


async def test_committed_events_wake_the_worker(
    database_url: str, db: Database, org: Organization, receiver: Receiver
) -> None:
    directory, token = await Tenancy(db).create_directory(org.id, "Wake", "entra")
    worker = make_worker(db, poll_interval=60.0)
    hooks = Webhooks(db, allow_private=True, notify=worker.wake)
    endpoint, _ = await hooks.create_endpoint(org.id, receiver.url())
    app = create_app(
        Settings(database_url=database_url), on_event=lambda _e: worker.wake(), migrate=False
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        running(worker),
        httpx.AsyncClient(transport=transport, base_url="http://scim.test") as client,
    ):
        # A replay-style wake-up through the service first; after it the worker is idle.
        await hooks.send_test_event(endpoint.id)
        await until(lambda: receiver.on("/hook"), within=10, what="the test event")
        await until(lambda: hooks.list_deliveries(endpoint.id, status="succeeded"))
        # Let the worker finish that round and fall asleep (60 s), so that only a wake-up
        # can explain a prompt delivery below. Not for correctness: without this pause
        # the test could only pass more easily, never fail spuriously.
        await asyncio.sleep(0.3)

        response = await client.post(
            f"/scim/v2/{directory.id}/Users",
            json=user_body(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON},
        )
        assert response.status_code == 201, response.text
        hits = await until(
            lambda: [h for h in receiver.on("/hook") if h.json["type"] == "user.created"],
            within=10,
            what="the user.created delivery, well before the next poll",
        )
    assert hits[0].json["data"]["user"]["id"] == response.json()["id"]
    await app.state.db.dispose()
