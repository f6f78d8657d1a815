"""User storage: one row per user, the canonical SCIM document in ``data``.

The indexed columns (userName key, externalId, displayName, active) are derived from the
document on every write, here and only here, so they can never drift from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError

from scimgate.directory import records
from scimgate.directory.groups import leave_groups
from scimgate.directory.keys import fold
from scimgate.directory.normalized import changed_attributes, normalized_user
from scimgate.directory.records import Page, ResourceRecord
from scimgate.directory.tenancy import utcnow
from scimgate.directory.unit import Unit
from scimgate.errors import Conflict
from scimgate.store.connections import Conn, OnError
from scimgate.store.ids import ordered_id
from scimgate.store.prepared import Prepared
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


# Hot statements are built once: SQLAlchemy then skips construction and cache-key
# generation on every execution (about 4x cheaper per statement; see docs/performance.md).
_SELECT = select(*_RECORD_COLUMNS).where(
    users.c.directory_id == bindparam("directory_id"), users.c.id == bindparam("user_id")
)
_GET = Prepared(_SELECT)
_DELETE = Prepared(
    delete(users).where(
        users.c.directory_id == bindparam("directory_id"), users.c.id == bindparam("id")
    )
)
_GET_FOR_UPDATE = Prepared(_SELECT.with_for_update())
_INSERT = Prepared(users.insert(), column_keys=tuple(c.name for c in users.c), deferrable=True)
_UPDATE = Prepared(
    update(users)
    .where(users.c.id == bindparam("b_id"))
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


async def get(
    conn: Conn, directory_id: str, user_id: str, *, for_update: bool = False
) -> ResourceRecord | None:
    row = (
        await conn.execute(
            _GET_FOR_UPDATE if for_update else _GET,
            {"directory_id": directory_id, "user_id": user_id},
        )
    ).first()
    return _record(row) if row else None


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
        current.id, current.directory_id, doc, current.version + 1, current.created_at, now
    )
    user = normalized_user(record, unit.organization_id)
    changed = [a for a in changed_attributes(current.doc, doc) if a != "active"]
    if changed:
        unit.emit("user.updated", {"user": user, "changed": changed})
    was_active = current.doc.get("active", True) is not False
    if was_active != user["active"]:
        unit.emit("user.reactivated" if user["active"] else "user.deactivated", {"user": user})
    return record


async def delete_user(unit: Unit, current: ResourceRecord) -> None:
    """Delete a user and (by cascade) its memberships. The groups it left get a new
    version and a ``group.member_removed`` event each, then ``user.deleted``."""
    await leave_groups(unit, current.id, "User")
    await unit.conn.execute(_DELETE, {"directory_id": unit.directory_id, "id": current.id})
    unit.emit("user.deleted", {"user": normalized_user(current, unit.organization_id)})


async def search(
    conn: Conn,
    directory_id: str,
    where: records.Where,
    order_by: Sequence[ColumnElement[Any]],
    offset: int,
    limit: int,
) -> Page:
    """One page of users matching ``where``; ``limit=0`` counts only."""
    return await records.search(conn, users, directory_id, where, order_by, offset, limit)


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
