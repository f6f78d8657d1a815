"""Group storage. Members live in ``group_members``, never inside the group's document.

Adding or removing k members costs O(k) statements on indexed keys, whatever the group's
size, and reading a group without its members never touches the membership table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    String,
    Table,
    and_,
    any_,
    bindparam,
    column,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Boolean, Integer

from scimgate.directory import records
from scimgate.directory.keys import fold
from scimgate.directory.normalized import changed_attributes, normalized_group
from scimgate.directory.records import Page, ResourceRecord
from scimgate.directory.tenancy import utcnow
from scimgate.directory.unit import Declined, Unit
from scimgate.errors import InvalidInput
from scimgate.events.outbox import new_event_id
from scimgate.store import feed_order
from scimgate.store.connections import Conn
from scimgate.store.feed_order import in_feed_order, queued
from scimgate.store.follower import Finisher, Follower
from scimgate.store.ids import ordered_id
from scimgate.store.prepared import Prepared, keep_warm
from scimgate.store.tables import UTCDateTime, group_members, groups, users

CHUNK = 500
"""Ids per IN-list: well under both backends' parameter limits."""


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])


def _columns(doc: dict[str, Any]) -> dict[str, Any]:
    display_name = doc["displayName"]
    return {
        "display_name": display_name,
        "display_name_key": fold(display_name),
        "external_id": doc.get("externalId"),
        "data": doc,
    }


_RECORD_COLUMNS = records.record_columns(groups)


_record = records.record_from_row


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
    await unit.conn.execute(_INSERT, row)
    record = ResourceRecord(row["id"], unit.directory_id, doc, 1, now, now)
    unit.emit("group.created", {"group": normalized_group(record, unit.organization_id)})
    return record


# Hot statements are built once (see users.py).
_SELECT = select(*_RECORD_COLUMNS).where(
    groups.c.directory_id == bindparam("directory_id"), groups.c.id == bindparam("group_id")
)
_GET = Prepared(_SELECT)
# Concurrent member PATCHes of one group are common: they queue first (feed_order.queued).
_GET_FOR_UPDATE = Prepared(_SELECT.where(queued(groups)).with_for_update())
# No unique key to clash with: a create's INSERT can ride with COMMIT (one round trip).
_INSERT = Prepared(groups.insert(), column_keys=tuple(c.name for c in groups.c), deferrable=True)
_TOUCH_STATEMENT = (
    update(groups)
    .where(groups.c.id == bindparam("b_id"), in_feed_order(groups))
    .values(version=bindparam("b_version"), updated_at=bindparam("b_updated_at"))
)
_TOUCH = Prepared(_TOUCH_STATEMENT, deferrable=True)  # a version bump: nothing to read
_UPDATE = Prepared(
    _TOUCH_STATEMENT.values(
        **{
            name: bindparam(f"b_{name}")
            for name in ("display_name", "display_name_key", "external_id", "data")
        }
    )
)


async def get(
    conn: Conn, directory_id: str, group_id: str, *, for_update: bool = False
) -> ResourceRecord | None:
    row = (
        await conn.execute(
            _GET_FOR_UPDATE if for_update else _GET,
            {"directory_id": directory_id, "group_id": group_id},
        )
    ).first()
    return _record(row) if row else None


async def replace(
    unit: Unit, current: ResourceRecord, doc: dict[str, Any] | None = None
) -> ResourceRecord:
    """Store a new document (records ``group.updated``), or with ``doc=None`` only bump
    version and lastModified after a membership change. The caller holds the row lock."""
    now = utcnow()
    params: dict[str, Any] = {
        "b_id": current.id,
        "b_version": current.version + 1,
        "b_updated_at": now,
    }
    if doc is None:
        await unit.conn.execute(_TOUCH, params)
    else:
        params.update({f"b_{k}": v for k, v in _columns(doc).items()})
        await unit.conn.execute(_UPDATE, params)
    record = ResourceRecord(
        current.id,
        current.directory_id,
        doc if doc is not None else current.doc,
        current.version + 1,
        current.created_at,
        now,
    )
    if doc is not None and doc != current.doc:
        unit.emit(
            "group.updated",
            {
                "group": normalized_group(record, unit.organization_id),
                "changed": changed_attributes(current.doc, doc),
            },
        )
    return record


