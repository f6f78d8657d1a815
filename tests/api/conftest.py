"""Fixtures for the management API tests: the full app in-process, once per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.stack import Stack, running_stack


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(database_url: str) -> AsyncIterator[Stack]:
    async with running_stack(database_url) as s:
        yield s
