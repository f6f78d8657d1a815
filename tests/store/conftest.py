"""Fixtures of the store tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from scimgate.store.engine import Database
from scimgate.store.prepared import Prepared
from scimgate.store.tables import organizations

from .organization_rows import COLUMNS, org_row


@pytest.fixture()
async def db(database_url: str) -> AsyncIterator[Database]:
    """A Database on the module's fresh database, with one pooled connection: a test
    that runs two units sees the same PostgreSQL connection twice. Modules that need
    another pool define their own ``db``."""
    database = Database(database_url, pool_size=1)
    yield database
    await database.dispose()


@pytest.fixture()
async def bare_db(database_url: str) -> AsyncIterator[Database]:
    """A Database (four pooled connections) on the module's database, its organizations
    deleted first: for tests that count what they wrote."""
    database = Database(database_url, pool_size=4)
    async with database.write() as conn:
        await conn.execute(text("DELETE FROM organizations"))
    yield database
    await database.dispose()


@pytest.fixture()
async def keyed(db: Database) -> str:
    """The external id of a stored organization named "key" (on the module's ``db``)."""
    external_id = f"key-{uuid.uuid4().hex}"
    async with db.write() as conn:
        await conn.execute(
            Prepared(organizations.insert(), column_keys=COLUMNS), org_row(external_id, "key")
        )
    return external_id
