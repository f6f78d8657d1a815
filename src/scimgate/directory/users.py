"""User storage: one row per user, the canonical SCIM document in ``data``.

The indexed columns (userName key, externalId, displayName, active) are derived from the
document on every write, here and only here, so they can never drift from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, ColumnElement, bindparam, delete, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles

from scimgate.directory import records
from scimgate.directory.groups import leave_groups
from scimgate.directory.keys import fold
from scimgate.directory.normalized import changed_attributes, normalized_user
from scimgate.directory.records import Page, ResourceRecord
from scimgate.directory.tenancy import utcnow
from scimgate.directory.unit import Unit
from scimgate.errors import Conflict
from scimgate.store.connections import Conn, OnError
from scimgate.store.feed_order import in_feed_order
from scimgate.store.follower import Follower
from scimgate.store.ids import ordered_id
from scimgate.store.prepared import Prepared, keep_warm
from scimgate.store.tables import group_members, groups, users

_DERIVED = ("user_name", "user_name_key", "external_id", "display_name", "active", "data")


def _columns(doc: dict[str, Any]) -> dict[str, Any]:
    user_name = doc["userName"]
    active = doc.get("active")  # None (absent) stays NULL: `active eq …` won't match it
    return {
        "user_name": user_name,
        "user_name_key": fold(user_name),
        "external_id": doc.get("externalId"),
        "display_name": doc.get("displayName"),
        "active": active if isinstance(active, bool) else None,
        "data": doc,
    }


_record = records.record_from_row


_RECORD_COLUMNS = records.record_columns(users)


def _conflict(doc: dict[str, Any]) -> Conflict:
    return Conflict(f"a user with userName {doc['userName']!r} already exists in this directory")


def _clash(doc: dict[str, Any]) -> OnError:
    """The INSERT or UPDATE of a user fails on the one unique key it can clash on: its
    userName in the directory (ids are new). Deferred on PostgreSQL, so the error may
    arrive with COMMIT; it is still this 409."""
    return lambda exc: _conflict(doc) if isinstance(exc, IntegrityError) else None


async def insert(unit: Unit, doc: dict[str, Any]) -> ResourceRecord:
    now = utcnow()
    row = {
        "id": ordered_id(),
        "directory_id": unit.directory_id,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        **_columns(doc),
    }
    await unit.conn.execute(_INSERT, row, on_error=_clash(doc))
    record = ResourceRecord(row["id"], unit.directory_id, doc, 1, now, now)
    unit.emit("user.created", {"user": normalized_user(record, unit.organization_id)})
    return record


class _GroupsJson(ColumnElement[Any]):
    """A user's groups as a JSON array of ``[id, displayName]``, as a correlated subquery
    of a ``users`` row: one user read with its groups is one statement (on PostgreSQL one
    round trip, not two). Ordered by displayName in the database, in its collation, as
    :func:`groups_of` orders them."""

    inherit_cache = True
    type = JSON()


_MEMBERSHIPS = group_members.join(groups, groups.c.id == group_members.c.group_id)
_GROUPS_JSON_PG = (
    select(
        func.coalesce(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(groups.c.id, groups.c.display_name),
                    groups.c.display_name,
                )
            ),
            literal_column("'[]'::json"),
        )
    )
    .select_from(_MEMBERSHIPS)
    .where(group_members.c.user_id == users.c.id)
    .scalar_subquery()
)
# SQLite 3.40 has no ORDER BY inside an aggregate: it aggregates an ordered subquery
# (which its query flattener leaves alone under an aggregate).
_ORDERED_SQLITE = (
    select(groups.c.id, groups.c.display_name)
    .select_from(_MEMBERSHIPS)
    .where(group_members.c.user_id == users.c.id)
    .order_by(groups.c.display_name)
    .correlate(users)
    .subquery("memberships")
)
_GROUPS_JSON_SQLITE = select(
    func.json_group_array(func.json_array(_ORDERED_SQLITE.c.id, _ORDERED_SQLITE.c.display_name))
).scalar_subquery()


@compiles(_GroupsJson)
def _groups_json_sqlite(_element: Any, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(_GROUPS_JSON_SQLITE, **kw))


@compiles(_GroupsJson, "postgresql")
def _groups_json_pg(_element: Any, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(_GROUPS_JSON_PG, **kw))


GROUPS_COLUMN = _GroupsJson().label("groups")
"""Add to a ``users`` SELECT to read each user's groups with it (see :func:`with_groups`)."""


def with_groups(row: Any) -> ResourceRecord:
    """A record from a row that carries :data:`GROUPS_COLUMN`."""
    return dataclasses.replace(
        _record(row), groups=[(group_id, name) for group_id, name in row.groups]
    )