def _leave(column: ColumnElement[Any]) -> Prepared:
    return Prepared(
        update(groups)
        .where(groups.c.id.in_(select(group_members.c.group_id).where(column == bindparam("m"))))
        .where(groups.c.directory_id == bindparam("directory_id"), in_feed_order(groups))
        .values(version=groups.c.version + 1, updated_at=bindparam("now"))
        .returning(groups.c.id, groups.c.display_name)
    )


_LEAVE = {"User": _leave(group_members.c.user_id), "Group": _leave(group_members.c.member_group_id)}
_DELETE = Prepared(
    delete(groups).where(
        groups.c.directory_id == bindparam("directory_id"),
        groups.c.id == bindparam("id"),
        in_feed_order(groups),
    ),
    deferrable=True,  # the caller holds the row lock: nothing to read back
)


def leave_ahead(unit: Unit, member_id: str, member_type: str) -> Follower:
    """Before a user's or group's row lock is taken for its delete: the version bump of
    the groups it leaves, to follow the lock in its message (:meth:`Conn.follow`); give
    it to :func:`leave_groups`. Scoped to the unit's directory like the lock."""
    params = {"m": member_id, "directory_id": unit.directory_id, "now": utcnow()}
    return unit.conn.follow(_LEAVE[member_type], params)


async def leave_groups(
    unit: Unit, member_id: str, member_type: str, ahead: Follower | None = None
) -> None:
    """Before a user or group is deleted (its memberships go by cascade): give every group
    it belonged to a new version and a ``group.member_removed`` event. ``ahead``: the
    :func:`leave_ahead` of this member, already sent."""
    if ahead is None:
        ahead = leave_ahead(unit, member_id, member_type)
    left = await ahead.rows()
    reason = "user_deleted" if member_type == "User" else "group_deleted"
    for group_id, display_name in left:
        unit.emit(
            "group.member_removed",
            {
                "group": {"id": group_id, "display_name": display_name},
                "member": {"id": member_id, "type": member_type},
                "reason": reason,
            },
        )


async def delete_group(
    unit: Unit, current: ResourceRecord, leaving: Follower | None = None
) -> None:
    """Delete a group; its memberships (both ways) go by cascade. Groups it was a member
    of get ``group.member_removed``; its own members get no per-member event (the
    ``group.deleted`` event implies them). ``leaving``: its :func:`leave_ahead`."""
    await leave_groups(unit, current.id, "Group", leaving)
    await unit.conn.execute(_DELETE, {"directory_id": unit.directory_id, "id": current.id})
    unit.emit("group.deleted", {"group": normalized_group(current, unit.organization_id)})


async def search(
    conn: Conn,
    directory_id: str,
    where: records.Where,
    order_by: Sequence[ColumnElement[Any]],
    offset: int,
    limit: int,
) -> Page:
    """One page of groups matching ``where``; ``limit=0`` counts only."""
    return await records.search(conn, groups, directory_id, where, order_by, offset, limit)


