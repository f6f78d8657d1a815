"""A deferred statement (sent with the next statement or with COMMIT on PostgreSQL) keeps
its caller's error mapping wherever its error surfaces, and the transaction is rolled
back; on SQLite the same call fails at once, mapped the same way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from scimgate.store.engine import Database
from scimgate.store.prepared import Prepared
from scimgate.store.tables import organizations

_INSERT = Prepared(
    organizations.insert(),
    column_keys=("id", "name", "external_id", "created_at", "updated_at"),
    deferrable=True,
)
_COUNT = Prepared(
    select(organizations.c.id).where(organizations.c.external_id == bindparam("external_id"))
)


class Clash(Exception):
    pass


def _row(external_id: str) -> dict[str, object]:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    return {
        "id": uuid.uuid4().hex,
        "name": "n",
        "external_id": external_id,
        "created_at": now,
        "updated_at": now,
    }


def _clash(exc: Exception) -> Exception | None:
    return Clash(str(exc)) if isinstance(exc, IntegrityError) else None


@pytest.fixture()
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.mark.parametrize("then_read", [False, True], ids=["at-commit", "at-next-statement"])
@pytest.mark.parametrize("before", [1, 12], ids=["short-batch", "long-batch"])
async def test_a_deferred_error_is_mapped_where_it_surfaces(
    db: Database, then_read: bool, before: int
) -> None:
    """Short batches go as one simple-query message, long ones in a pipeline."""
    taken = f"ext-{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(_INSERT, _row(taken))
    fresh = [f"ext-{uuid.uuid4().hex}" for _ in range(before)]
    with pytest.raises(Clash):
        async with db.write() as conn:
            for external_id in fresh:  # these succeed, and are rolled back below
                await conn.execute(_INSERT, _row(external_id))
            await conn.execute(_INSERT, _row(taken), on_error=_clash)
            if then_read:
                await conn.execute(_COUNT, {"external_id": taken})
    async with db.read() as conn:
        for external_id in fresh:
            assert (await conn.execute(_COUNT, {"external_id": external_id})).first() is None
        assert len((await conn.execute(_COUNT, {"external_id": taken})).all()) == 1


@pytest.mark.parametrize("rows", [1, 12])
async def test_deferred_rows_commit_with_their_types(db: Database, rows: int) -> None:
    """What a batch binds on the client side reads back as the driver would bind it."""
    names = [f"Zoë's ✓ %s %(x)s \\ {n}" for n in range(rows)]
    tag = uuid.uuid4().hex
    async with db.write() as conn:
        for n, name in enumerate(names):
            await conn.execute(_INSERT, {**_row(f"{tag}-{n}"), "name": name})
    async with db.read() as conn:
        for n, name in enumerate(names):
            row = (
                await conn.execute(
                    Prepared(
                        select(organizations.c.name, organizations.c.created_at).where(
                            organizations.c.external_id == bindparam("e")
                        )
                    ),
                    {"e": f"{tag}-{n}"},
                )
            ).first()
            assert row is not None
            assert row.name == name
            assert row.created_at == datetime(2026, 11, 25, tzinfo=UTC)


async def test_without_a_mapping_the_integrity_error_surfaces(db: Database) -> None:
    taken = f"ext-{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(_INSERT, _row(taken))
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(_INSERT, _row(taken))


async def test_a_batch_insert_fails_whole_and_mapped(db: Database) -> None:
    """A deferred batch goes as one multi-row INSERT on PostgreSQL: a clash in any row
    fails the whole batch, with the caller's mapping."""
    taken = f"ext-{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(_INSERT, _row(taken))
    fresh = [f"ext-{uuid.uuid4().hex}" for _ in range(3)]
    with pytest.raises(Clash):
        async with db.write() as conn:
            await conn.execute(
                _INSERT,
                [_row(fresh[0]), _row(fresh[1]), _row(taken), _row(fresh[2])],
                on_error=_clash,
            )
    async with db.read() as conn:
        for external_id in fresh:
            assert (await conn.execute(_COUNT, {"external_id": external_id})).first() is None
