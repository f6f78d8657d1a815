"""The webhook worker: turns outbox events into deliveries and sends them.

Nothing is sent inside the IdP's request. The worker loops over three steps, each of which
is safe to interrupt at any point (``kill -9`` included) and safe to run in several
processes at once:

1. **Dispatch.** In one transaction: lock the ``feed_cursors`` row "webhooks", read the
   event feed after it, insert one ``webhook_deliveries`` row per (event, matching
   endpoint), move the cursor. A crash rolls all of it back, so every event is either
   still ahead of the cursor or has its deliveries; the unique (endpoint, event) key makes
   a repeat harmless. A second worker that finds the row locked skips this step.
2. **Deliver.** A short transaction claims due deliveries by setting a lease
   (``lease_until``) and counting the attempt (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
   so concurrent workers claim disjoint rows; SQLite has a single writer). The HTTP
   request happens outside any transaction. Its outcome is recorded only if the lease is
   still the one taken, so a worker that lost its lease cannot overwrite a newer
   outcome. A worker that dies mid-request leaves the lease to expire, and the delivery
   is sent again: delivery is at least once, and receivers dedupe on ``webhook-id``.
3. **Retention.** Now and then, events older than the retention period are deleted,
   with their deliveries and attempts.

Per-endpoint order is not guaranteed: deliveries are sent concurrently and a failed one is
retried later, after newer ones. The event feed is the ordered source.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

import httpcore
from sqlalchemy import Table, delete, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from standardwebhooks import Webhook

from scimgate.events import feed, ssrf
from scimgate.events.outbox import Event
from scimgate.events.webhooks import EXCERPT_BYTES, FAILED, PENDING, SUCCEEDED
from scimgate.settings import Settings
from scimgate.store.connections import Conn
from scimgate.store.engine import Database
from scimgate.store.prepared import Prepared, keep_warm
from scimgate.store.tables import (
    events,
    feed_cursors,
    organizations,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
from scimgate.store.transient import DatabaseUnavailable

log = logging.getLogger("scimgate.webhooks")

CURSOR = "webhooks"
DEFAULT_SCHEDULE: tuple[float, ...] = (
    5,
    30,
    2 * 60,
    10 * 60,
    30 * 60,
    60 * 60,
    2 * 3600,
    4 * 3600,
    8 * 3600,
    8 * 3600,
)
"""Seconds to wait before each retry: 11 attempts over about 24 hours, then failed."""
JITTER = 0.2
"""Each wait is scaled by a random factor in [1 - JITTER, 1 + JITTER]: enough to spread a
burst of failures, little enough that the schedule still spans about a day."""
PURGE_BATCH = 1000
DISPATCH_BATCHES = 10
"""Batches dispatched per round, so that a large backlog does not hold up deliveries."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _version() -> str:
    try:
        return metadata.version("scimgate")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0"


USER_AGENT = f"scimgate/{_version()}"


def retry_delay(
    schedule: Sequence[float], attempts: int, rng: random.Random | None = None
) -> float | None:
    """Seconds until the next try after ``attempts`` failed ones, or None when the
    schedule is used up (the delivery then fails)."""
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    return base * (rng or random).uniform(1 - JITTER, 1 + JITTER)