def _lookup(table: Table, *, array: bool = False) -> Prepared:
    """Rows among ``ids`` with their directory and whether each is already a member.

    The directory is checked by the caller, not in SQL: with ``directory_id = ?`` next to
    ``id IN (…)``, SQLite (before ANALYZE) walks the directory's index, every user of a
    100,000-user directory per PATCH, instead of probing the primary key.

    One statement built once, whatever the number of ids: ``id = ANY(:ids)`` with one
    array parameter on PostgreSQL, ``id IN (SELECT value FROM json_each(:ids))`` with one
    JSON text on SQLite (an expanding ``IN`` would go through SQLAlchemy's execution
    path on every PATCH, ~15 % of adding ten members)."""
    present = group_members.alias("present")
    if array:
        ids = table.c.id == any_(bindparam("ids", type_=ARRAY(String)))
    else:
        listed = func.json_each(bindparam("ids", type_=JSON)).table_valued("value")
        ids = table.c.id.in_(select(listed.c.value).scalar_subquery())
    return Prepared(
        select(table.c.id, table.c.directory_id, present.c.member_id.is_not(None))
        .outerjoin(
            present,
            and_(present.c.group_id == bindparam("group_id"), present.c.member_id == table.c.id),
        )
        .where(ids)
    )


# Built once per backend; each compiles once per dialect.
_USERS_IN = _lookup(users)
_GROUPS_IN = _lookup(groups)
_USERS_ANY = _lookup(users, array=True)
_GROUPS_ANY = _lookup(groups, array=True)


def _lookups(conn: Conn) -> tuple[Any, Any]:
    """The users and groups look-ups for this connection's backend."""
    if conn.dialect.name == "postgresql":
        return _USERS_ANY, _GROUPS_ANY
    return _USERS_IN, _GROUPS_IN


_ADD = Prepared(
    group_members.insert(),
    column_keys=(
        "group_id",
        "member_id",
        "directory_id",
        "user_id",
        "member_group_id",
        "display",
        "created_at",
    ),
)


@dataclass(frozen=True)
class Ahead:
    """The first statement of a member change, sent with the group's row lock (see
    :func:`send_ahead`): ``kind`` ``add`` or ``remove`` of exactly ``ids``."""

    kind: str
    ids: tuple[str, ...]
    follower: Follower

    def rows_for(self, kind: str, ids: Sequence[str]) -> Follower | None:
        """Its statement, if it is the one this change of ``ids`` starts with."""
        return self.follower if kind == self.kind and tuple(ids) == self.ids else None


def send_ahead(unit: Unit, group_id: str, kind: str, member_ids: Sequence[str]) -> Ahead | None:
    """Before the group's row lock is taken: have the first statement of adding (the
    users look-up) or removing one member (its ``DELETE``) follow the lock in its message
    (:meth:`Conn.follow`), one round trip fewer on PostgreSQL. The change, run after the
    lock with this ``Ahead``, then uses its rows. None for other changes."""
    unique = tuple(dict.fromkeys(member_ids))
    if kind == "add" and 0 < len(unique) <= CHUNK:
        users_in, _ = _lookups(unit.conn)
        params: dict[str, Any] = {"group_id": group_id, "ids": list(unique)}
        return Ahead(kind, unique, unit.conn.follow(users_in, params))
    if kind == "remove" and len(unique) == 1:
        params = _remove_one(group_id, unique[0], unit.directory_id)
        return Ahead(kind, unique, unit.conn.follow(_REMOVE_ONE, params))
    return None


async def _classify(
    conn: Conn,
    directory_id: str,
    group_id: str,
    members: Mapping[str, str | None],
    ahead: Follower | None = None,
) -> list[dict[str, Any]]:
    """Membership rows for the given ids that are not members yet; refuses ids that are
    not a user or group of this directory. (The caller holds the group's row lock, so
    "not a member yet" stays true until it commits.) ``ahead``: the users look-up of all
    of ``members``, already sent."""
    wanted = list(members)
    user_ids: set[str] = set()
    group_ids: set[str] = set()
    present: set[str] = set()
    users_in, groups_in = _lookups(conn)
    for chunk in _chunks(wanted):
        params = {"group_id": group_id, "ids": chunk}
        found = await ahead.rows() if ahead is not None else await conn.execute(users_in, params)
        ahead = None  # it covers the first chunk (send_ahead sends one chunk's worth)
        for member_id, in_directory, is_member in found:
            if in_directory == directory_id:
                user_ids.add(member_id)
                if is_member:
                    present.add(member_id)
        rest = [i for i in chunk if i not in user_ids]
        if rest:
            for member_id, in_directory, is_member in await conn.execute(
                groups_in, {**params, "ids": rest}
            ):
                if in_directory == directory_id:
                    group_ids.add(member_id)
                    if is_member:
                        present.add(member_id)
    unknown = [i for i in wanted if i not in user_ids and i not in group_ids]
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise InvalidInput(
            f"members: no user or group with id {shown} in this directory "
            "(provision the user before adding it to a group)"
        )
    if group_id in group_ids:
        raise InvalidInput("members: a group cannot be a member of itself")
    now = utcnow()
    return [
        {
            "group_id": group_id,
            "member_id": mid,
            "directory_id": directory_id,
            "user_id": mid if mid in user_ids else None,
            "member_group_id": mid if mid in group_ids else None,
            "display": members[mid],
            "created_at": now,
        }
        for mid in wanted
        if mid not in present
    ]


