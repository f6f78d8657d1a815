"""Webhook endpoints and their delivery log: the service behind the management API.

An endpoint belongs to an organization and optionally narrows to one of its directories
and to some event types. Deliveries themselves are made by ``events.worker``, never in the
IdP's request; this module only registers endpoints, shows what was sent, and queues
replays and test events.

Payloads are signed per the Standard Webhooks spec, so each endpoint has a secret in its
``whsec_<base64>`` form. It is shown once, by :meth:`Webhooks.create_endpoint` and
:meth:`Webhooks.rotate_secret`; nothing else returns it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Final

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from scimgate.errors import InvalidInput, NotFound
from scimgate.events import ssrf
from scimgate.events.outbox import EVENT_TYPES
from scimgate.store.connections import Conn
from scimgate.store.engine import Database
from scimgate.store.tables import (
    directories,
    events,
    organizations,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

TEST_EVENT_TYPE = "webhook.test"
EXCERPT_BYTES = 1024
"""Responses are logged up to this many bytes: enough to see an error, never a dump."""
MAX_DESCRIPTION = 1000
MAX_PAGE = 200

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
STATUSES = (PENDING, SUCCEEDED, FAILED)


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET
"""For :meth:`Webhooks.update_endpoint`: leave the field as it is (None means clear)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def generate_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _check_secret(secret: str) -> str:
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("secret must be 'whsec_' followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise InvalidInput("secret must encode between 24 and 64 bytes")
    return secret if secret.startswith("whsec_") else f"whsec_{raw}"


def _check_event_types(event_types: Sequence[str] | None) -> list[str] | None:
    if event_types is None:
        return None
    if isinstance(event_types, str) or not all(isinstance(t, str) for t in event_types):
        raise InvalidInput("event_types must be a list of event type names, or null for all")
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    if not event_types:
        raise InvalidInput("event_types must not be empty (use null for every type)")
    return sorted(set(event_types), key=EVENT_TYPES.index)


def _check_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description is longer than {MAX_DESCRIPTION} characters")
    return description


@dataclass(frozen=True)
class WebhookEndpoint:
    """A registered receiver. Deliberately has no secret field."""

    id: str
    organization_id: str
    directory_id: str | None
    url: str
    event_types: tuple[str, ...] | None
    """None: every event type."""
    description: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organization_id": self.organization_id,
            "directory_id": self.directory_id,
            "url": self.url,
            "event_types": list(self.event_types) if self.event_types is not None else None,
            "description": self.description,
            "enabled": self.enabled,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True)
class Attempt:
    """One HTTP request to the endpoint, as it went."""

    attempted_at: datetime
    status_code: int | None
    """None when no response came (refused target, connect error, timeout)."""
    latency_ms: float
    response_excerpt: str | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "attempted_at": _iso(self.attempted_at),
            "status_code": self.status_code,
            "latency_ms": round(self.latency_ms, 1),
            "response_excerpt": self.response_excerpt,
            "error": self.error,
        }


@dataclass(frozen=True)
class Delivery:
    """One event (or test event) for one endpoint, with its attempts oldest first."""

    id: str
    endpoint_id: str
    event_id: str
    """Also the ``webhook-id`` header: stable across retries and replays."""
    event_type: str | None
    status: str
    """pending, succeeded or failed (retries exhausted; replay re-queues it)."""
    attempt_count: int
    """Attempts since creation or the last replay (the retry budget in use)."""
    next_attempt_at: datetime | None
    """When a pending delivery is due; None once it has succeeded or failed."""
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    attempts: tuple[Attempt, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempt_count": self.attempt_count,
            "next_attempt_at": _iso(self.next_attempt_at),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "attempts": [a.to_json() for a in self.attempts],
        }


_ENDPOINT_COLUMNS = [c for c in webhook_endpoints.c if c.name != "secret"]


def _endpoint(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        organization_id=row.organization_id,
        directory_id=row.directory_id,
        url=row.url,
        event_types=tuple(row.event_types) if row.event_types is not None else None,
        description=row.description,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery_query() -> Any:
    d = webhook_deliveries
    return select(
        d.c.id,
        d.c.endpoint_id,
        d.c.event_id,
        d.c.payload,
        events.c.type.label("event_type"),
        d.c.status,
        d.c.attempts,
        d.c.next_attempt_at,
        d.c.last_status_code,
        d.c.last_error,
        d.c.created_at,
        d.c.updated_at,
    ).select_from(d.outerjoin(events, events.c.seq == d.c.event_seq))


def _delivery(row: Any, attempts: Sequence[Attempt]) -> Delivery:
    event_type = row.event_type
    if event_type is None and isinstance(row.payload, dict):
        event_type = row.payload.get("type")
    return Delivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=event_type,
        status=row.status,
        attempt_count=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == PENDING else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        attempts=tuple(attempts),
    )


