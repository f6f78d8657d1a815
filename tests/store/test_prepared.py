"""Prepared statements run on the driver must behave exactly like ``conn.execute``: same
rows, same Python types (tz-aware datetimes, JSON documents, booleans), same exceptions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from scimgate.directory.tenancy import Tenancy
from scimgate.store.engine import Database
from scimgate.store.prepared import Prepared
from scimgate.store.tables import users

_INSERT = users.insert()
_PREPARED_INSERT = Prepared(users.insert(), column_keys=tuple(c.name for c in users.c))
_SELECT = select(users).where(users.c.directory_id == bindparam("d")).order_by(users.c.user_name)
_PREPARED_SELECT = Prepared(_SELECT)


@pytest.fixture()
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def _new_directory(db: Database, name: str) -> str:
    tenancy = Tenancy(db)
    org = await tenancy.create_organization(name)
    directory, _ = await tenancy.create_directory(org.id, "d", "entra")
    return directory.id


def _row(directory_id: str, name: str, **extra: Any) -> dict[str, Any]:
    now = datetime(2026, 11, 25, 12, 30, 1, 123456, tzinfo=UTC)
    return {
        "id": str(uuid.uuid4()),
        "directory_id": directory_id,
        "user_name": name,
        "user_name_key": name.casefold(),
        "external_id": None,
        "display_name": "Zoë ✓",
        "active": False,
        "data": {"userName": name, "emails": [{"value": name, "primary": True}], "n": 2**70},
        "version": 3,
        "created_at": now,
        "updated_at": now,
        **extra,
    }


async def test_prepared_statements_match_sqlalchemy(db: Database) -> None:
    directory_id = await _new_directory(db, "Prepared")
    async with db.write() as conn:
        await conn.execute(_PREPARED_INSERT, _row(directory_id, "a@x"))
        # executemany, as the events INSERT does
        await conn.execute(_PREPARED_INSERT, [_row(directory_id, "b@x"), _row(directory_id, "c@x")])
        await conn.execute(_INSERT, _row(directory_id, "d@x", active=None))
    async with db.read() as conn:
        prepared = (await conn.execute(_PREPARED_SELECT, {"d": directory_id})).all()
        reference = list(await conn.execute(_SELECT, {"d": directory_id}))
    assert [tuple(r) for r in prepared] == [tuple(r) for r in reference]
    assert len(prepared) == 4
    first = prepared[0]
    assert first.created_at == datetime(2026, 11, 25, 12, 30, 1, 123456, tzinfo=UTC)
    assert first.created_at.tzinfo is not None
    assert first.data["n"] == 2**70 and first.data["emails"][0]["primary"] is True
    assert first.active is False and prepared[3].active is None
    assert first.display_name == "Zoë ✓"


async def test_prepared_errors_are_sqlalchemy_errors(db: Database) -> None:
    directory_id = await _new_directory(db, "Prepared errors")
    row = _row(directory_id, "dup@x")
    async with db.write() as conn:
        await conn.execute(_PREPARED_INSERT, row)
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(_PREPARED_INSERT, {**row, "id": str(uuid.uuid4())})
    async with db.read() as conn:
        found = await conn.execute(_PREPARED_SELECT, {"d": directory_id})
        assert [r.user_name for r in found] == ["dup@x"], "the failed write left nothing"


class _Boom(Exception):
    pass


async def _user_names(db: Database, directory_id: str) -> list[str]:
    async with db.read() as conn:
        return [r.user_name for r in await conn.execute(_PREPARED_SELECT, {"d": directory_id})]


async def test_a_write_is_atomic_whatever_runs_in_it(db: Database) -> None:
    """PostgreSQL sends BEGIN with the first statement and defers result-less batches to
    the next statement or COMMIT: none of that may weaken the transaction."""
    directory_id = await _new_directory(db, "Atomic")
    d = directory_id
    # 1. prepared + SQLAlchemy statements, then the code fails: nothing stays
    with pytest.raises(_Boom):
        async with db.write() as conn:
            await conn.execute(_PREPARED_INSERT, _row(d, "one@x"))
            await conn.execute(_INSERT, _row(d, "two@x"))
            await conn.execute(_PREPARED_INSERT, [_row(d, "three@x")])  # deferred
            raise _Boom
    assert await _user_names(db, d) == []
    # 2. only SQLAlchemy statements (BEGIN pending until then)
    with pytest.raises(_Boom):
        async with db.write() as conn:
            await conn.execute(_INSERT, _row(d, "four@x"))
            raise _Boom
    assert await _user_names(db, d) == []
    # 3. a deferred batch that fails at COMMIT takes the whole transaction with it
    taken = _row(d, "taken@x")
    async with db.write() as conn:
        await conn.execute(_PREPARED_INSERT, taken)
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(_PREPARED_INSERT, _row(d, "five@x"))
            await conn.execute(_PREPARED_INSERT, [_row(d, "six@x"), {**taken}])
    assert await _user_names(db, d) == ["taken@x"]
    # 4. the connection is clean afterwards: a good write commits
    async with db.write() as conn:
        await conn.execute(_PREPARED_INSERT, [_row(d, "seven@x")])
    assert await _user_names(db, d) == ["seven@x", "taken@x"]
    # 5. an empty transaction commits nothing and breaks nothing
    async with db.write():
        pass
    assert await _user_names(db, d) == ["seven@x", "taken@x"]


_BUMP = Prepared(
    users.update()
    .where(users.c.id == bindparam("uid"))
    .values(version=users.c.version + bindparam("by")),
    deferrable=True,
)
_VERSION = Prepared(select(users.c.version).where(users.c.id == bindparam("uid")))


async def test_a_deferrable_statement_is_applied_in_order(db: Database) -> None:
    """A deferrable statement may travel later (PostgreSQL), never out of order: the next
    statement of the transaction sees it, COMMIT keeps it, a failure drops it."""
    directory_id = await _new_directory(db, "Deferrable")
    row = _row(directory_id, "bump@x")
    async with db.write() as conn:
        await conn.execute(_PREPARED_INSERT, row)
    async with db.write() as conn:
        await conn.execute(_BUMP, {"uid": row["id"], "by": 1})
        assert (await conn.execute(_VERSION, {"uid": row["id"]})).scalar_one() == 4
        await conn.execute(_BUMP, {"uid": row["id"], "by": 10})
    async with db.read() as conn:
        assert (await conn.execute(_VERSION, {"uid": row["id"]})).scalar_one() == 14
    with pytest.raises(_Boom):
        async with db.write() as conn:
            await conn.execute(_BUMP, {"uid": row["id"], "by": 100})
            raise _Boom
    async with db.read() as conn:
        assert (await conn.execute(_VERSION, {"uid": row["id"]})).scalar_one() == 14