def _member_events(
    unit: Unit, kind: str, group: ResourceRecord, rows: Sequence[tuple[str, str | None]]
) -> None:
    ref = {"id": group.id, "display_name": group.doc.get("displayName")}
    for member_id, user_id in rows:
        unit.emit(
            kind,
            {"group": ref, "member": {"id": member_id, "type": "User" if user_id else "Group"}},
        )


async def add_members(
    unit: Unit,
    group: ResourceRecord,
    members: Mapping[str, str | None],
    ahead: Ahead | None = None,
) -> list[str]:
    """Add members (id → display name the client gave, or None); existing ones are a
    no-op. Records one ``group.member_added`` per member actually added."""
    sent = ahead.rows_for("add", list(members)) if ahead is not None else None
    rows = await _classify(unit.conn, unit.directory_id, group.id, members, sent)
    if rows:
        await unit.conn.execute(_ADD, rows)  # one batch, whatever the count
    added = [(row["member_id"], row["user_id"]) for row in rows]
    _member_events(unit, "group.member_added", group, added)
    return [member_id for member_id, _ in added]


def _finishing(sql: str) -> Prepared:
    """A member PATCH whole, as one statement (see :func:`finish_ahead`). ``sql`` is the
    ``WITH`` list after ``g`` (the group, if it is the caller's) up to a CTE ``changed``
    of the memberships it inserted or deleted (``member_id``, ``user_id``), in the
    PATCH's order (``ord``), with each one's event id (``event_id``); the events and the
    version bump are written from those rows, nothing if there are none. Answers ``ok``
    (false: it changed nothing, see the statement), the member ids changed, those of
    them that are groups, and the group's new version."""
    return Prepared(
        text(
            f"""
WITH g AS (
  SELECT id, display_name FROM groups
  WHERE id = :group_id AND directory_id = :directory_id
), {sql}, recorded AS (
  INSERT INTO events (id, txid, type, directory_id, organization_id, occurred_at, data)
  SELECT c.event_id, CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT),
         CAST(:event_type AS VARCHAR), CAST(:directory_id AS VARCHAR),
         CAST(:organization_id AS VARCHAR), :now,
         jsonb_build_object(
           'group', jsonb_build_object('id', g.id, 'display_name', g.display_name),
           'member', jsonb_build_object(
             'id', c.member_id,
             'type', CASE WHEN c.user_id IS NULL THEN 'Group' ELSE 'User' END))
  FROM changed c CROSS JOIN g ORDER BY c.ord
), touched AS (
  UPDATE groups SET version = version + 1, updated_at = :now
  WHERE id = :group_id AND directory_id = :directory_id AND EXISTS (SELECT 1 FROM changed)
    AND {feed_order.sql("xmin")}
  RETURNING version
)
SELECT (SELECT ok FROM checked) AS ok,
       ARRAY(SELECT member_id FROM changed ORDER BY ord) AS changed,
       ARRAY(SELECT member_id FROM changed WHERE user_id IS NULL) AS groups,
       (SELECT version FROM touched) AS version
"""
        )
        .bindparams(
            bindparam("now", type_=UTCDateTime()),
            *(
                bindparam(name, type_=ARRAY(String))
                for name in ("ids", "displays", "event_ids")
                if f":{name}" in sql
            ),
        )
        .columns(
            column("ok", Boolean),
            column("changed", ARRAY(String)),
            column("groups", ARRAY(String)),
            column("version", Integer),
        )
    )


