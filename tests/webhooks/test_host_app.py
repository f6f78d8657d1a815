"""The host app from docs/webhooks.md, run for real (Starlette under uvicorn on
loopback): it verifies scimgate's signatures with the Standard Webhooks library, dedupes
on the event id, and rejects a forged request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimgate.directory.tenancy import Directory
from scimgate.events.webhooks import Webhooks
from scimgate.store.engine import Database
from tests.live import free_port
from tests.webhooks.conftest import make_worker, running, until
from tests.webhooks.helpers import emit


class HostApp:
    """docs/webhooks.md's handler, with its two helpers filled in."""

    def __init__(self, secret: str) -> None:
        self.handled: list[dict[str, Any]] = []
        self.rejected = 0
        webhook = Webhook(secret)

        def already_processed(event_id: str) -> bool:
            return any(e["id"] == event_id for e in self.handled)

        def handle(event: dict[str, Any]) -> None:
            self.handled.append(event)

        # -- as in the docs --
        async def scimgate_webhook(request: Request) -> Response:
            body = await request.body()  # the raw bytes: do not re-serialize the JSON
            try:
                event = webhook.verify(body, dict(request.headers))
            except WebhookVerificationError:
                self.rejected += 1
                return Response(status_code=400)
            if not already_processed(event["id"]):  # deliveries are at least once
                handle(event)  # keep it quick, or enqueue a job
            return Response(status_code=204)

        self.app = Starlette(routes=[Route("/hooks/scim", scimgate_webhook, methods=["POST"])])


@pytest.fixture()
def serve() -> Iterator[Any]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> str:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "host app did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}/hooks/scim"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


async def test_the_documented_host_app_verifies_and_dedupes(
    db: Database, hooks: Webhooks, org_directory: Directory, serve: Any
) -> None:
    endpoint, secret = await hooks.create_endpoint(
        org_directory.organization_id, "http://127.0.0.1:9/"
    )
    host = HostApp(secret)
    url = serve(host.app)
    await hooks.update_endpoint(endpoint.id, url=url)
    sent = await emit(db, org_directory, 3)
    async with running(make_worker(db)):
        await until(lambda: len(host.handled) == 3, what="three handled events")
        [delivery] = await hooks.list_deliveries(endpoint.id, limit=1)
        await hooks.replay_delivery(delivery.id)  # a duplicate, as after a crash
        await until(lambda: _all_done(hooks, endpoint.id), what="the replay")
    assert sorted(e["id"] for e in host.handled) == sorted(e.id for e in sent)
    assert host.rejected == 0
    assert [a.status_code for a in (await hooks.get_delivery(delivery.id)).attempts] == [204, 204]

    # A forged request (right shape, wrong key) is rejected.
    forged_body = b'{"id":"evt_forged","type":"user.deleted"}'
    forger = Webhook("whsec_" + "A" * 44)
    stamp = int(time.time())
    headers = {
        "webhook-id": "evt_forged",
        "webhook-timestamp": str(stamp),
        "webhook-signature": forger.sign(
            "evt_forged", datetime.fromtimestamp(stamp, UTC), forged_body.decode()
        ),
        "content-type": "application/json",
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(url, content=forged_body, headers=headers)
    assert response.status_code == 400
    assert host.rejected == 1
    assert "evt_forged" not in {e["id"] for e in host.handled}


async def _all_done(hooks: Webhooks, endpoint_id: str) -> bool:
    found = await hooks.list_deliveries(endpoint_id)
    return all(d.status == "succeeded" for d in found) and sum(len(d.attempts) for d in found) == 4
