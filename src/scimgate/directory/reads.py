"""Read-only queries behind the management API: organizations, directories, users,
groups and memberships, each paged with an opaque keyset cursor.

Keyset paging (``WHERE (created_at, id) > cursor ORDER BY created_at, id LIMIT n``) costs
the same on page 1000 as on page 1 and never skips or repeats a row that stays put,
unlike OFFSET. Every query walks an index in its order:

* users and groups of one directory: ``(directory_id, created_at, id)``; a scope of
  several directories (an organization's) runs one such walk per directory and merges
  them, rather than sorting the whole organization;
* a group's members: the membership primary key ``(group_id, member_id)``, so a page of a
  100k-member group reads one page of index entries, never the member list;
* a user's groups: ``ix_group_members_user``.

``updated_since`` orders by ``(updated_at, id)`` so that a sync job can resume from the
last change it saw; a user changed while paging moves to the end and is seen again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, select, true, tuple_, union_all

from scimgate.directory import users as user_store
from scimgate.directory.keys import fold
from scimgate.directory.normalized import normalized_group, normalized_user
from scimgate.directory.records import ResourceRecord, record_columns, record_from_row
from scimgate.directory.tenancy import (
    DIRECTORY_COLUMNS,
    Directory,
    Organization,
    directory_from_row,
    organization_from_row,
)
from scimgate.errors import InvalidInput, NotFound
from scimgate.store.connections import Conn
from scimgate.store.tables import directories, group_members, groups, organizations, users

MAX_SCOPE_DIRECTORIES = 200
"""A scope wider than this is refused: each directory is one index walk per page."""


class InvalidCursor(InvalidInput):
    """A cursor that this query did not issue (or that was tampered with)."""


# -- cursors -------------------------------------------------------------------------------

_BY_CREATED = "c"
_BY_UPDATED = "u"
_BY_ID = "i"


def encode_cursor(kind: str, values: Sequence[Any]) -> str:
    """Opaque to clients: base64url of the order kind and the last row's sort key."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps({"o": kind, "k": plain}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> tuple[Any, ...]:
    """The sort key a cursor carries; InvalidCursor if it is not one of ours for this
    order (e.g. a cursor from a listing without ``updated_since`` passed to one with)."""
    bad = InvalidCursor("invalid cursor: pass back the next_cursor of a previous page")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError):
        raise bad from None
    if not isinstance(doc, dict) or doc.get("o") != kind or not isinstance(doc.get("k"), list):
        raise bad
    values = doc["k"]
    expected = 1 if kind == _BY_ID else 2
    if len(values) != expected or not all(isinstance(v, str) for v in values):
        raise bad
    if kind == _BY_ID:
        return (values[0],)
    try:
        stamp = datetime.fromisoformat(values[0])
    except ValueError:
        raise bad from None
    if stamp.tzinfo is None:
        raise bad
    return stamp, values[1]


