"""A user's groups are listed in the database's order of displayName, whichever way they
are read: with the user in one statement, or by the separate groups query. Regression: the
one-statement read also sorted them in Python (code point order), which on a PostgreSQL
database with a linguistic collation put "Zed" before "Émile" where the other read did
not."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from scimgate.directory import users as user_repo
from scimgate.store.connections import Conn
from scimgate.store.engine import Database
from tests.api.stack import Stack

# Code point order and a linguistic (en-US) order disagree on these.
_NAMES = ["Zed", "Émile", "alpha", "Beta", "ábaco"]


async def test_one_statement_and_separate_reads_list_groups_alike(
    stack: Stack, database_url: str
) -> None:
    db: Database = stack.app.state.db
    if db.dialect == "postgresql":
        async with db.write() as conn:
            await conn.execute(
                text('ALTER TABLE groups ALTER COLUMN display_name TYPE text COLLATE "en-US-x-icu"')
            )
    directory = await stack.directory()
    user = await stack.scim_user(directory)
    for name in _NAMES:
        await stack.scim_group(directory, [user["id"]], displayName=name)

    async def read_both(conn: Conn) -> tuple[Any, Any]:
        together = await user_repo.get(conn, directory.id, user["id"], groups=True)
        return together, await user_repo.groups_of(conn, [user["id"]])

    # In a unit that is replayed: a statement the server prepared before the ALTER above
    # is refused once ("cached plan must not change result type"), as after a migration
    # by another process (tests/store/test_prepared_statements.py).
    together, separate = await db.transact(read_both)
    assert together is not None and together.groups is not None
    assert [name for _, name in together.groups] == [name for _, name in separate[user["id"]]]
    if db.dialect == "postgresql":  # the linguistic order, not code points
        assert [name for _, name in together.groups] == ["ábaco", "alpha", "Beta", "Émile", "Zed"]
    else:  # SQLite's BINARY collation: code points
        assert [name for _, name in together.groups] == sorted(_NAMES)


pytestmark = pytest.mark.asyncio(loop_scope="session")
