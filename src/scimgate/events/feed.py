"""Reading the event feed in commit order, with an opaque cursor.

Order is (txid, seq). On PostgreSQL, sequence values are taken at INSERT time but become
visible at COMMIT, so ``seq > cursor`` alone would skip an event whose transaction
committed after a later one. The feed therefore only serves events of transactions older
than the oldest one still running (``pg_snapshot_xmin``): once served, nothing can appear
before them. SQLite serialises writers, so its ``seq`` is commit order and txid is 0.

Transaction ids follow each row's commit order only because every change to a user or
group row checks that its last writer is not newer (:mod:`scimgate.store.feed_order`):
PostgreSQL alone can give the later of two writers of a row the older id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Text, cast, func, select, tuple_

from scimgate.events.outbox import Event
from scimgate.store.connections import Conn
from scimgate.store.tables import events, organizations


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Cursor:
    txid: int
    seq: int

    def encode(self) -> str:
        return f"{self.txid}-{self.seq}"

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        try:
            txid, seq = (int(part) for part in raw.split("-", 1))
        except ValueError:
            raise InvalidCursor(f"not a cursor from this feed: {raw!r}") from None
        if txid < 0 or seq < 0:
            raise InvalidCursor(f"not a cursor from this feed: {raw!r}")
        return cls(txid, seq)


START = Cursor(0, 0)


def _visible(conn: Conn) -> Any:
    if conn.dialect.name == "postgresql":
        xmin = cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)
        return events.c.txid < xmin
    return None


def _event(row: Any) -> Event:
    return Event(
        id=row.id,
        type=row.type,
        directory_id=row.directory_id,
        organization_id=row.organization_id,
        occurred_at=row.occurred_at,
        data=getattr(row, "data", {}),
        seq=row.seq,
        txid=row.txid,
        organization_external_id=row.external_id,
    )


async def read(
    conn: Conn,
    *,
    after: Cursor = START,
    limit: int = 100,
    directory_id: str | None = None,
    organization_id: str | None = None,
    types: list[str] | None = None,
    with_data: bool = True,
) -> tuple[list[Event], Cursor]:
    """Events after ``after`` in commit order, and the cursor to resume from.

    The returned cursor advances past every event read, so a consumer that always passes
    it back sees each event exactly once. ``with_data=False`` leaves ``data`` empty (the
    webhook dispatcher routes events without decoding each one's document).
    """
    columns = [c for c in events.c if with_data or c.name != "data"]
    query = (
        select(*columns, organizations.c.external_id)
        .outerjoin(organizations, organizations.c.id == events.c.organization_id)
        .where(tuple_(events.c.txid, events.c.seq) > tuple_(after.txid, after.seq))
        .order_by(events.c.txid, events.c.seq)
        .limit(limit)
    )
    visible = _visible(conn)
    if visible is not None:
        query = query.where(visible)
    if directory_id is not None:
        query = query.where(events.c.directory_id == directory_id)
    if organization_id is not None:
        query = query.where(events.c.organization_id == organization_id)
    if types:
        query = query.where(events.c.type.in_(types))
    found = [_event(r) for r in await conn.execute(query)]
    last = found[-1] if found else None
    cursor = Cursor(last.txid or 0, last.seq or 0) if last else after
    return found, cursor
