"""Deliveries of real SCIM changes: a live ``scimgate serve`` writes the events (as an IdP
drives it), a worker in this process sends them to a loopback receiver, and the receiver
checks what a host app would: signature, headers, body. Covers filters and scoping,
retries with backoff, exhaustion and replay, test events and secret rotation."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from scimgate.events import feed
from scimgate.events.webhooks import Webhooks
from scimgate.store.engine import Database
from tests.integration.helpers import SCIM_JSON, create_group, create_user
from tests.live import Directory, LiveServer
from tests.webhooks.conftest import make_worker, running, until
from tests.webhooks.receiver import Receiver, Reply


def verify(secret: str, hit: Any) -> Any:
    """What the docs tell a host app to do; returns the parsed payload."""
    return Webhook(secret).verify(hit.body, hit.headers)


async def directory_events(db: Database, directory_id: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        found, _ = await feed.read(conn, directory_id=directory_id, limit=1000)
    return [e.to_json() for e in found]


async def second_directory(server: LiveServer, first: Directory) -> Directory:
    """Another directory in the same organization as ``first`` (the CLI runs its own
    event loop, hence the thread)."""
    import httpx

    info = await asyncio.to_thread(
        server.cli, "directory", "create", "--org", first.organization_id, "--provider", "okta"
    )
    client = httpx.Client(
        headers={"Authorization": f"Bearer {info['token']}", "Content-Type": SCIM_JSON},
        timeout=30,
    )
    server.clients.append(client)
    return Directory(
        info["id"],
        first.organization_id,
        info["scim_base_url"],
        info["tenant_url"],
        info["token"],
        client,
    )


async def settled(hooks: Webhooks, *endpoint_ids: str) -> bool:
    """No delivery of these endpoints is still pending."""
    for endpoint_id in endpoint_ids:
        if await hooks.list_deliveries(endpoint_id, status="pending"):
            return False
    return True


async def test_a_scim_change_is_delivered_signed(
    directory: Directory, db: Database, hooks: Webhooks, receiver: Receiver
) -> None:
    endpoint, secret = await hooks.create_endpoint(directory.organization_id, receiver.url())
    user = create_user(directory)
    async with running(make_worker(db)):
        [hit] = await until(lambda: receiver.on("/hook"), what="the delivery")
        await until(lambda: settled(hooks, endpoint.id), what="the outcome to be recorded")

    [event] = await directory_events(db, directory.id)
    assert event["type"] == "user.created"
    assert event["data"]["user"]["id"] == user["id"]
    assert verify(secret, hit) == event
    assert hit.headers["webhook-id"] == event["id"]
    assert abs(int(hit.headers["webhook-timestamp"]) - time.time()) < 60
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["user-agent"].startswith("scimgate/")
    assert event["organization_id"] == directory.organization_id
    assert "organization_external_id" in event
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "B" * 44).verify(hit.body, hit.headers)

    [delivery] = await hooks.list_deliveries(endpoint.id)
    assert (delivery.status, delivery.event_id, delivery.event_type) == (
        "succeeded",
        event["id"],
        "user.created",
    )
    assert delivery.next_attempt_at is None
    [attempt] = delivery.attempts
    assert (attempt.status_code, attempt.response_excerpt, attempt.error) == (200, "ok", None)
    assert 0 < attempt.latency_ms < 5000
    assert delivery.to_json()["attempts"][0]["status_code"] == 200


async def test_event_types_directories_and_enabled_decide_who_gets_what(
    server: LiveServer, directory: Directory, db: Database, hooks: Webhooks, receiver: Receiver
) -> None:
    other = await second_directory(server, directory)
    org = directory.organization_id
    everything, _ = await hooks.create_endpoint(org, receiver.url("/all"))
    groups_only, _ = await hooks.create_endpoint(
        org, receiver.url("/groups"), event_types=["group.created"]
    )
    other_only, _ = await hooks.create_endpoint(org, receiver.url("/other"), directory_id=other.id)
    disabled, _ = await hooks.create_endpoint(org, receiver.url("/disabled"))
    await hooks.update_endpoint(disabled.id, enabled=False)
    # another organization's endpoint must see none of it
    stranger = await asyncio.to_thread(server.new_directory, "okta")
    foreign, _ = await hooks.create_endpoint(stranger.organization_id, receiver.url("/foreign"))

    user = create_user(directory)
    group = create_group(directory)
    other_user = create_user(other)
    async with running(make_worker(db)):
        await until(lambda: len(receiver.on("/all")) == 3, what="three deliveries")
        await until(lambda: settled(hooks, everything.id, groups_only.id, other_only.id))

        def kinds(path: str) -> list[tuple[str, str]]:
            return sorted((h.json["type"], h.json["directory_id"]) for h in receiver.on(path))

        assert kinds("/all") == sorted(
            [
                ("user.created", directory.id),
                ("group.created", directory.id),
                ("user.created", other.id),
            ]
        )
        assert kinds("/groups") == [("group.created", directory.id)]
        assert kinds("/other") == [("user.created", other.id)]
        assert receiver.on("/disabled") == [] and receiver.on("/foreign") == []
        assert await hooks.list_deliveries(disabled.id) == []
        assert await hooks.list_deliveries(foreign.id) == []
        assert user["id"] and group["id"] and other_user["id"]

        # An endpoint registered now does not get what happened before it.
        late, _ = await hooks.create_endpoint(org, receiver.url("/late"))
        create_user(other)
        await until(lambda: len(receiver.on("/all")) == 4, what="the fourth delivery")
        [late_hit] = await until(lambda: receiver.on("/late"), what="the late endpoint's hit")
        assert late_hit.webhook_id == receiver.on("/all")[-1].webhook_id
        await until(lambda: settled(hooks, late.id))
        assert len(await hooks.list_deliveries(late.id)) == 1


async def test_failures_are_retried_with_backoff_and_logged(
    directory: Directory, db: Database, hooks: Webhooks, receiver: Receiver
) -> None:
    big = b"E" * 5000
    replies = [Reply(500, b"boom"), Reply(503, big), Reply(429, b"slow down"), Reply(200, b"ok")]
    receiver.behaviour = lambda _hit, n: replies[min(n, 3)]
    endpoint, secret = await hooks.create_endpoint(directory.organization_id, receiver.url())
    create_user(directory)
    schedule = (0.3, 0.3, 0.3, 0.3)
    async with running(make_worker(db, schedule=schedule)):
        await until(lambda: len(receiver.on("/hook")) == 4, what="four attempts")
        await until(lambda: settled(hooks, endpoint.id))

    hits = receiver.on("/hook")
    assert len({h.webhook_id for h in hits}) == 1  # receivers can dedupe on webhook-id
    assert all(verify(secret, h) == verify(secret, hits[0]) for h in hits)
    gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
    assert all(gap >= 0.3 * 0.8 - 0.01 for gap in gaps), gaps

    [delivery] = await hooks.list_deliveries(endpoint.id)
    assert delivery.status == "succeeded"
    assert delivery.attempt_count == 4
    assert [a.status_code for a in delivery.attempts] == [500, 503, 429, 200]
    assert [a.error for a in delivery.attempts] == ["HTTP 500", "HTTP 503", "HTTP 429", None]
    assert delivery.attempts[0].response_excerpt == "boom"
    assert delivery.attempts[1].response_excerpt == big[:1024].decode()
    assert all(a.latency_ms > 0 for a in delivery.attempts)
    times = [a.attempted_at for a in delivery.attempts]
    assert times == sorted(times)
    assert (delivery.last_status_code, delivery.last_error) == (200, None)


async def test_exhausted_retries_fail_and_replay_delivers(
    directory: Directory, db: Database, receiver: Receiver
) -> None:
    receiver.behaviour = lambda _hit, _n: Reply(500, b"down")
    worker = make_worker(db, schedule=(0.02, 0.02))
    hooks = Webhooks(db, allow_private=True, notify=worker.wake)
    endpoint, secret = await hooks.create_endpoint(directory.organization_id, receiver.url())
    create_user(directory)
    async with running(worker):
        await until(lambda: hooks.list_deliveries(endpoint.id, status="failed"), what="failed")
        [failed] = await hooks.list_deliveries(endpoint.id)
        assert failed.status == "failed"
        assert failed.attempt_count == 3 and len(failed.attempts) == 3
        assert (failed.last_status_code, failed.last_error) == (500, "HTTP 500")
        assert failed.next_attempt_at is None
        assert len(receiver.on("/hook")) == 3

        receiver.behaviour = lambda _hit, _n: Reply(204, b"")
        queued = await hooks.replay_delivery(failed.id)
        assert queued.status == "pending" and queued.attempt_count == 0
        assert queued.next_attempt_at is not None
        await until(lambda: len(receiver.on("/hook")) == 4, what="the replayed delivery")
        await until(lambda: settled(hooks, endpoint.id))
        replayed = await hooks.get_delivery(failed.id)
        assert replayed.status == "succeeded"
        assert [a.status_code for a in replayed.attempts] == [500, 500, 500, 204]

        # A succeeded delivery can be replayed too, with the same webhook-id.
        await hooks.replay_delivery(failed.id)
        await until(lambda: len(receiver.on("/hook")) == 5, what="the second replay")
        await until(lambda: settled(hooks, endpoint.id))
    hits = receiver.on("/hook")
    assert {h.webhook_id for h in hits} == {failed.event_id}
    assert all(verify(secret, h)["id"] == failed.event_id for h in hits)
    assert len((await hooks.get_delivery(failed.id)).attempts) == 5


async def test_test_event_and_secret_rotation(
    directory: Directory, db: Database, receiver: Receiver
) -> None:
    worker = make_worker(db)
    hooks = Webhooks(db, allow_private=True, notify=worker.wake)
    endpoint, old_secret = await hooks.create_endpoint(
        directory.organization_id,
        receiver.url(),
        directory_id=directory.id,
        event_types=["group.deleted"],  # the test event ignores the filter
    )
    async with running(worker):
        queued = await hooks.send_test_event(endpoint.id)
        assert (queued.event_type, queued.status) == ("webhook.test", "pending")
        [hit] = await until(lambda: receiver.on("/hook"), what="the test event")
        payload = verify(old_secret, hit)
        assert payload["type"] == "webhook.test"
        assert payload["id"] == hit.webhook_id == queued.event_id
        assert payload["organization_id"] == directory.organization_id
        assert payload["directory_id"] == directory.id
        assert payload["data"]["endpoint_id"] == endpoint.id
        occurred = datetime.fromisoformat(payload["occurred_at"].replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - occurred).total_seconds()) < 60
        await until(lambda: settled(hooks, endpoint.id))
        assert (await hooks.get_delivery(queued.id)).status == "succeeded"

        new_secret = await hooks.rotate_secret(endpoint.id)
        await hooks.send_test_event(endpoint.id)
        await until(lambda: len(receiver.on("/hook")) == 2, what="the second test event")
    latest = receiver.on("/hook")[-1]
    assert verify(new_secret, latest)["type"] == "webhook.test"
    with pytest.raises(WebhookVerificationError):
        verify(old_secret, latest)


async def test_deliveries_page_newest_first(
    directory: Directory, db: Database, hooks: Webhooks, receiver: Receiver
) -> None:
    endpoint, _ = await hooks.create_endpoint(directory.organization_id, receiver.url())
    for _ in range(5):
        create_user(directory)
    async with running(make_worker(db)):
        await until(lambda: len(receiver.on("/hook")) == 5)
        await until(lambda: settled(hooks, endpoint.id))
    everything = await hooks.list_deliveries(endpoint.id)
    assert len(everything) == 5
    first = await hooks.list_deliveries(endpoint.id, limit=2)
    second = await hooks.list_deliveries(endpoint.id, limit=2, before=first[-1].id)
    third = await hooks.list_deliveries(endpoint.id, limit=2, before=second[-1].id)
    assert [d.id for d in first + second + third] == [d.id for d in everything]
    keys = [(d.created_at, d.id) for d in everything]
    assert keys == sorted(keys, reverse=True)
    assert await hooks.list_deliveries(endpoint.id, status="failed") == []
