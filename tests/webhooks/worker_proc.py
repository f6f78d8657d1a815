"""``python -m tests.webhooks.worker_proc DATABASE_URL``: ``scimgate worker`` with test
timings (short lease, tiny retry waits, loopback allowed), run through the CLI's own
``serve`` loop and signal handling. The crash test kills it with SIGKILL."""

from __future__ import annotations

import asyncio
import logging
import sys

from scimgate.cli.worker import serve
from scimgate.events.worker import WebhookWorker
from scimgate.store.engine import Database


async def main(database_url: str) -> None:
    db = Database(database_url, pool_size=4)
    try:
        worker = WebhookWorker(
            db,
            allow_private=True,
            poll_interval=0.05,
            concurrency=4,
            batch=7,
            lease_seconds=2.0,
            timeout=1.5,
            schedule=(0.1,) * 8,
        )
        await serve(worker)
    finally:
        await db.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    asyncio.run(main(sys.argv[1]))
