"""One Settings object, read from ``SCIMGATE_*`` environment variables.

CLI options override the environment; a host app embedding scimgate builds Settings
itself and passes it to :func:`scimgate.create_app`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

DEFAULT_DATABASE_URL = "sqlite:///scimgate.db"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
T = TypeVar("T")


def _env_parsed(name: str, default: T, parse: Callable[[str], T], what: str) -> T:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be {what}, got {raw!r}") from exc


def _env_int(name: str, default: int) -> int:
    return _env_parsed(name, default, int, "an integer")


def _env_seconds(name: str, default: float) -> float:
    return _env_parsed(name, default, float, "a number of seconds")


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def default_db_pool_size(processes: int = 1) -> int:
    """Three PostgreSQL connections per core of this machine, shared among the server's
    ``processes``, between 4 and 16 per process.

    Beyond that, connections do not serve more requests: the backends only take turns
    on the same cores, and each request waits longer (on a 2-core host, 20 connections
    per process instead of 6 made the mixed Entra cycle slower and its tail longer;
    docs/performance.md). Fewer leave the cores idle while commits wait for their WAL
    flush (4 instead of 6 served fewer member PATCHes a second). A request beyond the
    pool waits, first come first served, for the next connection returned. 16 is about
    what one process (one core of Python) can keep busy.
    """
    return min(16, max(4, 3 * usable_cores() // max(processes, 1)))


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Every field has an env var ``SCIMGATE_<FIELD>``."""

    database_url: str = DEFAULT_DATABASE_URL
    """Any SQLAlchemy URL; ``postgresql://`` picks psycopg 3, ``sqlite:///path`` the
    standard library's sqlite3."""

    public_url: str = DEFAULT_PUBLIC_URL
    """External base URL, used in Tenant URLs and ``meta.location``."""

    max_body_bytes: int = 1_048_576
    """Larger request bodies get 413 before they are parsed."""

    max_page_size: int = 1000
    """The most resources one list response carries (advertised in ServiceProviderConfig)."""

    default_page_size: int = 100
    """Page size when the client sends no ``count``."""

    db_pool_size: int = field(default_factory=default_db_pool_size)
    """PostgreSQL connections per process: the most statements a process has in flight
    at once, and the connections it keeps open (see :func:`default_db_pool_size`).
    Raise it when PostgreSQL is across a network: each connection then spends longer
    waiting per request."""

    pg_prepared_statements: bool = True
    """PostgreSQL: run the hot statements as server-side prepared statements (PostgreSQL
    then plans each once per connection, not once per execution). Turn it off behind
    PgBouncer (or another pooler) in transaction or statement mode, which shares server
    sessions between clients; left on there, a process turns it off itself at the first
    error, with a warning."""

    pg_warm_sessions: bool = True
    """PostgreSQL: open the pool's connections at start-up (and replace the ones retired
    for their age in the background), each with the hot statements prepared and planned
    before it serves a request. Needs ``pg_prepared_statements``."""

    db_lock_timeout: float = 10.0
    """Seconds a statement may wait for a lock held elsewhere before the request gets 503
    with ``Retry-After``: on PostgreSQL (its ``lock_timeout``) a row another transaction
    is changing, a table a migration or an operator locked; on SQLite another process's
    write lock on the file. 0: no bound of ours (PostgreSQL keeps the server's
    ``lock_timeout``). Bounds how long one stuck lock holds this process's connections,
    which every tenant shares."""

    db_statement_timeout: float = 0.0
    """PostgreSQL: seconds any one statement may run before the request gets 503; 0 (the
    default) leaves the server's ``statement_timeout``. Deleting a directory is one
    statement that grows with its size: leave room for your largest."""

    db_pool_timeout: float = 30.0
    """PostgreSQL: seconds a request may wait for one of this process's connections
    (all in use) before it gets 503; 0 waits as long as it takes. An IdP gives up on a
    request after about 60 s."""

    webhook_allow_private: bool = False
    """Allow webhook URLs on loopback/private/link-local addresses (off: SSRF guard)."""

    event_retention_days: int = 30
    """Events (and their finished deliveries) older than this are purged."""

    webhook_worker: bool = True
    """Run the webhook worker inside the server process (turn off when running
    ``scimgate worker`` processes instead)."""

    webhook_concurrency: int = 10
    """Webhook requests one worker sends at a time."""

    gc_freeze: bool = False
    """After startup, move every object alive to Python's permanent GC generation
    (``gc.freeze()``): a full collection then skips the ~150,000 objects of the loaded
    app, which otherwise cost ~80 ms, a latency spike, each time. ``scimgate serve``
    turns it on; an app that embeds scimgate decides for its own process."""

    def __post_init__(self) -> None:
        if self.db_pool_size < 1:
            # Zero connections would leave every request waiting forever.
            raise ValueError(f"SCIMGATE_DB_POOL_SIZE must be at least 1, got {self.db_pool_size}")
        for name in ("db_lock_timeout", "db_statement_timeout", "db_pool_timeout"):
            value = getattr(self, name)
            if not 0 <= value < math.inf:  # NaN fails too
                raise ValueError(
                    f"SCIMGATE_{name.upper()} must be 0 (no bound) or a positive number of "
                    f"seconds, got {value}"
                )

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from the environment; keyword arguments that are not None win."""
        base = cls(
            database_url=os.environ.get("SCIMGATE_DATABASE_URL") or DEFAULT_DATABASE_URL,
            public_url=os.environ.get("SCIMGATE_PUBLIC_URL") or DEFAULT_PUBLIC_URL,
            max_body_bytes=_env_int("SCIMGATE_MAX_BODY_BYTES", cls.max_body_bytes),
            max_page_size=_env_int("SCIMGATE_MAX_PAGE_SIZE", cls.max_page_size),
            default_page_size=_env_int("SCIMGATE_DEFAULT_PAGE_SIZE", cls.default_page_size),
            db_pool_size=_env_int("SCIMGATE_DB_POOL_SIZE", default_db_pool_size()),
            pg_prepared_statements=_env_bool("SCIMGATE_PG_PREPARED_STATEMENTS", True),
            pg_warm_sessions=_env_bool("SCIMGATE_PG_WARM_SESSIONS", True),
            db_lock_timeout=_env_seconds("SCIMGATE_DB_LOCK_TIMEOUT", cls.db_lock_timeout),
            db_statement_timeout=_env_seconds(
                "SCIMGATE_DB_STATEMENT_TIMEOUT", cls.db_statement_timeout
            ),
            db_pool_timeout=_env_seconds("SCIMGATE_DB_POOL_TIMEOUT", cls.db_pool_timeout),
            webhook_allow_private=_env_bool("SCIMGATE_WEBHOOK_ALLOW_PRIVATE", False),
            event_retention_days=_env_int(
                "SCIMGATE_EVENT_RETENTION_DAYS", cls.event_retention_days
            ),
            webhook_worker=_env_bool("SCIMGATE_WEBHOOK_WORKER", True),
            webhook_concurrency=_env_int("SCIMGATE_WEBHOOK_CONCURRENCY", cls.webhook_concurrency),
            gc_freeze=_env_bool("SCIMGATE_GC_FREEZE", False),
        )
        return base.with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def database_options(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``scimgate.store.engine.Database`` (after the URL), from
        these settings; ``overrides`` win (a CLI command's small pool, say)."""
        return {
            "pool_size": self.db_pool_size,
            "prepared_statements": self.pg_prepared_statements,
            "warm_sessions": self.pg_warm_sessions,
            "lock_timeout": self.db_lock_timeout,
            "statement_timeout": self.db_statement_timeout,
            "pool_timeout": self.db_pool_timeout,
            **overrides,
        }

    @property
    def base_url(self) -> str:
        """``public_url`` without a trailing slash."""
        return self.public_url.rstrip("/")

    def scim_base_url(self, directory_id: str) -> str:
        return f"{self.base_url}/scim/v2/{directory_id}"
