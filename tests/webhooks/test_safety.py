"""Delivery-time safety: the SSRF check runs again on every attempt (after DNS may have
changed), redirects are never followed, and a slow receiver cannot hold a worker longer
than the timeout."""

from __future__ import annotations

import pytest

from scimgate.directory.tenancy import Directory
from scimgate.events import ssrf
from scimgate.events.webhooks import Webhooks
from scimgate.store.engine import Database
from tests.webhooks.conftest import make_worker, running, until
from tests.webhooks.helpers import emit
from tests.webhooks.receiver import Receiver, Reply


async def finished(hooks: Webhooks, endpoint_id: str) -> bool:
    found = await hooks.list_deliveries(endpoint_id)
    return bool(found) and all(d.status != "pending" for d in found)


async def test_private_target_is_refused_at_delivery_time(
    db: Database, hooks: Webhooks, org_directory: Directory, receiver: Receiver
) -> None:
    # Registered while the operator allowed it; the worker does not allow it.
    endpoint, _ = await hooks.create_endpoint(org_directory.organization_id, receiver.url())
    await emit(db, org_directory)
    async with running(make_worker(db, allow_private=False, schedule=(0.02,))):
        await until(lambda: finished(hooks, endpoint.id), what="the delivery to fail")
    [delivery] = await hooks.list_deliveries(endpoint.id)
    assert delivery.status == "failed"
    assert len(delivery.attempts) == 2
    for attempt in delivery.attempts:
        assert attempt.status_code is None
        assert attempt.error is not None
        assert "refused: 127.0.0.1 is a loopback address" in attempt.error
    assert receiver.hits == []


async def test_dns_is_checked_again_at_delivery_and_pinned(
    db: Database, org_directory: Directory, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"hooks.rebind.test": ["93.184.216.34"]}  # public when registered

    async def fake_resolve(host: str, port: int) -> list[str]:
        return answers[host]

    monkeypatch.setattr(ssrf, "resolve", fake_resolve)
    strict = Webhooks(db)
    url = f"http://hooks.rebind.test:{receiver.port}/hook"
    endpoint, _ = await strict.create_endpoint(org_directory.organization_id, url)
    try:
        answers["hooks.rebind.test"] = ["127.0.0.1"]  # ...and loopback by delivery time
        await emit(db, org_directory)
        async with running(make_worker(db, allow_private=False, schedule=())):
            await until(lambda: finished(strict, endpoint.id), what="the refusal")
        [refused] = await strict.list_deliveries(endpoint.id)
        assert refused.status == "failed"
        assert refused.attempts[0].error is not None
        assert (
            "refused: hooks.rebind.test resolves to 127.0.0.1, a loopback address"
            in refused.attempts[0].error
        )
        assert receiver.hits == []

        # Allowed, the request goes to the address the check saw, under the URL's name.
        await strict.replay_delivery(refused.id)
        async with running(make_worker(db, allow_private=True)):
            [hit] = await until(lambda: receiver.on("/hook"), what="the pinned delivery")
            await until(lambda: finished(strict, endpoint.id))
        assert hit.headers["host"] == f"hooks.rebind.test:{receiver.port}"
        assert (await strict.get_delivery(refused.id)).status == "succeeded"
    finally:
        await strict.delete_endpoint(endpoint.id)


async def test_redirects_are_not_followed(
    db: Database, hooks: Webhooks, org_directory: Directory, receiver: Receiver
) -> None:
    receiver.behaviour = lambda hit, _n: (
        Reply(307, b"moved", headers={"Location": receiver.url("/inside")})
        if hit.path == "/hop"
        else Reply(200)
    )
    endpoint, _ = await hooks.create_endpoint(org_directory.organization_id, receiver.url("/hop"))
    await emit(db, org_directory)
    async with running(make_worker(db, schedule=())):
        await until(lambda: finished(hooks, endpoint.id), what="the redirect to be refused")
    [delivery] = await hooks.list_deliveries(endpoint.id)
    assert delivery.status == "failed"
    [attempt] = delivery.attempts
    assert attempt.status_code == 307
    assert attempt.error == f"redirect not followed (Location: {receiver.url('/inside')})"
    assert len(receiver.on("/hop")) == 1
    assert receiver.on("/inside") == []


async def test_a_slow_receiver_times_out(
    db: Database, hooks: Webhooks, org_directory: Directory, receiver: Receiver
) -> None:
    receiver.behaviour = lambda _hit, _n: Reply(200, delay=3.0)
    endpoint, _ = await hooks.create_endpoint(org_directory.organization_id, receiver.url())
    await emit(db, org_directory)
    async with running(make_worker(db, timeout=0.5, lease_seconds=2.0, schedule=())):
        await until(lambda: finished(hooks, endpoint.id), what="the timeout")
    [delivery] = await hooks.list_deliveries(endpoint.id)
    [attempt] = delivery.attempts
    assert delivery.status == "failed"
    assert attempt.status_code is None
    assert attempt.error == "timed out waiting (limit 0.5 s)"
    assert 400 < attempt.latency_ms < 1500


async def test_connection_refused_is_a_failed_attempt(
    db: Database, hooks: Webhooks, org_directory: Directory
) -> None:
    closed = Receiver()
    closed.close()  # nothing listens on this port any more
    endpoint, _ = await hooks.create_endpoint(org_directory.organization_id, closed.url())
    await emit(db, org_directory)
    async with running(make_worker(db, schedule=())):
        await until(lambda: finished(hooks, endpoint.id))
    [delivery] = await hooks.list_deliveries(endpoint.id)
    assert delivery.status == "failed"
    assert delivery.attempts[0].error is not None
    assert delivery.attempts[0].error.startswith("connection failed")