def encode_body(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class _Job:
    delivery_id: str
    lease_until: datetime
    attempts: int
    url: str
    secret: str
    msg_id: str
    body: str | None
    """None when the event is gone (only possible if retention raced the claim)."""


@dataclass(frozen=True)
class _Outcome:
    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    excerpt: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookWorker:
    """Dispatches events to deliveries and sends them; see the module docstring.

    ``lease_seconds`` must exceed ``timeout`` (the bound on one whole request), so that a
    live worker never loses a lease to another while still sending. ``retention_days``
    None or 0 keeps events forever.
    """

    def __init__(
        self,
        db: Database,
        *,
        allow_private: bool = False,
        poll_interval: float = 1.0,
        min_cycle: float = 0.05,
        batch: int = 100,
        concurrency: int = 10,
        lease_seconds: float = 60.0,
        connect_timeout: float = 5.0,
        timeout: float = 10.0,
        retention_days: float | None = 30,
        purge_interval: float = 600.0,
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
        rng: random.Random | None = None,
    ) -> None:
        if lease_seconds <= timeout:
            raise ValueError("lease_seconds must be longer than timeout")
        if concurrency < 1 or batch < 1:
            raise ValueError("concurrency and batch must be at least 1")
        self.db = db
        self.allow_private = allow_private
        self.poll_interval = poll_interval
        self.min_cycle = min_cycle
        self.batch = batch
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.connect_timeout = min(connect_timeout, timeout)
        self.timeout = timeout
        self.retention_days = retention_days
        self.purge_interval = purge_interval
        self.schedule = tuple(schedule)
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_purge = 0.0
        self._held_back = 0  # rounds in a row that saw events the feed does not serve yet
        self._more = False  # the last dispatch stopped with events left
        self._last_cycle = float("-inf")

    @classmethod
    def from_settings(cls, db: Database, settings: Settings, **overrides: Any) -> WebhookWorker:
        """A worker configured from Settings (``SCIMGATE_WEBHOOK_*``, retention)."""
        options: dict[str, Any] = {
            "allow_private": settings.webhook_allow_private,
            "concurrency": settings.webhook_concurrency,
            "retention_days": settings.event_retention_days,
        }
        options.update(overrides)
        return cls(db, **options)

    # -- control ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for work now rather than at the next poll (e.g. an event just committed).
        Cheap, and safe to call from any thread or before the worker runs."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish the requests in flight (each is bounded
        by ``timeout``) and return. Database outages are logged and retried."""
        self._loop = asyncio.get_running_loop()
        in_flight: set[asyncio.Task[None]] = set()
        failures = 0
        async with self._http() as pool:
            try:
                while not stop.is_set():
                    await self._pace(stop)
                    self._wake.clear()
                    try:
                        await self._maybe_purge()
                        if await self._any_endpoint():
                            await self.dispatch(max_batches=DISPATCH_BATCHES)
                            free = self.concurrency - len(in_flight)
                            if free > 0:
                                for job in await self._claim(free):
                                    task = asyncio.create_task(self._deliver(pool, job))
                                    in_flight.add(task)
                        else:
                            self._more, self._held_back = False, 0
                        failures = 0
                        wait = 0.0 if self._more else self.poll_interval
                        if self._held_back:
                            # PostgreSQL: an older transaction still runs; look again
                            # soon rather than a whole poll later.
                            wait = min(wait, 0.05 * 2 ** min(self._held_back, 6))
                    except Exception as exc:
                        failures += 1
                        wait = min(30.0, self.poll_interval * 2**failures)
                        if isinstance(exc, DatabaseUnavailable):  # an outage: no traceback
                            log.warning("webhook worker: %s; retrying in %.1f s", exc, wait)
                        else:
                            log.exception("webhook worker: step failed; retrying in %.1f s", wait)
                    await self._idle(stop, in_flight, wait)
                    in_flight = {t for t in in_flight if not t.done()}
            finally:
                if in_flight:
                    await asyncio.wait(in_flight)

    async def run_once(self) -> int:
        """Dispatch, then send everything due until nothing is (retries whose wait is
        zero included). Returns the number of requests made. For tests and cron."""
        self._loop = asyncio.get_running_loop()
        sent = 0
        async with self._http() as pool:
            await self._maybe_purge()
            await self.dispatch()
            while jobs := await self._claim(self.concurrency):
                await asyncio.gather(*(self._deliver(pool, job) for job in jobs))
                sent += len(jobs)
        return sent

    async def _pace(self, stop: asyncio.Event) -> None:
        """At most one cycle per ``min_cycle``: a burst of writes wakes the worker once per
        event, and a cycle per event would cost the server a fifth of its CPU (and, on
        SQLite, the write lock) for nothing. A lone event is still dispatched at once."""
        loop = asyncio.get_running_loop()
        wait = self._last_cycle + self.min_cycle - loop.time()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        self._last_cycle = loop.time()

    async def _idle(
        self, stop: asyncio.Event, in_flight: set[asyncio.Task[None]], seconds: float
    ) -> None:
        """Wait for a wake-up, stop, a finished request (a slot is free), or the poll."""
        waiters = {
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(stop.wait()),
        }
        try:
            await asyncio.wait(
                waiters | in_flight, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()

    # -- 1. dispatch -----------------------------------------------------------------------

    async def dispatch(self, max_batches: int | None = None) -> int:
        """Create deliveries for the new events in the feed (all of them, or at most
        ``max_batches`` batches); returns how many deliveries were created."""
        created = 0
        self._more = False
        if not await self._new_events():
            self._held_back = 0
            return 0
        batches = 0
        while True:
            count, read = await self.db.transact(self._dispatch_batch)
            created += count
            batches += 1
            if read < self.batch:
                break
            if max_batches is not None and batches >= max_batches:
                self._more = True  # a backlog: deliver some, then come back at once
                return created
        # Events past the cursor that the feed did not serve belong to transactions
        # that committed while an older one was still running (see events.feed).
        self._held_back = self._held_back + 1 if await self._new_events() else 0
        return created

    async def _any_endpoint(self) -> bool:
        """Whether any webhook endpoint is enabled. Without one, a cycle reads no events
        and leaves the cursor where it is: no event can match an endpoint registered later
        (it only gets events from its registration on), and the first one registered
        makes the next cycle catch up, in batches. A server whose host app reads the event
        feed instead of webhooks then spends nothing here under load."""
        async with self.db.read() as conn:
            return bool((await conn.execute(_ANY_ENDPOINT)).first())

    async def _new_events(self) -> bool:
        """A read-only peek, so that an idle worker polls without taking SQLite's write
        lock or a PostgreSQL row lock."""
        c = feed_cursors
        async with self.db.read() as conn:
            row = (await conn.execute(select(c.c.txid, c.c.seq).where(c.c.name == CURSOR))).first()
            query = select(events.c.seq).limit(1)
            if row is not None:
                query = query.where(tuple_(events.c.txid, events.c.seq) > tuple_(row.txid, row.seq))
            return (await conn.execute(query)).first() is not None

    async def _dispatch_batch(self, conn: Conn) -> tuple[int, int]:
        now = utcnow()
        row = await self._lock_cursor(conn, now)
        if row is None:  # another worker is dispatching right now
            return 0, 0
        found, cursor = await feed.read(
            conn, after=feed.Cursor(row.txid, row.seq), limit=self.batch, with_data=False
        )
        if not found:
            return 0, 0
        e = webhook_endpoints
        endpoints = list(
            await conn.execute(
                select(
                    e.c.id, e.c.organization_id, e.c.directory_id, e.c.event_types, e.c.created_at
                ).where(
                    e.c.enabled.is_(True),
                    e.c.organization_id.in_({ev.organization_id for ev in found}),
                )
            )
        )
        rows = [
            {
                "id": str(uuid.uuid4()),
                "endpoint_id": ep.id,
                "event_seq": ev.seq,
                "event_id": ev.id,
                "payload": None,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "created_at": now,
                "updated_at": now,
            }
            for ev in found
            for ep in endpoints
            if _matches(ep, ev)
        ]
        created = 0
        if rows:
            result = await conn.execute(
                _upsert(conn, webhook_deliveries)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["endpoint_id", "event_seq"])
            )
            created = max(result.rowcount, 0)
        await conn.execute(
            update(feed_cursors)
            .where(feed_cursors.c.name == CURSOR)
            .values(txid=cursor.txid, seq=cursor.seq, updated_at=now)
        )
        return created, len(found)

    @staticmethod
    async def _lock_cursor(conn: Conn, now: datetime) -> Any:
        """The dispatcher's cursor row, locked for this transaction (created at the
        feed's start if missing), or None if another worker holds it."""
        locked = (
            select(feed_cursors)
            .where(feed_cursors.c.name == CURSOR)
            .with_for_update(skip_locked=True)
        )
        row = (await conn.execute(locked)).first()
        if row is None:
            await conn.execute(
                _upsert(conn, feed_cursors)
                .values(name=CURSOR, txid=0, seq=0, updated_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            row = (await conn.execute(locked)).first()
        return row

    # -- 2. deliver ------------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[_Job]:
        """Lease up to ``limit`` due deliveries of enabled endpoints to this worker."""
        now = utcnow()
        lease = now + timedelta(seconds=self.lease_seconds)
        d, e = webhook_deliveries, webhook_endpoints
        due = (
            d.c.status == PENDING,
            d.c.next_attempt_at <= now,
            or_(d.c.lease_until.is_(None), d.c.lease_until < now),
        )

        async with self.db.read() as conn:  # peek first, as in dispatch
            peek = select(d.c.id).join(e, e.c.id == d.c.endpoint_id).where(*due, e.c.enabled)
            if (await conn.execute(peek.limit(1))).first() is None:
                return []

        async def work(conn: Conn) -> list[Any]:
            ids = list(
                (
                    await conn.execute(
                        select(d.c.id)
                        .join(e, e.c.id == d.c.endpoint_id)
                        .where(*due, e.c.enabled.is_(True))
                        .order_by(d.c.next_attempt_at)
                        .limit(limit)
                        .with_for_update(of=d, skip_locked=True)
                    )
                ).scalars()
            )
            if not ids:
                return []
            await conn.execute(
                update(d)
                .where(d.c.id.in_(ids), *due)
                .values(lease_until=lease, attempts=d.c.attempts + 1, updated_at=now)
            )
            return list(
                await conn.execute(
                    select(
                        d.c.id,
                        d.c.attempts,
                        d.c.event_id,
                        d.c.payload,
                        e.c.url,
                        e.c.secret,
                        events.c.id.label("ev_id"),
                        events.c.type,
                        events.c.directory_id,
                        events.c.organization_id,
                        events.c.occurred_at,
                        events.c.data,
                        organizations.c.external_id,
                    )
                    .select_from(
                        d.join(e, e.c.id == d.c.endpoint_id)
                        .outerjoin(events, events.c.seq == d.c.event_seq)
                        .outerjoin(organizations, organizations.c.id == events.c.organization_id)
                    )
                    .where(d.c.id.in_(ids), d.c.lease_until == lease)
                )
            )

        return [_job(row, lease) for row in await self.db.transact(work)]

    async def _deliver(self, pool: httpcore.AsyncConnectionPool, job: _Job) -> None:
        try:
            outcome = await self._send(pool, job)
            await self._record(job, outcome)
        except Exception:
            # The lease expires and the delivery is tried again.
            log.exception("webhook delivery %s: could not record the attempt", job.delivery_id)

    async def _send(self, pool: httpcore.AsyncConnectionPool, job: _Job) -> _Outcome:
        attempted_at = utcnow()
        started = time.perf_counter()
        status: int | None = None
        excerpt: str | None = None
        error: str | None = None
        try:
            if job.body is None:
                raise _Gone("the event no longer exists (purged by retention)")
            target = ssrf.parse_url(job.url)
            signature = Webhook(job.secret).sign(job.msg_id, attempted_at, job.body)
            headers = [
                ("Host", target.host_header),
                ("Content-Type", "application/json"),
                ("User-Agent", USER_AGENT),
                ("webhook-id", job.msg_id),
                ("webhook-timestamp", str(int(attempted_at.timestamp()))),
                ("webhook-signature", signature),
            ]
            url = httpcore.URL(
                scheme=target.scheme, host=target.host, port=target.port, target=target.path
            )
            limits = {
                "connect": self.connect_timeout,
                "read": self.timeout,
                "write": self.timeout,
                "pool": self.timeout,
            }
            async with (
                asyncio.timeout(self.timeout),
                pool.stream(
                    "POST",
                    url,
                    headers=headers,
                    content=job.body.encode("utf-8"),
                    extensions={"timeout": limits},
                ) as response,
            ):
                status = response.status
                excerpt = await _excerpt(response)
            if 300 <= status < 400:
                location = _header(response.headers, b"location")
                error = f"redirect not followed (Location: {location})"
            elif not 200 <= status < 300:
                error = f"HTTP {status}"
        except ssrf.UnsafeURL as exc:
            error = str(exc)
        except _Gone as exc:
            error = str(exc)
        except (TimeoutError, httpcore.TimeoutException) as exc:
            phase = "connecting" if isinstance(exc, httpcore.ConnectTimeout) else "waiting"
            error = f"timed out {phase} (limit {self.timeout:g} s)"
        except httpcore.ConnectError as exc:
            error = f"connection failed: {_describe(exc)}"
        except httpcore.NetworkError as exc:
            error = f"network error: {_describe(exc)}"
        except httpcore.ProtocolError as exc:
            error = f"bad HTTP response: {_describe(exc)}"
        except Exception as exc:  # a bug or an odd TLS failure: log it, count the attempt
            log.exception("webhook delivery %s failed unexpectedly", job.delivery_id)
            error = f"{type(exc).__name__}: {exc}"
        latency = (time.perf_counter() - started) * 1000
        return _Outcome(attempted_at, status, latency, excerpt, error[:1000] if error else None)

    async def _record(self, job: _Job, outcome: _Outcome) -> None:
        now = utcnow()
        d = webhook_deliveries
        values: dict[str, Any] = {
            "lease_until": None,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "updated_at": now,
        }
        delay = None if outcome.ok else retry_delay(self.schedule, job.attempts, self._rng)
        if outcome.ok:
            values["status"] = SUCCEEDED
        elif delay is None:
            values["status"] = FAILED
        else:
            values["next_attempt_at"] = now + timedelta(seconds=delay)

        async def work(conn: Conn) -> int:
            # Only the holder of the current lease decides; a replay or a newer claim wins.
            result = await conn.execute(
                update(d)
                .where(d.c.id == job.delivery_id, d.c.lease_until == job.lease_until)
                .values(**values)
            )
            still_there = (
                result.rowcount > 0
                or (await conn.execute(select(d.c.id).where(d.c.id == job.delivery_id))).first()
                is not None
            )
            if still_there:
                await conn.execute(
                    insert(webhook_attempts).values(
                        delivery_id=job.delivery_id,
                        attempted_at=outcome.attempted_at,
                        status_code=outcome.status_code,
                        latency_ms=outcome.latency_ms,
                        response_excerpt=outcome.excerpt,
                        error=outcome.error,
                    )
                )
            return int(result.rowcount)

        kept = await self.db.transact(work)
        if outcome.ok:
            log.debug("webhook %s delivered (%s)", job.delivery_id, outcome.status_code)
        else:
            log.info(
                "webhook %s attempt %d failed: %s%s",
                job.delivery_id,
                job.attempts,
                outcome.error,
                "" if kept else " (lease lost; outcome not applied)",
            )

    @contextlib.asynccontextmanager
    async def _http(self) -> AsyncIterator[httpcore.AsyncConnectionPool]:
        # httpcore rather than httpx: only a network backend sees the address actually
        # connected to, which is where the SSRF check must sit. It also never follows
        # redirects and ignores proxy environment variables.
        async with httpcore.AsyncConnectionPool(
            network_backend=ssrf.GuardedBackend(allow_private=self.allow_private),
            max_connections=self.concurrency,
            keepalive_expiry=30.0,
        ) as pool:
            yield pool

    # -- 3. retention ----------------------------------------------------------------------

    async def _maybe_purge(self) -> None:
        if not self.retention_days or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.purge_interval
        deleted = await self.purge()
        if deleted:
            log.info(
                "retention: deleted %d events older than %g days", deleted, self.retention_days
            )

    async def purge(self, *, now: datetime | None = None) -> int:
        """Delete events (and test deliveries) older than ``retention_days``, in small
        transactions; deliveries and attempts go with their event. Returns the number
        of events deleted."""
        if not self.retention_days:
            return 0
        cutoff = (now or utcnow()) - timedelta(days=self.retention_days)
        total = 0
        while True:
            async with self.db.write() as conn:
                seqs = list(
                    (
                        await conn.execute(
                            select(events.c.seq)
                            .where(events.c.occurred_at < cutoff)
                            .order_by(events.c.seq)
                            .limit(PURGE_BATCH)
                        )
                    ).scalars()
                )
                if seqs:
                    await conn.execute(
                        delete(webhook_deliveries).where(webhook_deliveries.c.event_seq.in_(seqs))
                    )
                    await conn.execute(delete(events).where(events.c.seq.in_(seqs)))
            total += len(seqs)
            if len(seqs) < PURGE_BATCH:
                break
        async with self.db.write() as conn:
            await conn.execute(
                delete(webhook_deliveries).where(
                    webhook_deliveries.c.event_seq.is_(None),
                    webhook_deliveries.c.created_at < cutoff,
                )
            )
        return total


class _Gone(Exception):
    pass


def _upsert(conn: Conn, table: Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


_ANY_ENDPOINT = Prepared(
    select(webhook_endpoints.c.id).where(webhook_endpoints.c.enabled.is_(True)).limit(1)
)
keep_warm(_ANY_ENDPOINT)


def _matches(endpoint: Any, event: Event) -> bool:
    """Same organization, the directory if the endpoint names one, the type if it
    filters types, and the event happened after the endpoint was registered."""
    return (
        endpoint.organization_id == event.organization_id
        and (endpoint.directory_id is None or endpoint.directory_id == event.directory_id)
        and (endpoint.event_types is None or event.type in endpoint.event_types)
        and event.occurred_at >= endpoint.created_at
    )


def _job(row: Any, lease: datetime) -> _Job:
    body: str | None
    if row.payload is not None:
        body = encode_body(row.payload)
    elif row.ev_id is not None:
        event = Event(
            id=row.ev_id,
            type=row.type,
            directory_id=row.directory_id,
            organization_id=row.organization_id,
            occurred_at=row.occurred_at,
            data=row.data,
            organization_external_id=row.external_id,
        )
        body = encode_body(event.to_json())
    else:
        body = None
    return _Job(row.id, lease, row.attempts, row.url, row.secret, row.event_id, body)


async def _excerpt(response: httpcore.Response) -> str:
    """The first EXCERPT_BYTES of the body; the rest is never read."""
    chunks = bytearray()
    async for chunk in response.aiter_stream():
        chunks += chunk
        if len(chunks) >= EXCERPT_BYTES:
            break
    return bytes(chunks[:EXCERPT_BYTES]).decode("utf-8", "replace")


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None
