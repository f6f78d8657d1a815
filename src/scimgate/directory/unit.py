"""A unit of work in the directory domain: one write transaction plus the events it
records. Events go into the outbox inside the transaction and to in-process listeners
after it commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from scimgate.directory.tenancy import DirectoryAccess
from scimgate.events import outbox
from scimgate.events.bus import EventBus
from scimgate.events.outbox import Event
from scimgate.store.connections import Conn
from scimgate.store.engine import Database

T = TypeVar("T")


@dataclass
class Unit:
    """A write in progress: its connection, its directory and the events it records.

    ``access`` gives the directory's owner; on PostgreSQL it may be a precondition the
    connection checks with the unit's first read (see :mod:`scimgate.store.precondition`),
    so it is read when an event is recorded, not when the unit opens."""

    conn: Conn
    directory_id: str
    access: Callable[[], DirectoryAccess]
    events: list[Event] = field(default_factory=list)
    _occurred_at: datetime | None = field(default=None, repr=False)
    """One instant for every event of the unit: they commit together."""

    @property
    def organization_id(self) -> str:
        return self.access().organization_id

    written: int = 0
    """How many of ``events`` the database holds already (a finisher wrote them)."""

    @property
    def occurred_at(self) -> datetime:
        """The instant of the unit's events (fixed on first use)."""
        if self._occurred_at is None:
            self._occurred_at = datetime.now(UTC)
        return self._occurred_at

    def event(self, type_: str, data: dict[str, Any], event_id: str | None = None) -> Event:
        """One event of this unit, not recorded yet."""
        directory = self.access()
        return outbox.new_event(
            type_,
            self.directory_id,
            directory.organization_id,
            data,
            directory.organization_external_id,
            self.occurred_at,
            event_id,
        )

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        self.events.append(self.event(type_, data))

    def recorded(self, written: list[Event]) -> None:
        """Events a statement of the unit inserted itself: published after the commit,
        not inserted again."""
        assert self.written == len(self.events), "events recorded after unwritten ones"
        self.events.extend(written)
        self.written = len(self.events)


class Declined(Exception):
    """A unit's one-round-trip form met a case it leaves to the ordinary one (a member
    that is not a user, say): it changed nothing. Run the unit again the ordinary way."""


async def run_unit(
    db: Database,
    bus: EventBus | None,
    open_unit: Callable[[Conn], Awaitable[Unit]],
    work: Callable[[Unit], Awaitable[T]],
) -> T:
    """Run ``work`` in a (retried) write transaction; publish its events after commit.

    ``open_unit`` makes the unit from the transaction's connection: the SCIM layer
    authenticates there, so a write costs one connection, not two."""

    async def attempt(conn: Conn) -> tuple[T, list[Event]]:
        unit = await open_unit(conn)
        result = await work(unit)
        await outbox.write(conn, unit.events[unit.written :])
        return result, unit.events

    result, events = await db.transact(attempt)
    if bus is not None and events:
        await bus.publish(events)
    return result
