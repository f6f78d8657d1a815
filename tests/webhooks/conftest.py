"""Fixtures for the webhook tests: the module's database (both backends), a loopback
receiver, the Webhooks service, and workers tuned for tests (tiny waits, short leases).

Every test makes its own organization, so endpoints of earlier tests in the same module
never match its events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio

from scimgate.directory.tenancy import Directory, Organization, Tenancy
from scimgate.events.webhooks import Webhooks
from scimgate.events.worker import WebhookWorker
from scimgate.store.engine import Database
from tests.webhooks.receiver import Receiver

FAST = {
    "allow_private": True,
    "poll_interval": 0.02,
    "lease_seconds": 5.0,
    "timeout": 2.0,
    "schedule": (0.05, 0.05, 0.05),
}


async def until(
    check: Callable[[], Any] | Callable[[], Awaitable[Any]],
    within: float = 20.0,
    what: str = "condition",
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, and return
    that; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


def make_worker(db: Database, **options: Any) -> WebhookWorker:
    return WebhookWorker(db, **{**FAST, **options})


@asynccontextmanager
async def running(worker: WebhookWorker) -> AsyncIterator[WebhookWorker]:
    """The worker's run_forever in a task, stopped (and checked) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest_asyncio.fixture()
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=4)
    yield database
    await database.dispose()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture()
def hooks(db: Database) -> Webhooks:
    return Webhooks(db, allow_private=True)


@pytest_asyncio.fixture()
async def org(db: Database) -> Organization:
    return await Tenancy(db).create_organization(f"Org {time.monotonic_ns()}")


@pytest_asyncio.fixture()
async def org_directory(db: Database, org: Organization) -> Directory:
    directory, _token = await Tenancy(db).create_directory(org.id, "Main", "entra")
    return directory
