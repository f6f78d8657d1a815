"""Bulk seeding for the scaling benchmarks — SEEDING ONLY.

Creating 100,000 group members or 1,000,000 users through the SCIM API would take longer
than the measurement itself, so these helpers write rows straight into scimgate's tables
(``scimgate.store.tables``) with SQLAlchemy Core, in large batches. The rows look exactly
like the ones the server writes: the canonical user document as ``parse_user`` returns it
for an Entra body, and the derived columns computed with the server's own ``fold``.
Nothing here is a way to provision users in production: use the SCIM API for that.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import harness

harness.use_src()

from sqlalchemy import Engine, create_engine, text  # noqa: E402

from scimgate.directory.keys import fold  # noqa: E402
from scimgate.store.engine import sync_url  # noqa: E402
from scimgate.store.tables import group_members, groups, users  # noqa: E402

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BATCH = 10_000


def engine(database_url: str) -> Engine:
    eng = create_engine(sync_url(database_url))
    if eng.dialect.name == "sqlite":
        from sqlalchemy import event

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=OFF",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=30000",
                "PRAGMA cache_size=-400000",
            ):
                cur.execute(pragma)
            cur.close()

    return eng


def user_name(prefix: str, i: int) -> str:
    return f"{prefix}.{i}@contoso.com"


def user_doc(name: str, i: int) -> dict[str, Any]:
    """The canonical document ``parse_user`` stores for an Entra ``POST /Users``."""
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": str(uuid.UUID(int=i + 1, version=4)),
        "userName": name,
        "name": {"formatted": f"Seed User{i}", "familyName": f"User{i}", "givenName": "Seed"},
        "displayName": f"Seed User{i}",
        "active": True,
        "emails": [{"value": name, "type": "work", "primary": True}],
        ENTERPRISE: {"employeeNumber": f"E-{i}", "department": "Sales"},
    }


def _batches(start: int, stop: int) -> Iterator[range]:
    for lo in range(start, stop, BATCH):
        yield range(lo, min(stop, lo + BATCH))


def seed_users(
    eng: Engine,
    directory_id: str,
    count: int,
    *,
    prefix: str = "seed",
    start: int = 0,
    keep_ids: bool = True,
    progress: bool = False,
) -> list[str]:
    """Insert users ``prefix.start@contoso.com`` … ``prefix.(start+count-1)@…``; returns
    their ids in that order (or [] with ``keep_ids=False``)."""
    ids: list[str] = []
    base = datetime.now(UTC)
    began = time.monotonic()
    for batch in _batches(start, start + count):
        rows = []
        for i in batch:
            name = user_name(prefix, i)
            doc = user_doc(name, i)
            uid = str(uuid.uuid4())
            stamp = base + timedelta(microseconds=i)
            rows.append(
                {
                    "id": uid,
                    "directory_id": directory_id,
                    "user_name": name,
                    "user_name_key": fold(name),
                    "external_id": doc["externalId"],
                    "display_name": doc["displayName"],
                    "active": True,
                    "data": doc,
                    "version": 1,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
            if keep_ids:
                ids.append(uid)
        with eng.begin() as conn:
            conn.execute(users.insert(), rows)
        if progress and (batch.stop - start) % 100_000 == 0:
            done = batch.stop - start
            rate = done / (time.monotonic() - began)
            print(f"  seeded {done:,} users ({rate:,.0f}/s)", flush=True)
    return ids


def seed_group(eng: Engine, directory_id: str, display_name: str) -> str:
    now = datetime.now(UTC)
    gid = str(uuid.uuid4())
    doc = {"schemas": [GROUP_SCHEMA], "displayName": display_name}
    with eng.begin() as conn:
        conn.execute(
            groups.insert().values(
                id=gid,
                directory_id=directory_id,
                display_name=display_name,
                display_name_key=fold(display_name),
                external_id=None,
                data=doc,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
    return gid


def seed_members(eng: Engine, directory_id: str, group_id: str, user_ids: Sequence[str]) -> None:
    now = datetime.now(UTC)
    for lo in range(0, len(user_ids), BATCH):
        rows = [
            {
                "group_id": group_id,
                "member_id": uid,
                "directory_id": directory_id,
                "user_id": uid,
                "member_group_id": None,
                "display": None,
                "created_at": now,
            }
            for uid in user_ids[lo : lo + BATCH]
        ]
        with eng.begin() as conn:
            conn.execute(group_members.insert(), rows)


def analyze(eng: Engine) -> None:
    """Refresh planner statistics and (PostgreSQL) the visibility map, as autovacuum would
    soon after a bulk load, so that it does not kick in during the measurement."""
    if eng.dialect.name == "postgresql":
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        return
    with eng.begin() as conn:
        conn.execute(text("ANALYZE"))