# Hot statements are built once: SQLAlchemy then skips construction and cache-key
# generation on every execution (about 4x cheaper per statement; see docs/performance.md).
_SELECT = select(*_RECORD_COLUMNS).where(
    users.c.directory_id == bindparam("directory_id"), users.c.id == bindparam("user_id")
)
_GET = Prepared(_SELECT)
_SELECT_WITH_GROUPS = select(*_RECORD_COLUMNS, GROUPS_COLUMN).where(
    users.c.directory_id == bindparam("directory_id"), users.c.id == bindparam("user_id")
)
_GET_WITH_GROUPS = Prepared(_SELECT_WITH_GROUPS)
_GET_FOR_UPDATE_WITH_GROUPS = Prepared(_SELECT_WITH_GROUPS.with_for_update(of=users))
_DELETE = Prepared(
    delete(users).where(
        users.c.directory_id == bindparam("directory_id"),
        users.c.id == bindparam("id"),
        in_feed_order(users),
    ),
    deferrable=True,  # the caller holds the row lock: nothing to read back
)
_GET_FOR_UPDATE = Prepared(_SELECT.with_for_update())
_INSERT = Prepared(users.insert(), column_keys=tuple(c.name for c in users.c), deferrable=True)
_UPDATE = Prepared(
    update(users)
    .where(users.c.id == bindparam("b_id"), in_feed_order(users))
    .values(
        version=bindparam("b_version"),
        updated_at=bindparam("b_updated_at"),
        **{name: bindparam(f"b_{name}") for name in _DERIVED},
    ),
    deferrable=True,
)
_GROUPS = select(group_members.c.user_id, groups.c.id, groups.c.display_name).join(
    groups, groups.c.id == group_members.c.group_id
)
_GROUPS_OF = _GROUPS.where(
    group_members.c.user_id.in_(bindparam("user_ids", expanding=True))
).order_by(groups.c.display_name)
_GROUPS_OF_ONE = Prepared(
    _GROUPS.where(group_members.c.user_id == bindparam("user_id")).order_by(groups.c.display_name)
)
keep_warm(_GET, _GET_WITH_GROUPS, _GET_FOR_UPDATE, _GET_FOR_UPDATE_WITH_GROUPS, _INSERT, _UPDATE)
keep_warm(_DELETE, _GROUPS_OF_ONE)
for _column in ("user_name_key", "external_id"):  # the match before a create
    records.keep_match_warm(users, _column, GROUPS_COLUMN)


async def get(
    conn: Conn,
    directory_id: str,
    user_id: str,
    *,
    for_update: bool = False,
    groups: bool = False,
) -> ResourceRecord | None:
    """A user; with ``groups``, its groups read in the same statement (``record.groups``)."""
    if groups:
        statement = _GET_FOR_UPDATE_WITH_GROUPS if for_update else _GET_WITH_GROUPS
    else:
        statement = _GET_FOR_UPDATE if for_update else _GET
    row = (
        await conn.execute(statement, {"directory_id": directory_id, "user_id": user_id})
    ).first()
    if row is None:
        return None
    return with_groups(row) if groups else _record(row)


async def replace(unit: Unit, current: ResourceRecord, doc: dict[str, Any]) -> ResourceRecord:
    """Store a new document for an existing user (caller holds its row lock).

    Records ``user.updated`` with the changed attribute names, and ``user.deactivated`` /
    ``user.reactivated`` when ``active`` flips (an update that only flips ``active``
    records just the latter)."""
    if doc == current.doc:
        return current
    now = utcnow()
    await unit.conn.execute(
        _UPDATE,
        {
            "b_id": current.id,
            "b_version": current.version + 1,
            "b_updated_at": now,
            **{f"b_{k}": v for k, v in _columns(doc).items()},
        },
        on_error=_clash(doc),
    )
    record = ResourceRecord(
        current.id,
        current.directory_id,
        doc,
        current.version + 1,
        current.created_at,
        now,
        current.groups,  # a user's update leaves its memberships alone
    )
    user = normalized_user(record, unit.organization_id)
    changed = [a for a in changed_attributes(current.doc, doc) if a != "active"]
    if changed:
        unit.emit("user.updated", {"user": user, "changed": changed})
    was_active = current.doc.get("active", True) is not False
    if was_active != user["active"]:
        unit.emit("user.reactivated" if user["active"] else "user.deactivated", {"user": user})
    return record


async def delete_user(unit: Unit, current: ResourceRecord, leaving: Follower | None = None) -> None:
    """Delete a user and (by cascade) its memberships. The groups it left get a new
    version and a ``group.member_removed`` event each, then ``user.deleted``.
    ``leaving``: its :func:`~scimgate.directory.groups.leave_ahead`, already sent."""
    await leave_groups(unit, current.id, "User", leaving)
    await unit.conn.execute(_DELETE, {"directory_id": unit.directory_id, "id": current.id})
    unit.emit("user.deleted", {"user": normalized_user(current, unit.organization_id)})


async def search(
    conn: Conn,
    directory_id: str,
    where: records.Where,
    order_by: Sequence[ColumnElement[Any]],
    offset: int,
    limit: int,
    *,
    groups: bool = False,
) -> Page:
    """One page of users matching ``where``; ``limit=0`` counts only. With ``groups``, a
    match on one column (the match before a create) reads each user's groups with it."""
    return await records.search(
        conn,
        users,
        directory_id,
        where,
        order_by,
        offset,
        limit,
        extra=GROUPS_COLUMN if groups else None,
        to_record=with_groups if groups else _record,
    )


async def groups_of(conn: Conn, user_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """Direct group memberships (group id, displayName) of each user, for ``User.groups``."""
    found: dict[str, list[tuple[str, str]]] = {uid: [] for uid in user_ids}
    if not user_ids:
        return found
    if len(user_ids) == 1:
        rows = await conn.execute(_GROUPS_OF_ONE, {"user_id": user_ids[0]})
    else:
        rows = await conn.execute(_GROUPS_OF, {"user_ids": list(user_ids)})
    for user_id, group_id, display_name in rows:
        found[user_id].append((group_id, display_name))
    return found
