"""What the repositories hand back: one stored resource and its bookkeeping."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Integer, Table, and_, bindparam, exists, func, select

from scimgate.store.connections import Conn
from scimgate.store.prepared import Prepared, keep_warm
from scimgate.store.tables import group_members


@dataclass(frozen=True)
class ResourceRecord:
    """A stored user or group: its canonical SCIM document plus the meta columns."""

    id: str
    directory_id: str
    doc: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    groups: list[tuple[str, str]] | None = None
    """A user's groups (id, displayName) when the query read them with it, else None."""

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


@dataclass(frozen=True)
class ColumnMatch:
    """``column = value`` on one of a table's indexed columns: the filter IdPs run before
    every create (``userName eq "…"``), searched with statements built once."""

    column: str
    value: str
    member: str | None = None
    """A group's: only if it has this direct member. Entra's membership check, ``id eq "…"
    and members[value eq "…"]``."""


Where = ColumnElement[bool] | ColumnMatch | None


def _match_condition(table: Table, column: str, value: Any, member: Any) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = table.c[column] == value
    if member is None:
        return condition
    has_member = exists().where(
        group_members.c.group_id == table.c.id, group_members.c.member_id == member
    )
    return and_(condition, has_member)


def match_condition(table: Table, match: ColumnMatch) -> ColumnElement[bool]:
    """The WHERE condition of ``match``, its values bound as they are."""
    return _match_condition(table, match.column, match.value, match.member)


@dataclass(frozen=True)
class _Search:
    first_page: Any
    """The page at offset 0, without an ``OFFSET``: with an ``OFFSET`` parameter PostgreSQL
    prices a prepared statement's generic plan above any custom one and plans it anew on
    every execution, ~200 µs of its CPU per match before a create. The match's first page
    is prepared anew now and then (``replan``), so that its generic plan follows the table
    as it grows (docs/performance.md, round of 2026-12-04)."""
    page: Any
    count: Any


def _search_statements(
    table: Table, conditions: list[ColumnElement[bool]], order_by: Sequence[ColumnElement[Any]]
) -> _Search:
    conditions = [table.c.directory_id == bindparam("directory_id"), *conditions]
    first_page = (
        select(*record_columns(table), func.count().over().label("total_results"))
        .where(*conditions)
        .order_by(*order_by, table.c.created_at, table.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    return _Search(
        first_page=first_page,
        page=first_page.offset(bindparam("offset", type_=Integer)),
        count=select(func.count()).select_from(table).where(*conditions),
    )


@cache
def _match_statements(
    table: Table, column: str, extra: Any = None, member: bool = False
) -> _Search:
    condition = _match_condition(
        table, column, bindparam("value"), bindparam("member") if member else None
    )
    built = _search_statements(table, [condition], ())
    first_page, page = built.first_page, built.page
    if extra is not None:
        first_page, page = first_page.add_columns(extra), page.add_columns(extra)
    return _Search(Prepared(first_page, replan=True), Prepared(page), Prepared(built.count))


def keep_match_warm(table: Table, column: str, extra: Any = None) -> None:
    """Declare the first page of a one-column match hot (see
    :func:`~scimgate.store.prepared.keep_warm`): the match IdPs run before every create."""
    keep_warm(_match_statements(table, column, extra).first_page)


async def search(
    conn: Conn,
    table: Table,
    directory_id: str,
    where: Where,
    order_by: Sequence[ColumnElement[Any]],
    offset: int,
    limit: int,
    *,
    extra: Any = None,
    to_record: Callable[[Any], ResourceRecord] = record_from_row,
) -> Page:
    """One page of a directory's users or groups matching ``where``; ``limit=0`` counts.

    The total rides along with the page (``count(*) OVER ()``), so a list request is one
    query; only a page past the end needs a separate count. ``extra``: a column added to
    a one-column match, its rows read by ``to_record`` (other searches go without it:
    their records come from :func:`record_from_row`).
    """
    params: dict[str, Any] = {"directory_id": directory_id, "offset": offset, "limit": limit}
    if isinstance(where, ColumnMatch) and not order_by:
        statements = _match_statements(table, where.column, extra, where.member is not None)
        params["value"] = where.value
        if where.member is not None:
            params["member"] = where.member
    else:
        to_record = record_from_row
        if isinstance(where, ColumnMatch):
            where = match_condition(table, where)
        statements = _search_statements(table, [] if where is None else [where], order_by)
    if limit <= 0:
        return Page((await conn.execute(statements.count, params)).scalar_one(), [])
    page = statements.page if offset > 0 else statements.first_page
    rows = list(await conn.execute(page, params))
    if rows:
        return Page(rows[0].total_results, [to_record(r) for r in rows])
    total = (await conn.execute(statements.count, params)).scalar_one() if offset > 0 else 0
    return Page(total, [])
