"""``UTCDateTime`` reads back every instant it wrote, aware and in UTC, on both backends;
on SQLite it stores exactly the text SQLAlchemy's own ``DATETIME`` type stores, so rows
written before and after it sort and compare alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects import sqlite

from scimgate.store.engine import Database
from scimgate.store.prepared import Prepared
from scimgate.store.tables import organizations

from .organization_rows import COLUMNS, org_row

INSTANTS = [
    datetime(2026, 11, 26, 4, 5, 10, 801206, tzinfo=UTC),
    datetime(2026, 11, 26, 4, 5, 10, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 6, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 6, 1, 1, 0, tzinfo=timezone(timedelta(hours=-8))),
]
_INSERT = Prepared(organizations.insert(), column_keys=COLUMNS)
_CREATED = Prepared(
    select(organizations.c.created_at).where(organizations.c.external_id == bindparam("e"))
)


@pytest.mark.parametrize("instant", INSTANTS, ids=str)
async def test_an_instant_reads_back_as_written(db: Database, instant: datetime) -> None:
    external_id = f"ext-{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(_INSERT, {**org_row(external_id), "created_at": instant})
    async with db.read() as conn:
        stored = (await conn.execute(_CREATED, {"e": external_id})).scalar()
        core = (
            await conn.execute(
                select(organizations.c.created_at).where(organizations.c.external_id == external_id)
            )
        ).scalar()
        if db.is_sqlite:
            raw = (
                await conn.execute(
                    text("SELECT created_at FROM organizations WHERE external_id = :e"),
                    {"e": external_id},
                )
            ).scalar()
            naive = instant.astimezone(UTC).replace(tzinfo=None)
            assert raw == sqlite.DATETIME().bind_processor(sqlite.dialect())(naive)
    for read in (stored, core):
        assert read == instant
        assert read.tzinfo is not None and read.utcoffset() == timedelta(0)


async def test_a_naive_datetime_is_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with db.write() as conn:
            await conn.execute(
                _INSERT, {**org_row(f"ext-{uuid.uuid4().hex}"), "created_at": datetime(2026, 1, 1)}
            )


def test_a_repeated_instant_is_written_alike_and_the_next_one_anew() -> None:
    """The SQLite writer remembers its last value (a write binds one instant many times):
    equal instants in other zones, and the instants around them, still get their own text."""
    from scimgate.store.tables import UTCDateTime

    to_text = UTCDateTime().bind_processor(sqlite.dialect())
    reference = sqlite.DATETIME().bind_processor(sqlite.dialect())
    for instant in [*INSTANTS, INSTANTS[0], INSTANTS[0], INSTANTS[4], INSTANTS[1], INSTANTS[4]]:
        naive = instant.astimezone(UTC).replace(tzinfo=None)
        assert to_text(instant) == to_text(instant) == reference(naive)
    assert to_text(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        to_text(datetime(2026, 1, 1))
