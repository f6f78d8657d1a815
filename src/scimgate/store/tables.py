"""The database schema, as SQLAlchemy Core tables.

Resources are stored as their canonical SCIM JSON document (``data``) beside the few
columns that are indexed, unique or hot (userName, externalId, displayName, active,
timestamps, version). Group membership lives in its own table so that adding or removing
k members costs O(k) whatever the group's size, and reading a group without members never
touches it. Alembic migrations (``store/migrations``) create these tables; keep both in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no timezone type).

    On SQLite the value is stored as text in SQLAlchemy's own ``DATETIME`` format
    (``2026-11-26 04:05:10.801206``, UTC, always six fractional digits), written and read
    by ``isoformat``/``fromisoformat`` here: SQLAlchemy's processors for that format cost
    ~8 µs per value to write, and a create writes three."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # The last value and its text: a write binds one timestamp many times (a member
        # row and an event per member added), and datetimes are immutable.
        last: tuple[datetime | None, str | None] = (None, None)

        def to_text(value: datetime | None) -> str | None:
            nonlocal last
            seen, text = last
            if value is seen:
                return text
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            utc = value if value.tzinfo is UTC else value.astimezone(UTC)
            text = utc.replace(tzinfo=None).isoformat(" ", "microseconds")
            last = (value, text)
            return text

        return to_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def from_text(value: str | None) -> datetime | None:
            if value is None:
                return None
            return datetime.fromisoformat(value).replace(tzinfo=UTC)

        return from_text

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=UTC)
        return stamp.astimezone(UTC)


JsonDoc = JSON().with_variant(JSONB(), "postgresql")
"""JSON everywhere, JSONB on PostgreSQL (so filters can use its operators)."""

ID = String(36)

organizations = Table(
    "organizations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("external_id", String(255), nullable=True, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

directories = Table(
    "directories",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id",
        ID,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", Text, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("token_hint", String(16), nullable=False),
    Column("token_rotated_at", UTCDateTime, nullable=False),
    # The host app's acceptance rules for incoming users (see directory.rules); null = none.
    Column("rules", JsonDoc, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("directory_id", ID, ForeignKey("directories.id", ondelete="CASCADE"), nullable=False),
    Column("user_name", Text, nullable=False),
    Column("user_name_key", Text, nullable=False),
    Column("external_id", Text, nullable=True),
    Column("display_name", Text, nullable=True),
    Column("active", Boolean, nullable=True),
    Column("data", JsonDoc, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("directory_id", "user_name_key", name="uq_users_directory_user_name"),
    Index("ix_users_directory_external_id", "directory_id", "external_id"),
    Index("ix_users_directory_created", "directory_id", "created_at", "id"),
    Index("ix_users_directory_updated", "directory_id", "updated_at", "id"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", ID, primary_key=True),
    Column("directory_id", ID, ForeignKey("directories.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", Text, nullable=False),
    Column("display_name_key", Text, nullable=False),
    Column("external_id", Text, nullable=True),
    Column("data", JsonDoc, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_groups_directory_display_name", "directory_id", "display_name_key"),
    Index("ix_groups_directory_external_id", "directory_id", "external_id"),
    Index("ix_groups_directory_created", "directory_id", "created_at", "id"),
    Index("ix_groups_directory_updated", "directory_id", "updated_at", "id"),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", ID, primary_key=True),
    Column("directory_id", ID, nullable=False),
    # Exactly one of these is set; the foreign keys make a member row impossible without
    # its user or group, even under concurrent deletes.
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("member_group_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), nullable=True),
    Column("display", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(
        "(user_id IS NOT NULL AND member_group_id IS NULL AND member_id = user_id) OR "
        "(user_id IS NULL AND member_group_id IS NOT NULL AND member_id = member_group_id)",
        name="one_member",
    ),
    Index("ix_group_members_user", "user_id"),
    Index("ix_group_members_member_group", "member_group_id"),
)

# -- host-app integration (events, webhooks, management API) ------------------------------

Seq = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit sequence on PostgreSQL; SQLite only auto-increments an INTEGER primary key."""

events = Table(
    "events",
    metadata,
    # Feed order is (txid, seq). On PostgreSQL txid is the writing transaction's id and the
    # feed only serves transactions older than every one still running (see events.feed),
    # so a reader never skips an event whose sequence value committed late. SQLite has one
    # writer at a time, so seq alone is commit order and txid is 0.
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("txid", BigInteger, nullable=False),
    Column("id", String(40), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("directory_id", ID, nullable=False),
    Column("organization_id", ID, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("data", JsonDoc, nullable=False),
    Index("ix_events_directory_order", "directory_id", "txid", "seq"),
    Index("ix_events_organization_order", "organization_id", "txid", "seq"),
    Index("ix_events_order", "txid", "seq"),
    Index("ix_events_occurred_at", "occurred_at"),
    sqlite_autoincrement=True,
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id",
        ID,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column(
        "directory_id",
        ID,
        ForeignKey("directories.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    Column("url", Text, nullable=False),
    # Needed in clear to sign payloads (Standard Webhooks uses HMAC-SHA256).
    Column("secret", Text, nullable=False),
    Column("event_types", JsonDoc, nullable=True),
    Column("description", Text, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "endpoint_id",
        ID,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # Null for a test delivery ("send a test event"), whose body is in ``payload``.
    Column("event_seq", Seq, ForeignKey("events.seq", ondelete="CASCADE"), nullable=True),
    Column("event_id", String(40), nullable=False),
    Column("payload", JsonDoc, nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("endpoint_id", "event_seq", name="uq_webhook_deliveries_endpoint_event"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    # Retention deletes events; the cascade finds their deliveries through this.
    Index("ix_webhook_deliveries_event_seq", "event_seq"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column(
        "delivery_id",
        ID,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("response_excerpt", Text, nullable=True),
    Column("error", Text, nullable=True),
)

feed_cursors = Table(
    "feed_cursors",
    metadata,
    # Named positions in the event feed, e.g. the webhook dispatcher's.
    Column("name", String(64), primary_key=True),
    Column("txid", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_hint", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)