@dataclass(frozen=True)
class ReadPage:
    """One page: the items in order and the cursor of the next page (None: last page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def _page(
    rows: Sequence[Any], limit: int, kind: str, key: Callable[[Any], Sequence[Any]]
) -> tuple[list[Any], str | None]:
    """Trim the look-ahead row; it only says whether another page exists."""
    if len(rows) <= limit:
        return list(rows), None
    kept = list(rows[:limit])
    return kept, encode_cursor(kind, key(kept[-1]))


def _after(columns: Sequence[ColumnElement[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    if len(columns) == 1:
        single: ColumnElement[bool] = columns[0] > values[0]
        return single
    return tuple_(*columns) > tuple_(*values)


# -- scope ---------------------------------------------------------------------------------


async def directory_scope(
    conn: Conn,
    *,
    directory_id: str | None = None,
    organization_id: str | None = None,
    organization_external_id: str | None = None,
) -> list[str] | None:
    """The directory ids the given filters allow (ANDed), or None when none was given.
    An unknown organization or directory gives an empty scope: a filter, not a lookup."""
    if directory_id is None and organization_id is None and organization_external_id is None:
        return None
    query = select(directories.c.id).order_by(directories.c.id)
    if directory_id is not None:
        query = query.where(directories.c.id == directory_id)
    if organization_id is not None:
        query = query.where(directories.c.organization_id == organization_id)
    if organization_external_id is not None:
        query = query.join(
            organizations, organizations.c.id == directories.c.organization_id
        ).where(organizations.c.external_id == organization_external_id)
    scope = list((await conn.execute(query.limit(MAX_SCOPE_DIRECTORIES + 1))).scalars())
    if len(scope) > MAX_SCOPE_DIRECTORIES:
        raise InvalidInput(
            f"this filter spans more than {MAX_SCOPE_DIRECTORIES} directories; "
            "filter by directory_id"
        )
    return scope


async def _organization_ids(conn: Conn, directory_ids: set[str]) -> dict[str, str]:
    if not directory_ids:
        return {}
    rows = await conn.execute(
        select(directories.c.id, directories.c.organization_id).where(
            directories.c.id.in_(sorted(directory_ids))
        )
    )
    return {r.id: r.organization_id for r in rows}


async def _merged(
    conn: Conn,
    scope: Sequence[str],
    build: Callable[[str], Select[Any]],
    order: Sequence[str],
    limit: int,
) -> list[Any]:
    """Run ``build(directory_id)`` (ordered, limited) per directory and merge the results
    in ``order``: each part walks its directory's index; the merge sorts at most
    ``len(scope) * limit`` rows."""
    if not scope:
        return []
    if len(scope) == 1:
        return list(await conn.execute(build(scope[0])))
    parts = [select(*build(d).subquery().c) for d in scope]
    merged = union_all(*parts).subquery()
    query = select(*merged.c).order_by(*(merged.c[name] for name in order)).limit(limit)
    return list(await conn.execute(query))


# -- organizations and directories ----------------------------------------------------------


async def list_organizations(
    conn: Conn,
    *,
    external_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Organization], str | None]:
    keys = (organizations.c.created_at, organizations.c.id)
    query = select(organizations).order_by(*keys).limit(limit + 1)
    if external_id is not None:
        query = query.where(organizations.c.external_id == external_id)
    if cursor is not None:
        query = query.where(_after(keys, decode_cursor(cursor, _BY_CREATED)))
    rows, next_cursor = _page(
        list(await conn.execute(query)), limit, _BY_CREATED, lambda r: (r.created_at, r.id)
    )
    return [organization_from_row(r) for r in rows], next_cursor


async def get_organization(conn: Conn, organization_id: str) -> Organization:
    """By id only (``Tenancy.get_organization`` also matches external ids)."""
    row = (
        await conn.execute(select(organizations).where(organizations.c.id == organization_id))
    ).first()
    if row is None:
        raise NotFound(f"no organization with id {organization_id!r}")
    return organization_from_row(row)


async def get_organization_by_external_id(conn: Conn, external_id: str) -> Organization:
    row = (
        await conn.execute(select(organizations).where(organizations.c.external_id == external_id))
    ).first()
    if row is None:
        raise NotFound(f"no organization with external id {external_id!r}")
    return organization_from_row(row)


async def list_directories(
    conn: Conn,
    *,
    organization_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Directory], str | None]:
    keys = (directories.c.created_at, directories.c.id)
    query = select(*DIRECTORY_COLUMNS).order_by(*keys).limit(limit + 1)
    if organization_id is not None:
        query = query.where(directories.c.organization_id == organization_id)
    if cursor is not None:
        query = query.where(_after(keys, decode_cursor(cursor, _BY_CREATED)))
    rows, next_cursor = _page(
        list(await conn.execute(query)), limit, _BY_CREATED, lambda r: (r.created_at, r.id)
    )
    found = [directory_from_row(r) for r in rows]
    return found, next_cursor


# -- users ---------------------------------------------------------------------------------

_USER_COLUMNS = record_columns(users)
_GROUP_COLUMNS = record_columns(groups)
_record = record_from_row


@dataclass(frozen=True)
class UserFilter:
    """Filters on the users listing; all given ones must hold."""

    scope: list[str] | None = None
    """Directory ids (from :func:`directory_scope`); None: every directory."""
    external_id: str | None = None
    group_id: str | None = None
    """Direct members of this group."""
    active: bool | None = None
    updated_since: datetime | None = None


async def _normalized_users(
    conn: Conn, records: list[ResourceRecord], include_groups: bool
) -> list[dict[str, Any]]:
    orgs = await _organization_ids(conn, {r.directory_id for r in records})
    memberships = (
        await user_store.groups_of(conn, [r.id for r in records]) if include_groups else None
    )
    return [
        normalized_user(
            r,
            orgs.get(r.directory_id, ""),
            [gid for gid, _ in memberships[r.id]] if memberships is not None else None,
        )
        for r in records
    ]


def _user_conditions(f: UserFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.external_id is not None:
        conditions.append(users.c.external_id == f.external_id)
    if f.active is not None:
        conditions.append(users.c.active.is_(f.active))
    if f.updated_since is not None:
        conditions.append(users.c.updated_at >= f.updated_since)
    return conditions


async def _resource_page(
    conn: Conn,
    table: Table,
    columns: Sequence[ColumnElement[Any]],
    conditions: list[ColumnElement[bool]],
    kind: str,
    scope: Sequence[str] | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One keyset page of users or groups after ``cursor``, by (created_at | updated_at,
    id): one index walk per directory of the scope, merged (or one walk over all)."""
    stamp = table.c.updated_at if kind == _BY_UPDATED else table.c.created_at
    keys = (stamp, table.c.id)
    if cursor is not None:
        conditions = [*conditions, _after(keys, decode_cursor(cursor, kind))]

    def build(directory_id: str | None) -> Select[Any]:
        query = select(*columns).where(*conditions)
        if directory_id is not None:
            query = query.where(table.c.directory_id == directory_id)
        return query.order_by(*keys).limit(limit + 1)

    if scope is None:
        rows = list(await conn.execute(build(None)))
    else:
        order = (stamp.name, "id")
        rows = await _merged(conn, scope, build, order, limit + 1)
    return _page(rows, limit, kind, lambda r: (getattr(r, stamp.name), r.id))


