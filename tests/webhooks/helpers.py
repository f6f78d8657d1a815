"""Writing events straight into the outbox, as the SCIM layer does inside its
transactions, for tests that are about delivery rather than SCIM."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from scimgate.directory.tenancy import Directory
from scimgate.events import outbox
from scimgate.events.outbox import Event
from scimgate.store.engine import Database


async def emit(
    db: Database,
    directory: Directory,
    count: int = 1,
    type_: str = "user.created",
    occurred_at: datetime | None = None,
) -> list[Event]:
    """Commit ``count`` events of one directory in one transaction."""
    found = [
        outbox.new_event(type_, directory.id, directory.organization_id, {"n": i})
        for i in range(count)
    ]
    if occurred_at is not None:
        found = [dataclasses.replace(e, occurred_at=occurred_at) for e in found]
    async with db.write() as conn:
        await outbox.write(conn, found)
    return found
