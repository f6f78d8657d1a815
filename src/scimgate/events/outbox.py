"""The transactional outbox: events are inserted in the same transaction as the change
they describe, so a committed change always has its events and a failed one has none."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Text, cast, func, literal

from scimgate.store.connections import Conn
from scimgate.store.ids import uuid7
from scimgate.store.prepared import Prepared, keep_warm
from scimgate.store.tables import events

EVENT_TYPES = (
    "user.created",
    "user.updated",
    "user.deactivated",
    "user.reactivated",
    "user.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "group.member_added",
    "group.member_removed",
    "directory.token_rotated",
)


@dataclass(frozen=True)
class Event:
    """One change, as the host app sees it."""

    id: str
    type: str
    directory_id: str
    organization_id: str
    occurred_at: datetime
    data: dict[str, Any]
    seq: int | None = field(default=None, compare=False)
    txid: int | None = field(default=None, compare=False)
    organization_external_id: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The wire form used by the feed, webhooks and ``on_event`` consumers."""
        return {
            "id": self.id,
            "type": self.type,
            "directory_id": self.directory_id,
            "organization_id": self.organization_id,
            "organization_external_id": self.organization_external_id,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }


def new_event_id() -> str:
    """A new event id: time-ordered, so the unique index on it grows at one end."""
    return f"evt_{uuid7().hex}"


def new_event(
    type_: str,
    directory_id: str,
    organization_id: str,
    data: dict[str, Any],
    organization_external_id: str | None = None,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
) -> Event:
    """``event_id``: one made beforehand with :func:`new_event_id` (by default, a new one)."""
    assert type_ in EVENT_TYPES, type_
    return Event(
        id=event_id or new_event_id(),
        type=type_,
        directory_id=directory_id,
        organization_id=organization_id,
        occurred_at=occurred_at or datetime.now(UTC),
        data=data,
        organization_external_id=organization_external_id,
    )


_COLUMNS = ("id", "type", "directory_id", "organization_id", "occurred_at", "data")
_INSERT_PG = Prepared(
    events.insert().values(txid=cast(cast(func.pg_current_xact_id(), Text), BigInteger)),
    column_keys=_COLUMNS,
)
_INSERT_SQLITE = Prepared(events.insert().values(txid=literal(0)), column_keys=_COLUMNS)
keep_warm(_INSERT_PG)


async def write(conn: Conn, pending: list[Event]) -> None:
    """Insert events inside the caller's transaction (one multi-row INSERT)."""
    if not pending:
        return
    # One statement, built once, whatever the batch size; executed with a parameter list.
    await conn.execute(
        _INSERT_PG if conn.dialect.name == "postgresql" else _INSERT_SQLITE,
        [
            {
                "id": e.id,
                "type": e.type,
                "directory_id": e.directory_id,
                "organization_id": e.organization_id,
                "occurred_at": e.occurred_at,
                "data": e.data,
            }
            for e in pending
        ],
    )