async def list_users(
    conn: Conn,
    f: UserFilter,
    *,
    limit: int = 100,
    cursor: str | None = None,
    include_groups: bool = False,
) -> ReadPage:
    if f.scope is not None and not f.scope:
        return ReadPage([], None)
    if f.group_id is not None:
        return await _users_in_group(conn, f, limit, cursor, include_groups)
    kind = _BY_UPDATED if f.updated_since is not None else _BY_CREATED
    kept, next_cursor = await _resource_page(
        conn, users, _USER_COLUMNS, _user_conditions(f), kind, f.scope, limit, cursor
    )
    items = await _normalized_users(conn, [_record(r) for r in kept], include_groups)
    return ReadPage(items, next_cursor)


async def _users_in_group(
    conn: Conn,
    f: UserFilter,
    limit: int,
    cursor: str | None,
    include_groups: bool,
) -> ReadPage:
    """Walks the membership primary key (group_id, member_id): ordered by user id."""
    query = (
        select(*_USER_COLUMNS)
        .select_from(group_members.join(users, users.c.id == group_members.c.user_id))
        .where(group_members.c.group_id == f.group_id, *_user_conditions(f))
        .order_by(group_members.c.member_id)
        .limit(limit + 1)
    )
    if f.scope is not None:
        query = query.where(users.c.directory_id.in_(f.scope))
    if cursor is not None:
        query = query.where(group_members.c.member_id > decode_cursor(cursor, _BY_ID)[0])
    rows, next_cursor = _page(list(await conn.execute(query)), limit, _BY_ID, lambda r: (r.id,))
    items = await _normalized_users(conn, [_record(r) for r in rows], include_groups)
    return ReadPage(items, next_cursor)


async def get_user(conn: Conn, user_id: str, *, include_groups: bool = False) -> dict[str, Any]:
    row = (await conn.execute(select(*_USER_COLUMNS).where(users.c.id == user_id))).first()
    if row is None:
        raise NotFound(f"no user with id {user_id!r}")
    return (await _normalized_users(conn, [_record(row)], include_groups))[0]