_ADD_USERS_AND_COMMIT = _finishing(
    """wanted AS (
  SELECT w.id, w.display, w.event_id, w.ord
  FROM unnest(CAST(:ids AS TEXT[]), CAST(:displays AS TEXT[]), CAST(:event_ids AS TEXT[]))
       WITH ORDINALITY AS w(id, display, event_id, ord)
  JOIN users u ON u.id = w.id AND u.directory_id = :directory_id
), checked AS (
  SELECT EXISTS (SELECT 1 FROM g)
     AND (SELECT count(*) FROM wanted) = cardinality(CAST(:ids AS TEXT[])) AS ok
), inserted AS (
  INSERT INTO group_members
    (group_id, member_id, directory_id, user_id, member_group_id, display, created_at)
  SELECT CAST(:group_id AS VARCHAR), w.id, CAST(:directory_id AS VARCHAR), w.id, NULL,
         w.display, :now
  FROM wanted w WHERE (SELECT ok FROM checked) ORDER BY w.ord
  ON CONFLICT DO NOTHING
  RETURNING member_id, user_id
), changed AS (
  SELECT i.member_id, i.user_id, w.event_id, w.ord
  FROM inserted i JOIN wanted w ON w.id = i.member_id
)"""
)
"""Adding users (``ok`` only if the group is there and every id is a user of the
directory: a group member or an unknown id is left to the ordinary path). Ids already
members are skipped."""

_REMOVE_ONE_AND_COMMIT = _finishing(
    """checked AS (
  SELECT true AS ok
), changed AS (
  DELETE FROM group_members
  WHERE group_id = :group_id AND member_id = :member_id AND directory_id = :directory_id
    AND EXISTS (SELECT 1 FROM g)
  RETURNING member_id, user_id, CAST(:event_id AS VARCHAR) AS event_id, 1 AS ord
)"""
)
"""Removing one member, user or group (an absent one is a no-op, as on the ordinary
path)."""


@dataclass(frozen=True)
class Finish:
    """A member PATCH sent whole, with the group's row lock and ``COMMIT`` (see
    :func:`finish_ahead`)."""

    event_type: str
    finisher: Finisher
    event_ids: dict[str, str]
    """Member id → the id its event gets."""


def finish_ahead(
    unit: Unit, group_id: str, kind: str, members: Mapping[str, str | None]
) -> Finish | None:
    """Before the group's row lock is taken: have the whole of a member change (``kind``
    ``add`` of users, as IdPs send them, or ``remove`` of one member) follow the lock
    with ``COMMIT``, so that the PATCH is one round trip on PostgreSQL
    (:meth:`Conn.finish`). Give the result to :func:`finished` once the lock returned.
    None where it does not apply (SQLite, other changes). The directory's owner must be
    known (an assumed authentication): the events name it."""
    if unit.conn.dialect.name != "postgresql":
        return None
    if kind == "add" and 0 < len(members) <= CHUNK:
        statement, event_type = _ADD_USERS_AND_COMMIT, "group.member_added"
    elif kind == "remove" and len(members) == 1:
        statement, event_type = _REMOVE_ONE_AND_COMMIT, "group.member_removed"
    else:
        return None
    event_ids = {member_id: new_event_id() for member_id in members}
    params = {
        "member_id": next(iter(members)),
        "event_id": next(iter(event_ids.values())),
        "group_id": group_id,
        "directory_id": unit.directory_id,
        "organization_id": unit.organization_id,
        "event_type": event_type,
        "ids": list(members),
        "displays": list(members.values()),
        "event_ids": list(event_ids.values()),
        "now": unit.occurred_at,
    }
    return Finish(event_type, unit.conn.finish(statement, params), event_ids)


