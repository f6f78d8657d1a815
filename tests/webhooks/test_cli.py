"""``scimgate worker``: the parser it adds, and ``--once`` end to end with the secure
defaults (loopback targets refused unless the operator allows them)."""

from __future__ import annotations

import argparse

import pytest

from scimgate.cli import worker as worker_cli
from scimgate.directory.tenancy import Directory
from scimgate.events.webhooks import Webhooks
from scimgate.events.worker import WebhookWorker
from scimgate.settings import Settings
from scimgate.store.engine import Database
from tests.webhooks.helpers import emit
from tests.webhooks.receiver import Receiver


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url")
    top = argparse.ArgumentParser(prog="scimgate")
    worker_cli.add_parser(top.add_subparsers(dest="command", required=True), common)
    return top


async def test_worker_once_refuses_loopback_by_default(
    database_url: str,
    db: Database,
    hooks: Webhooks,
    org_directory: Directory,
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoint, _ = await hooks.create_endpoint(org_directory.organization_id, receiver.url())
    await emit(db, org_directory)
    args = parser().parse_args(["worker", "--once", "--database-url", database_url])
    assert (args.command, args.once) == ("worker", True)
    assert await worker_cli.run(args, Settings(database_url=database_url)) == 0
    out = capsys.readouterr().out
    assert out.startswith("sent ") and out.endswith("webhook request(s)\n")
    [delivery] = await hooks.list_deliveries(endpoint.id)
    assert delivery.status == "pending"  # retried later, per the schedule
    [attempt] = delivery.attempts
    assert attempt.error is not None and "loopback" in attempt.error
    assert receiver.hits == []


def test_options_come_from_settings(database_url: str) -> None:
    db = Database(database_url)
    defaults = WebhookWorker.from_settings(db, Settings(database_url=database_url))
    assert (defaults.allow_private, defaults.concurrency, defaults.retention_days) == (
        False,
        10,
        30,
    )
    tuned = WebhookWorker.from_settings(db, Settings(database_url=database_url), concurrency=3)
    assert tuned.concurrency == 3
    with pytest.raises(ValueError, match="lease"):
        WebhookWorker(db, lease_seconds=5, timeout=10)
