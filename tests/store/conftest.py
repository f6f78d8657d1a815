"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from scimgate.store.engine import Database


@pytest.fixture()
async def db(database_url: str) -> AsyncIterator[Database]:
    """A Database on the module's fresh database, with one pooled connection: a test
    that runs two units sees the same PostgreSQL connection twice. Modules that need
    another pool define their own ``db``."""
    database = Database(database_url, pool_size=1)
    yield database
    await database.dispose()
