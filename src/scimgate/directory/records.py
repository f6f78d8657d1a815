"""What the repositories hand back: one stored resource and its bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class ResourceRecord:
    """A stored user or group: its canonical SCIM document plus the meta columns."""

    id: str
    directory_id: str
    doc: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass(frozen=True)
class Page:
    """One page of a search: the total count and the records of this page."""

    total: int
    records: list[ResourceRecord]


def record_from_row(row: Any) -> ResourceRecord:
    return ResourceRecord(
        id=row.id,
        directory_id=row.directory_id,
        doc=row.data,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def record_columns(table: Table) -> tuple[ColumnElement[Any], ...]:
    c = table.c
    return (c.id, c.directory_id, c.data, c.version, c.created_at, c.updated_at)


async def search(
    conn: AsyncConnection,
    table: Table,
    directory_id: str,
    where: ColumnElement[bool] | None,
    order_by: Sequence[ColumnElement[Any]],
    offset: int,
    limit: int,
) -> Page:
    """One page of a directory's users or groups matching ``where``; ``limit=0`` counts.

    The total rides along with the page (``count(*) OVER ()``), so a list request is one
    query; only a page past the end needs a separate count.
    """
    conditions = [table.c.directory_id == directory_id]
    if where is not None:
        conditions.append(where)
    count = select(func.count()).select_from(table).where(*conditions)
    if limit <= 0:
        return Page((await conn.execute(count)).scalar_one(), [])
    query = (
        select(*record_columns(table), func.count().over().label("total_results"))
        .where(*conditions)
        .order_by(*order_by, table.c.created_at, table.c.id)
        .offset(offset)
        .limit(limit)
    )
    rows = list(await conn.execute(query))
    if rows:
        return Page(rows[0].total_results, [record_from_row(r) for r in rows])
    total = (await conn.execute(count)).scalar_one() if offset > 0 else 0
    return Page(total, [])
