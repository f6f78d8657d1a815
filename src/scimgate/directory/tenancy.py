"""Organizations (the host app's customers) and their SCIM directories.

Every user, group and membership belongs to exactly one directory; a directory's bearer
token is the only key to its data.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Integer, bindparam, delete, func, literal, or_, select, type_coerce, update
from sqlalchemy.exc import IntegrityError

from scimgate.directory.rules import parse_rules
from scimgate.directory.tokens import generate_token, hash_token, token_hint, token_matches
from scimgate.errors import Conflict, InvalidInput, NotFound, Unauthorized
from scimgate.events import outbox
from scimgate.events.bus import EventBus
from scimgate.store.connections import Conn
from scimgate.store.engine import Database
from scimgate.store.precondition import Precondition
from scimgate.store.prepared import Prepared, Rows, keep_warm
from scimgate.store.tables import directories, organizations

PROVIDERS = ("entra", "okta", "onelogin", "jumpcloud", "generic")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Directory:
    id: str
    organization_id: str
    name: str
    provider: str
    enabled: bool
    token_hint: str
    token_rotated_at: datetime
    rules: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


def organization_from_row(row: Any) -> Organization:
    return Organization(
        id=row.id,
        name=row.name,
        external_id=row.external_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


DIRECTORY_COLUMNS = [c for c in directories.c if c.name != "token_hash"]


def directory_from_row(row: Any) -> Directory:
    return Directory(**{c.name: getattr(row, c.name) for c in DIRECTORY_COLUMNS})


@dataclass(frozen=True)
class DirectoryAccess:
    """What a SCIM request needs of the directory its token opened: who owns it (for the
    events it records) and its acceptance rules. Read fresh on every request, so a rotated
    token or a disabled directory stops working at once, in every process."""

    id: str
    organization_id: str
    organization_external_id: str | None
    rules: dict[str, Any] | None


_AUTHENTICATE = Prepared(
    select(
        directories.c.token_hash,
        directories.c.enabled,
        directories.c.organization_id,
        directories.c.rules,
        organizations.c.external_id,
        directories.c.updated_at.label("directory_updated_at"),
        organizations.c.updated_at.label("organization_updated_at"),
    )
    .join(organizations, organizations.c.id == directories.c.organization_id)
    .where(directories.c.id == bindparam("directory_id"))
)
"""Runs on every SCIM request: built once, and only the columns a request needs."""

_STILL_OPENS = Prepared(
    select(type_coerce(literal(1, Integer) // func.count(), Integer))
    .select_from(
        directories.join(organizations, organizations.c.id == directories.c.organization_id)
    )
    .where(
        directories.c.id == bindparam("directory_id"),
        directories.c.token_hash == bindparam("token_hash"),
        directories.c.enabled.is_(True),
        directories.c.organization_id == bindparam("organization_id"),
        # Every change to a directory or an organization sets its updated_at: the rules
        # and the external id remembered with these stamps are still current.
        directories.c.updated_at == bindparam("directory_updated_at"),
        organizations.c.updated_at == bindparam("organization_updated_at"),
    )
)
"""1 while the remembered token, owner and rules still hold; else a division by zero
(PostgreSQL: an error that aborts the transaction; SQLite: NULL)."""
keep_warm(_AUTHENTICATE, _STILL_OPENS)
_REMEMBERED_MAX = 10_000


class Tenancy:
    """Create, find and manage organizations and directories."""

    def __init__(self, db: Database, bus: EventBus | None = None) -> None:
        self.db = db
        self.bus = bus
        # directory id → (token hash, the two updated_at stamps, access): what the last
        # successful authentication found, for assume_access(); least recently used first.
        self._remembered: OrderedDict[str, tuple[str, Any, Any, DirectoryAccess]] = OrderedDict()

    async def create_organization(self, name: str, external_id: str | None = None) -> Organization:
        if not name.strip():
            raise InvalidInput("organization name must not be empty")
        now = utcnow()
        row: dict[str, Any] = {
            "id": new_id(),
            "name": name.strip(),
            "external_id": external_id,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.db.write() as conn:
                await conn.execute(organizations.insert().values(**row))
        except IntegrityError as exc:
            raise Conflict(f"an organization with external id {external_id!r} exists") from exc
        return Organization(**row)

    async def get_organization(self, ref: str) -> Organization:
        """Find an organization by its id or its external id."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(organizations).where(
                        or_(organizations.c.id == ref, organizations.c.external_id == ref)
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"no organization with id or external id {ref!r}")
        return organization_from_row(row)

    async def list_organizations(self) -> list[Organization]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(organizations).order_by(organizations.c.created_at))
            return [organization_from_row(r) for r in rows]

    async def create_directory(
        self, org_ref: str, name: str | None = None, provider: str = "generic"
    ) -> tuple[Directory, str]:
        """Create a directory; returns it with its token, which is not retrievable later."""
        if provider not in PROVIDERS:
            raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}")
        org = await self.get_organization(org_ref)
        token = generate_token()
        now = utcnow()
        row = {
            "id": new_id(),
            "organization_id": org.id,
            "name": (name or f"{org.name} ({provider})").strip(),
            "provider": provider,
            "enabled": True,
            "token_hash": hash_token(token),
            "token_hint": token_hint(token),
            "token_rotated_at": now,
            "rules": None,
            "created_at": now,
            "updated_at": now,
        }
        async with self.db.write() as conn:
            await conn.execute(directories.insert().values(**row))
        return directory_from_row(SimpleNamespace(**row)), token

    async def get_directory(self, directory_id: str) -> Directory:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(*DIRECTORY_COLUMNS).where(directories.c.id == directory_id)
                )
            ).first()
        if row is None:
            raise NotFound(f"no directory with id {directory_id!r}")
        return directory_from_row(row)

    async def list_directories(self, organization_id: str | None = None) -> list[Directory]:
        query = select(*DIRECTORY_COLUMNS).order_by(directories.c.created_at)
        if organization_id is not None:
            query = query.where(directories.c.organization_id == organization_id)
        async with self.db.read() as conn:
            return [directory_from_row(r) for r in await conn.execute(query)]

    async def rotate_token(self, directory_id: str) -> tuple[Directory, str]:
        """Issue a new token; the previous one stops working with this commit.
        Records ``directory.token_rotated`` (without the token)."""
        token = generate_token()
        now = utcnow()
        directory = await self.get_directory(directory_id)
        event = outbox.new_event(
            "directory.token_rotated",
            directory.id,
            directory.organization_id,
            {
                "directory": {
                    "id": directory.id,
                    "name": directory.name,
                    "token_hint": token_hint(token),
                }
            },
        )
        async with self.db.write() as conn:
            await self._update(
                conn,
                directory_id,
                token_hash=hash_token(token),
                token_hint=token_hint(token),
                token_rotated_at=now,
            )
            await outbox.write(conn, [event])
        if self.bus is not None:
            await self.bus.publish([event])
        return await self.get_directory(directory_id), token

    async def update_directory(
        self, directory_id: str, *, name: str | None = None, enabled: bool | None = None
    ) -> Directory:
        values: dict[str, Any] = {}
        if name is not None:
            if not name.strip():
                raise InvalidInput("directory name must not be empty")
            values["name"] = name.strip()
        if enabled is not None:
            values["enabled"] = enabled
        async with self.db.write() as conn:
            await self._update(conn, directory_id, **values)
        return await self.get_directory(directory_id)

    async def set_rules(self, directory_id: str, rules: Any) -> Directory:
        """Replace the directory's acceptance rules (None clears them)."""
        parsed = parse_rules(rules)
        stored = parsed.to_json() if rules is not None else None
        async with self.db.write() as conn:
            await self._update(conn, directory_id, rules=stored)
        return await self.get_directory(directory_id)

    async def delete_directory(self, directory_id: str) -> None:
        """Delete a directory and everything in it (users, groups, memberships)."""
        async with self.db.write() as conn:
            result = await conn.execute(delete(directories).where(directories.c.id == directory_id))
        if result.rowcount == 0:
            raise NotFound(f"no directory with id {directory_id!r}")

    async def update_organization(
        self, org_id: str, *, name: str | None = None, external_id: str | None = None
    ) -> Organization:
        values: dict[str, Any] = {"updated_at": utcnow()}
        if name is not None:
            if not name.strip():
                raise InvalidInput("organization name must not be empty")
            values["name"] = name.strip()
        if external_id is not None:
            values["external_id"] = external_id or None
        try:
            async with self.db.write() as conn:
                result = await conn.execute(
                    update(organizations).where(organizations.c.id == org_id).values(**values)
                )
        except IntegrityError as exc:
            raise Conflict(f"an organization with external id {external_id!r} exists") from exc
        if result.rowcount == 0:
            raise NotFound(f"no organization with id {org_id!r}")
        return await self.get_organization(org_id)

    async def delete_organization(self, org_id: str) -> None:
        """Delete an organization with all its directories and their data."""
        async with self.db.write() as conn:
            result = await conn.execute(delete(organizations).where(organizations.c.id == org_id))
        if result.rowcount == 0:
            raise NotFound(f"no organization with id {org_id!r}")

    async def set_organization_enabled(self, org_id: str, enabled: bool) -> list[Directory]:
        """Disable (or enable) every directory of an organization at once: its IdPs get
        401 until it is enabled again; data is kept."""
        await self.get_organization(org_id)
        async with self.db.write() as conn:
            await conn.execute(
                update(directories)
                .where(directories.c.organization_id == org_id)
                .values(enabled=enabled, updated_at=utcnow())
            )
        return await self.list_directories(org_id)

    async def set_enabled(self, directory_id: str, enabled: bool) -> Directory:
        return await self.update_directory(directory_id, enabled=enabled)

    async def _update(self, conn: Conn, directory_id: str, **values: Any) -> None:
        result = await conn.execute(
            update(directories)
            .where(directories.c.id == directory_id)
            .values(updated_at=utcnow(), **values)
        )
        if result.rowcount == 0:
            raise NotFound(f"no directory with id {directory_id!r}")

    async def authenticate(
        self, directory_id: str, token: str, conn: Conn | None = None
    ) -> DirectoryAccess | None:
        """The enabled directory this token opens, or None (wrong token, another
        directory's token, disabled directory). Unknown ids raise NotFound: directory ids
        are random, so saying so leaks nothing and tells an admin the Tenant URL is off."""
        params = {"directory_id": directory_id}
        if conn is None:
            async with self.db.read() as own:
                row = (await own.execute(_AUTHENTICATE, params)).first()
        else:
            row = (await conn.execute(_AUTHENTICATE, params)).first()
        return _access(directory_id, token, row)

    async def authenticate_first(
        self, conn: Conn, directory_id: str, token: str
    ) -> Precondition[DirectoryAccess]:
        """:meth:`authenticate` as a precondition of ``conn``'s next statement: on
        PostgreSQL it rides with that statement (one round trip for both), and a wrong
        token raises Unauthorized (an unknown directory NotFound) before that statement's
        rows are used."""

        def check(rows: Rows) -> DirectoryAccess:
            row = rows.first()
            access = _access(directory_id, token, row)
            if access is None:
                raise Unauthorized(f"the token does not open SCIM directory {directory_id!r}")
            self._remember(row, access)
            return access

        return await conn.precede(_AUTHENTICATE, {"directory_id": directory_id}, check)

    async def assume_access(
        self, conn: Conn, directory_id: str, token: str
    ) -> Precondition[DirectoryAccess] | None:
        """The directory this token opened on an earlier request of this process, assumed
        still to hold, with a statement that fails inside the transaction if it no longer
        does (see :meth:`Conn.assume`): a write then needs no round trip of its own for
        the authentication. None when nothing is remembered for this token; the caller
        authenticates the ordinary way (:meth:`authenticate_first`)."""
        found = self._remembered.get(directory_id)
        if found is None or not token_matches(token, found[0]):
            return None
        self._remembered.move_to_end(directory_id)
        token_hash, directory_updated_at, organization_updated_at, access = found
        condition = Precondition.assumed(access)
        await conn.assume(
            _STILL_OPENS,
            {
                "directory_id": directory_id,
                "token_hash": token_hash,
                "organization_id": access.organization_id,
                "directory_updated_at": directory_updated_at,
                "organization_updated_at": organization_updated_at,
            },
            condition,
        )
        return condition

    def forget(self, directory_id: str) -> None:
        """Drop what :meth:`assume_access` remembers of a directory (its assumption failed)."""
        self._remembered.pop(directory_id, None)

    def _remember(self, row: Any, access: DirectoryAccess) -> None:
        self._remembered[access.id] = (
            row.token_hash,
            row.directory_updated_at,
            row.organization_updated_at,
            access,
        )
        self._remembered.move_to_end(access.id)
        if len(self._remembered) > _REMEMBERED_MAX:
            self._remembered.popitem(last=False)


def _access(directory_id: str, token: str, row: Any) -> DirectoryAccess | None:
    if row is None:
        raise NotFound(f"no SCIM directory with id {directory_id!r}; check the Tenant URL")
    token_hash, enabled, organization_id, directory_rules, org_external_id = row[:5]
    if not token_matches(token, token_hash) or not enabled:
        return None
    return DirectoryAccess(directory_id, organization_id, org_external_id, directory_rules)