def finished(unit: Unit, group: ResourceRecord, finish: Finish) -> ResourceRecord | None:
    """After the lock of ``group``: the group as the committed change left it, its events
    recorded in ``unit``; None if the change was not sent (make it the ordinary way).
    Raises :class:`Declined` if it changed nothing because an id is not a user of the
    directory: the ordinary way then adds a group or refuses an unknown id."""
    rows = finish.finisher.rows()
    if rows is None:
        return None
    ok, changed, member_groups, version = rows.first()
    if not ok:
        raise Declined("members: not every id is a user of this directory")
    if not changed:
        return group
    ref = {"id": group.id, "display_name": group.doc.get("displayName")}
    unit.recorded(
        [
            unit.event(
                finish.event_type,
                {
                    "group": ref,
                    "member": {
                        "id": member_id,
                        "type": "Group" if member_id in member_groups else "User",
                    },
                },
                finish.event_ids[member_id],
            )
            for member_id in changed
        ]
    )
    return ResourceRecord(
        group.id, group.directory_id, group.doc, version, group.created_at, unit.occurred_at
    )


_REMOVE_ONE = Prepared(
    delete(group_members)
    .where(
        group_members.c.group_id == bindparam("group_id"),
        group_members.c.member_id == bindparam("member_id"),
        # Sent with the group's lock (see send_ahead): touch nothing outside the caller's
        # directory even before the lock's answer says the group is there.
        group_members.c.directory_id == bindparam("directory_id"),
    )
    .returning(group_members.c.member_id, group_members.c.user_id)
)
"""What IdPs send most: one member removed per PATCH."""
keep_warm(_GET, _GET_FOR_UPDATE, _INSERT, _TOUCH, _UPDATE, *_LEAVE.values(), _DELETE)
keep_warm(_USERS_ANY, _GROUPS_ANY, _ADD, _ADD_USERS_AND_COMMIT, _REMOVE_ONE_AND_COMMIT, _REMOVE_ONE)
for _column in ("display_name_key", "external_id"):  # the match before a create
    records.keep_match_warm(groups, _column)


def _remove_one(group_id: str, member_id: str, directory_id: str) -> dict[str, str]:
    return {"group_id": group_id, "member_id": member_id, "directory_id": directory_id}


async def remove_members(
    unit: Unit, group: ResourceRecord, member_ids: Sequence[str], ahead: Ahead | None = None
) -> list[str]:
    """Remove the listed members (absent ones are ignored); one ``group.member_removed``
    per member actually removed."""
    removed: list[tuple[str, str | None]] = []
    unique = list(dict.fromkeys(member_ids))
    sent = ahead.rows_for("remove", unique) if ahead is not None else None
    if sent is not None:
        removed.extend((r.member_id, r.user_id) for r in await sent.rows())
    elif len(unique) == 1:
        params = _remove_one(group.id, unique[0], group.directory_id)
        removed.extend(
            (r.member_id, r.user_id) for r in await unit.conn.execute(_REMOVE_ONE, params)
        )
    else:
        for chunk in _chunks(unique):
            result = await unit.conn.execute(
                delete(group_members)
                .where(group_members.c.group_id == group.id, group_members.c.member_id.in_(chunk))
                .returning(group_members.c.member_id, group_members.c.user_id)
            )
            removed.extend((r.member_id, r.user_id) for r in result)
    _member_events(unit, "group.member_removed", group, removed)
    return [member_id for member_id, _ in removed]


async def clear_members(unit: Unit, group: ResourceRecord) -> list[str]:
    result = await unit.conn.execute(
        delete(group_members)
        .where(group_members.c.group_id == group.id)
        .returning(group_members.c.member_id, group_members.c.user_id)
    )
    removed = [(r.member_id, r.user_id) for r in result]
    _member_events(unit, "group.member_removed", group, removed)
    return [member_id for member_id, _ in removed]