async def _attempts_of(conn: Conn, ids: list[str]) -> dict[str, list[Attempt]]:
    found: dict[str, list[Attempt]] = {i: [] for i in ids}
    if not ids:
        return found
    a = webhook_attempts
    rows = await conn.execute(
        select(a).where(a.c.delivery_id.in_(ids)).order_by(a.c.delivery_id, a.c.id)
    )
    for r in rows:
        found[r.delivery_id].append(
            Attempt(r.attempted_at, r.status_code, r.latency_ms, r.response_excerpt, r.error)
        )
    return found


class Webhooks:
    """Manage webhook endpoints and inspect or re-queue their deliveries.

    ``allow_private`` lets endpoints point at loopback/private/link-local addresses (an
    operator's choice, e.g. for a host app on the same network). ``notify`` is called
    when this service queues work (a replay or a test event) so that an in-process worker
    sends it at once instead of at its next poll.
    """

    def __init__(
        self,
        db: Database,
        *,
        allow_private: bool = False,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.allow_private = allow_private
        self.notify = notify

    # -- endpoints -------------------------------------------------------------------------

    async def create_endpoint(
        self,
        organization_id: str,
        url: str,
        *,
        directory_id: str | None = None,
        event_types: Sequence[str] | None = None,
        description: str | None = None,
        secret: str | None = None,
    ) -> tuple[WebhookEndpoint, str]:
        """Register an endpoint; returns it with its signing secret (shown only here and
        by :meth:`rotate_secret`). It receives events that occur from now on."""
        url = url.strip()
        await ssrf.check_url(url, allow_private=self.allow_private)
        types = _check_event_types(event_types)
        description = _check_description(description)
        secret = _check_secret(secret) if secret is not None else generate_secret()
        now = utcnow()
        row: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "organization_id": organization_id,
            "directory_id": directory_id,
            "url": url,
            "secret": secret,
            "event_types": types,
            "description": description,
            "enabled": True,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.db.write() as conn:
                await self._check_owner(conn, organization_id, directory_id)
                await conn.execute(webhook_endpoints.insert().values(**row))
        except IntegrityError as exc:  # the organization or directory was just deleted
            raise NotFound(f"no organization with id {organization_id!r}") from exc
        return _endpoint(SimpleNamespace(**row)), secret

    async def _check_owner(
        self, conn: Conn, organization_id: str, directory_id: str | None
    ) -> None:
        found = (
            await conn.execute(
                select(organizations.c.id).where(organizations.c.id == organization_id)
            )
        ).first()
        if found is None:
            raise NotFound(f"no organization with id {organization_id!r}")
        if directory_id is None:
            return
        owner = (
            await conn.execute(
                select(directories.c.organization_id).where(directories.c.id == directory_id)
            )
        ).scalar()
        if owner is None:
            raise NotFound(f"no directory with id {directory_id!r}")
        if owner != organization_id:
            raise InvalidInput(f"directory {directory_id!r} belongs to another organization")

    async def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(*_ENDPOINT_COLUMNS).where(webhook_endpoints.c.id == endpoint_id)
                )
            ).first()
        if row is None:
            raise NotFound(f"no webhook endpoint with id {endpoint_id!r}")
        return _endpoint(row)

    async def list_endpoints(
        self, organization_id: str | None = None, directory_id: str | None = None
    ) -> list[WebhookEndpoint]:
        """Endpoints, oldest first. ``directory_id`` lists those that receive that
        directory's events: its own and its organization's organization-wide ones."""
        e = webhook_endpoints
        query = select(*_ENDPOINT_COLUMNS).order_by(e.c.created_at, e.c.id)
        if organization_id is not None:
            query = query.where(e.c.organization_id == organization_id)
        if directory_id is not None:
            owner = select(directories.c.organization_id).where(directories.c.id == directory_id)
            query = query.where(
                or_(
                    e.c.directory_id == directory_id,
                    and_(e.c.directory_id.is_(None), e.c.organization_id.in_(owner)),
                )
            )
        async with self.db.read() as conn:
            return [_endpoint(r) for r in await conn.execute(query)]

    async def update_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | _Unset = UNSET,
        event_types: Sequence[str] | _Unset | None = UNSET,
        description: str | _Unset | None = UNSET,
        enabled: bool | _Unset = UNSET,
    ) -> WebhookEndpoint:
        """Change what is given; ``event_types=None`` means every type. A disabled
        endpoint gets no new deliveries, and its queued ones wait until it is enabled."""
        values: dict[str, Any] = {}
        if not isinstance(url, _Unset):
            values["url"] = url.strip()
            await ssrf.check_url(values["url"], allow_private=self.allow_private)
        if not isinstance(event_types, _Unset):
            values["event_types"] = _check_event_types(event_types)
        if not isinstance(description, _Unset):
            values["description"] = _check_description(description)
        if not isinstance(enabled, _Unset):
            values["enabled"] = bool(enabled)
        await self._update(endpoint_id, values)
        return await self.get_endpoint(endpoint_id)

    async def rotate_secret(self, endpoint_id: str) -> str:
        """Replace the signing secret; deliveries from now on use the new one only."""
        secret = generate_secret()
        await self._update(endpoint_id, {"secret": secret})
        return secret

    async def delete_endpoint(self, endpoint_id: str) -> None:
        """Delete the endpoint with its deliveries and their log."""
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
            )
        if result.rowcount == 0:
            raise NotFound(f"no webhook endpoint with id {endpoint_id!r}")

    async def _update(self, endpoint_id: str, values: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            result = await conn.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint_id)
                .values(updated_at=utcnow(), **values)
            )
        if result.rowcount == 0:
            raise NotFound(f"no webhook endpoint with id {endpoint_id!r}")

    # -- deliveries ------------------------------------------------------------------------

    async def list_deliveries(
        self,
        endpoint_id: str,
        *,
        status: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Delivery]:
        """The endpoint's deliveries, newest first, each with its attempts. Page with
        ``before`` = the last delivery id of the previous page."""
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        d = webhook_deliveries
        query = (
            _delivery_query()
            .where(d.c.endpoint_id == endpoint_id)
            .order_by(d.c.created_at.desc(), d.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(d.c.status == status)
        async with self.db.read() as conn:
            exists = (
                await conn.execute(
                    select(webhook_endpoints.c.id).where(webhook_endpoints.c.id == endpoint_id)
                )
            ).first()
            if exists is None:
                raise NotFound(f"no webhook endpoint with id {endpoint_id!r}")
            if before is not None:
                mark = (
                    await conn.execute(
                        select(d.c.created_at, d.c.id).where(
                            d.c.id == before, d.c.endpoint_id == endpoint_id
                        )
                    )
                ).first()
                if mark is None:
                    raise InvalidInput(f"no delivery {before!r} of this endpoint to page from")
                query = query.where(
                    or_(
                        d.c.created_at < mark.created_at,
                        and_(d.c.created_at == mark.created_at, d.c.id < mark.id),
                    )
                )
            rows = list(await conn.execute(query))
            attempts = await _attempts_of(conn, [r.id for r in rows])
        return [_delivery(r, attempts[r.id]) for r in rows]

    async def get_delivery(self, delivery_id: str) -> Delivery:
        async with self.db.read() as conn:
            row = (
                await conn.execute(_delivery_query().where(webhook_deliveries.c.id == delivery_id))
            ).first()
            if row is None:
                raise NotFound(f"no webhook delivery with id {delivery_id!r}")
            attempts = await _attempts_of(conn, [row.id])
        return _delivery(row, attempts[row.id])

    async def replay_delivery(self, delivery_id: str) -> Delivery:
        """Queue a delivery again, now, with a fresh retry schedule, whatever its status.
        The receiver sees the same ``webhook-id`` as before. Earlier attempts stay in the
        log; an attempt still in flight no longer decides the outcome."""
        now = utcnow()
        async with self.db.write() as conn:
            result = await conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    lease_until=None,
                    updated_at=now,
                )
            )
        if result.rowcount == 0:
            raise NotFound(f"no webhook delivery with id {delivery_id!r}")
        self._notify()
        return await self.get_delivery(delivery_id)

    async def send_test_event(self, endpoint_id: str) -> Delivery:
        """Queue a ``webhook.test`` event for this endpoint alone (even if its event-type
        filter would not match, and even if disabled: it then waits until enabled)."""
        now = utcnow()
        event_id = f"evt_{uuid.uuid4().hex}"
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(
                        webhook_endpoints.c.organization_id,
                        webhook_endpoints.c.directory_id,
                        organizations.c.external_id,
                    )
                    .join(
                        organizations,
                        organizations.c.id == webhook_endpoints.c.organization_id,
                    )
                    .where(webhook_endpoints.c.id == endpoint_id)
                )
            ).first()
            if row is None:
                raise NotFound(f"no webhook endpoint with id {endpoint_id!r}")
            payload = {
                "id": event_id,
                "type": TEST_EVENT_TYPE,
                "directory_id": row.directory_id,
                "organization_id": row.organization_id,
                "organization_external_id": row.external_id,
                "occurred_at": _iso(now),
                "data": {"endpoint_id": endpoint_id, "message": "scimgate test event"},
            }
            delivery_id = str(uuid.uuid4())
            await conn.execute(
                webhook_deliveries.insert().values(
                    id=delivery_id,
                    endpoint_id=endpoint_id,
                    event_seq=None,
                    event_id=event_id,
                    payload=payload,
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    lease_until=None,
                    created_at=now,
                    updated_at=now,
                )
            )
        self._notify()
        return await self.get_delivery(delivery_id)

    def _notify(self) -> None:
        if self.notify is not None:
            self.notify()
