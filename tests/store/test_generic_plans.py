"""The searches run before every create (Entra's match: ``userName eq "…"``, a group's
``displayName eq "…"``) must be planned once per connection on PostgreSQL, not on every
execution. With ``OFFSET $n`` in the prepared statement, PostgreSQL priced its generic plan
above every custom one (an unknown offset is assumed to skip a tenth of the rows) and
re-planned it each time: ~¼ of PostgreSQL's CPU in the mixed Entra cycle. A first page is
now a statement without ``OFFSET``; later pages keep it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from scimgate.directory import groups, users
from scimgate.directory.records import ColumnMatch
from scimgate.store.engine import Database

_PLANS = text(
    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
    "WHERE statement LIKE '%total_results%'"
)


async def _search_repeatedly(db: Database, times: int) -> None:
    directory_id = str(uuid.uuid4())
    for n in range(times):
        async with db.read() as conn:
            page = await users.search(
                conn, directory_id, ColumnMatch("user_name_key", f"u{n}"), (), 0, 100, groups=True
            )
            assert page.total == 0 and page.records == []
            page = await users.search(conn, directory_id, ColumnMatch("external_id", "e"), (), 0, 1)
            assert page.total == 0
            page = await groups.search(
                conn, directory_id, ColumnMatch("display_name_key", f"g{n}"), (), 0, 100
            )
            assert page.total == 0


async def test_the_match_before_a_create_is_planned_once_per_connection(db: Database) -> None:
    await _search_repeatedly(db, 12)  # PostgreSQL decides after five custom plans
    if db.is_sqlite:
        return  # SQLite has no plan cache to get wrong; the searches ran above.
    async with db.read() as conn:
        plans: list[Any] = list(await conn.execute(_PLANS))
    assert len(plans) == 3, plans  # one per search shape, prepared once on the one connection
    for statement, generic, custom in plans:
        assert generic >= 12 - 5 and custom <= 5, (generic, custom, statement)