async def groups_of_user(
    conn: Conn, user_id: str, *, limit: int = 100, cursor: str | None = None
) -> ReadPage:
    """The groups a user is a direct member of, ordered by group id."""
    exists = (await conn.execute(select(users.c.id).where(users.c.id == user_id))).first()
    if exists is None:
        raise NotFound(f"no user with id {user_id!r}")
    query = (
        select(*_GROUP_COLUMNS)
        .select_from(group_members.join(groups, groups.c.id == group_members.c.group_id))
        .where(group_members.c.user_id == user_id)
        .order_by(group_members.c.group_id)
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(group_members.c.group_id > decode_cursor(cursor, _BY_ID)[0])
    rows, next_cursor = _page(list(await conn.execute(query)), limit, _BY_ID, lambda r: (r.id,))
    return ReadPage(await _normalized_groups(conn, [_record(r) for r in rows]), next_cursor)


# -- groups --------------------------------------------------------------------------------


async def member_counts(conn: Conn, group_ids: Sequence[str]) -> dict[str, int]:
    """Direct member counts, one grouped COUNT over the membership primary key."""
    counts = dict.fromkeys(group_ids, 0)
    if not group_ids:
        return counts
    rows = await conn.execute(
        select(group_members.c.group_id, func.count())
        .where(group_members.c.group_id.in_(list(group_ids)))
        .group_by(group_members.c.group_id)
    )
    for group_id, count in rows:
        counts[group_id] = int(count)
    return counts


async def _normalized_groups(conn: Conn, records: list[ResourceRecord]) -> list[dict[str, Any]]:
    orgs = await _organization_ids(conn, {r.directory_id for r in records})
    counts = await member_counts(conn, [r.id for r in records])
    return [normalized_group(r, orgs.get(r.directory_id, ""), counts[r.id]) for r in records]


@dataclass(frozen=True)
class GroupFilter:
    scope: list[str] | None = None
    external_id: str | None = None
    display_name: str | None = None
    """Exact, case-insensitive (as SCIM compares displayName)."""
    updated_since: datetime | None = None


async def list_groups(
    conn: Conn, f: GroupFilter, *, limit: int = 100, cursor: str | None = None
) -> ReadPage:
    if f.scope is not None and not f.scope:
        return ReadPage([], None)
    kind = _BY_UPDATED if f.updated_since is not None else _BY_CREATED
    conditions: list[ColumnElement[bool]] = []
    if f.external_id is not None:
        conditions.append(groups.c.external_id == f.external_id)
    if f.display_name is not None:
        conditions.append(groups.c.display_name_key == fold(f.display_name))
    if f.updated_since is not None:
        conditions.append(groups.c.updated_at >= f.updated_since)
    kept, next_cursor = await _resource_page(
        conn, groups, _GROUP_COLUMNS, conditions, kind, f.scope, limit, cursor
    )
    return ReadPage(await _normalized_groups(conn, [_record(r) for r in kept]), next_cursor)


async def get_group(conn: Conn, group_id: str) -> dict[str, Any]:
    row = (await conn.execute(select(*_GROUP_COLUMNS).where(groups.c.id == group_id))).first()
    if row is None:
        raise NotFound(f"no group with id {group_id!r}")
    return (await _normalized_groups(conn, [_record(row)]))[0]


async def group_members_page(
    conn: Conn,
    group_id: str,
    *,
    member_type: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> ReadPage:
    """One page of a group's direct members (users and nested groups), ordered by member
    id along the membership primary key. Items: ``{"type", "id", "display", "user" |
    "group"}`` with the normalized member.

    One statement for the group, its organization, the page and its users (one snapshot,
    one round trip; four before); nested groups, rare, take two more."""
    page = (
        select(
            group_members.c.member_id,
            group_members.c.user_id,
            group_members.c.member_group_id,
            group_members.c.display,
        )
        .where(group_members.c.group_id == group_id)
        .order_by(group_members.c.member_id)
        .limit(limit + 1)
    )
    if member_type == "user":
        page = page.where(group_members.c.user_id.is_not(None))
    elif member_type == "group":
        page = page.where(group_members.c.member_group_id.is_not(None))
    if cursor is not None:
        page = page.where(group_members.c.member_id > decode_cursor(cursor, _BY_ID)[0])
    members = page.subquery("page")
    query = (
        select(
            directories.c.organization_id,
            members.c.member_id,
            members.c.member_group_id,
            members.c.display,
            *_USER_COLUMNS,  # a user member's row: its own names, as _record reads them
        )
        .select_from(
            groups.join(directories, directories.c.id == groups.c.directory_id)
            .outerjoin(members, true())  # a group without (more) members: one row of NULLs
            .outerjoin(users, users.c.id == members.c.user_id)
        )
        .where(groups.c.id == group_id)
        .order_by(members.c.member_id)
    )
    found = list(await conn.execute(query))
    if not found:
        raise NotFound(f"no group with id {group_id!r}")
    organization_id = found[0].organization_id
    rows, next_cursor = _page(
        [r for r in found if r.member_id is not None], limit, _BY_ID, lambda r: (r.member_id,)
    )
    group_ids = [r.member_group_id for r in rows if r.member_group_id is not None]
    found_groups: dict[str, dict[str, Any]] = {}
    if group_ids:
        records = [
            _record(r)
            for r in await conn.execute(select(*_GROUP_COLUMNS).where(groups.c.id.in_(group_ids)))
        ]
        found_groups = {g["id"]: g for g in await _normalized_groups(conn, records)}
    items: list[dict[str, Any]] = []
    for r in rows:
        if r.id is not None:
            user = normalized_user(_record(r), organization_id, None)
            display = r.display or user.get("display_name") or user.get("username")
            items.append({"type": "user", "id": r.member_id, "display": display, "user": user})
        elif (group := found_groups.get(r.member_group_id or "")) is not None:
            # Read committed runs each statement on a new snapshot: a nested group deleted
            # between the two statements is left out rather than failing the page.
            display = r.display or group.get("display_name")
            items.append({"type": "group", "id": r.member_id, "display": display, "group": group})
    return ReadPage(items, next_cursor)
