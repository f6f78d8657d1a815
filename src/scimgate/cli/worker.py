"""``scimgate worker``: the webhook worker as its own process.

``scimgate serve`` runs a worker in-process, which suits one node. To scale out, run
``serve`` with ``SCIMGATE_WEBHOOK_WORKER=false`` and as many ``scimgate worker`` processes
as needed against the same PostgreSQL database: they share the work without sending any
attempt twice. SIGTERM or SIGINT stops a worker after the requests in flight end (at most
the request timeout); a second signal stops it at once, and what was in flight is sent
again by another worker once its lease expires.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from scimgate.events.worker import WebhookWorker
from scimgate.settings import Settings
from scimgate.store.engine import Database

log = logging.getLogger("scimgate.webhooks")


def add_parser(subparsers: Any, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``worker`` to the ``scimgate`` subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "worker",
        parents=[common_parent],
        help="deliver webhooks (runs in `serve` too; start more to scale out)",
        description="Send webhook deliveries from the event outbox until stopped.",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="send what is due now, then exit (prints how many requests were made)",
    )
    return parser


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the worker until SIGTERM/SIGINT (or one pass with ``--once``)."""
    db = Database(
        settings.database_url,
        **settings.database_options(pool_size=min(settings.db_pool_size, 5)),
    )
    try:
        worker = WebhookWorker.from_settings(db, settings)
        if args.once:
            sent = await worker.run_once()
            print(f"sent {sent} webhook request(s)")
            return 0
        await serve(worker)
        return 0
    finally:
        await db.dispose()


async def serve(worker: WebhookWorker) -> None:
    """Run ``worker`` until a signal; the first drains, the second cancels."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
        stop.set()

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    log.info("webhook worker started (concurrency %d)", worker.concurrency)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.run_forever(stop)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    log.info("webhook worker stopped")
