"""Rows of the ``organizations`` table for store tests: a small table whose INSERT and
unique ``external_id`` exercise every path of the connection layer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from scimgate.store.prepared import Prepared
from scimgate.store.tables import organizations

COLUMNS = ("id", "name", "external_id", "created_at", "updated_at")
DEFERRED_INSERT = Prepared(organizations.insert(), column_keys=COLUMNS, deferrable=True)
"""Sent with the next statement (or COMMIT) on PostgreSQL."""


def org_row(external_id: str, name: str = "n") -> dict[str, object]:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    return {
        "id": uuid.uuid4().hex,
        "name": name,
        "external_id": external_id,
        "created_at": now,
        "updated_at": now,
    }
