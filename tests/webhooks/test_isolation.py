"""Tenant isolation: an organization's endpoints get its own events only, also when
events of several organizations are dispatched in one batch."""

from __future__ import annotations

from scimgate.directory.tenancy import Tenancy
from scimgate.events.webhooks import Webhooks
from scimgate.store.engine import Database
from tests.webhooks.conftest import make_worker, until
from tests.webhooks.helpers import emit
from tests.webhooks.receiver import Receiver


async def test_each_organization_gets_only_its_own_events(
    db: Database, hooks: Webhooks, receiver: Receiver
) -> None:
    tenancy = Tenancy(db)
    tenants = []
    for name in ("a", "b", "c"):
        org = await tenancy.create_organization(f"Tenant {name}")
        directory, _ = await tenancy.create_directory(org.id, name, "okta")
        await hooks.create_endpoint(org.id, receiver.url(f"/{name}"))
        await hooks.create_endpoint(org.id, receiver.url(f"/{name}-dir"), directory_id=directory.id)
        tenants.append((name, directory))
    sent = {name: {e.id for e in await emit(db, directory, 4)} for name, directory in tenants}
    await make_worker(db, batch=100).run_once()  # all twelve events in one dispatch batch
    await until(lambda: len(receiver.hits) == 24, what="24 deliveries")
    for name, directory in tenants:
        for path in (f"/{name}", f"/{name}-dir"):
            hits = receiver.on(path)
            assert {h.webhook_id for h in hits} == sent[name], path
            assert {h.json["organization_id"] for h in hits} == {directory.organization_id}