async def replace_members(
    unit: Unit, group: ResourceRecord, members: Mapping[str, str | None]
) -> tuple[list[str], list[str]]:
    """Make the member set exactly ``members``. Returns (added, removed)."""
    wanted = set(members)
    current = set(
        (
            await unit.conn.execute(
                select(group_members.c.member_id).where(group_members.c.group_id == group.id)
            )
        ).scalars()
    )
    removed = await remove_members(unit, group, sorted(current - wanted))
    added = await add_members(unit, group, {m: d for m, d in members.items() if m not in current})
    return added, removed


_MEMBER_DISPLAY = "COALESCE(gm.display, u.display_name, u.user_name, mg.display_name)"
_MEMBER_REF = (
    "CAST(:scim_base AS TEXT) || CASE WHEN gm.user_id IS NULL THEN '/Groups/' ELSE '/Users/' END"
    " || gm.member_id"
)
_MEMBER_TYPE = "CASE WHEN gm.user_id IS NULL THEN 'Group' ELSE 'User' END"
_MEMBER_ROWS = """
FROM group_members gm
LEFT JOIN users u ON u.id = gm.user_id
LEFT JOIN groups mg ON mg.id = gm.member_group_id
WHERE gm.group_id IN :group_ids"""
_MEMBERS_JSON = {
    # json_strip_nulls drops a null display (and writes the object compactly); the text
    # cast keeps psycopg from parsing what is only passed on.
    "postgresql": text(
        f"""
SELECT gm.group_id, CAST(json_agg(json_strip_nulls(json_build_object(
    'value', gm.member_id, '$ref', {_MEMBER_REF}, 'type', {_MEMBER_TYPE},
    'display', {_MEMBER_DISPLAY})) ORDER BY gm.created_at, gm.member_id) AS TEXT)
{_MEMBER_ROWS}
GROUP BY gm.group_id"""
    ).bindparams(bindparam("group_ids", expanding=True)),
    # SQLite 3.40 has no ORDER BY inside an aggregate: it aggregates the rows of a sorted
    # subquery in their order (tests/integration/test_group_members_json.py checks it).
    "sqlite": text(
        f"""
SELECT group_id, json_group_array(json(member)) FROM (
  SELECT gm.group_id AS group_id, CASE WHEN {_MEMBER_DISPLAY} IS NULL
    THEN json_object('value', gm.member_id, '$ref', {_MEMBER_REF}, 'type', {_MEMBER_TYPE})
    ELSE json_object('value', gm.member_id, '$ref', {_MEMBER_REF}, 'type', {_MEMBER_TYPE},
                     'display', {_MEMBER_DISPLAY})
    END AS member
  {_MEMBER_ROWS}
  ORDER BY gm.group_id, gm.created_at, gm.member_id
) GROUP BY group_id"""
    ).bindparams(bindparam("group_ids", expanding=True)),
}


async def members_json(conn: Conn, group_ids: Sequence[str], scim_base: str) -> dict[str, str]:
    """Each group's ``members`` value as SCIM renders it, as JSON text the database
    writes: ``value``, ``$ref``, ``type`` (``User`` or ``Group``) and ``display`` (the one
    the client gave, else the member's displayName, else a user's userName) when there is
    one, in the order members were added (one request's: by id). A group of 100,000
    members is then one string of ~17 MB in the process, not 100,000 rows and objects
    (~85 MB more at its peak). Groups without members are left out."""
    statement = _MEMBERS_JSON[conn.dialect.name]
    rows = await conn.execute(statement, {"group_ids": list(group_ids), "scim_base": scim_base})
    return {group_id: members for group_id, members in rows}


async def member_count(conn: Conn, group_id: str) -> int:
    result = await conn.execute(
        select(func.count()).select_from(group_members).where(group_members.c.group_id == group_id)
    )
    return int(result.scalar_one())
