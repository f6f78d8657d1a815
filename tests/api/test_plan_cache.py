"""The match before every create (``userName eq "…"``, 40 % of an Entra cycle's requests)
must run on a plan made once per connection (planning it on every execution cost
PostgreSQL ~200 µs per match), and that plan must follow the table as it grows. A generic
plan PostgreSQL made while a new directory's table was empty walked the directory in
creation order filtering on userName, and kept doing so until autovacuum's next ANALYZE: a
100,000-user initial cycle took 217.7 s instead of 154.8 s, PostgreSQL's CPU per request
1,356 instead of 506 µs (docs/performance.md, round of 2026-12-04). The match is now
prepared anew after 16, 32, 64 … executions on each connection (``literals.replan_often``)."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text

from scimgate import Settings
from scimgate.store.literals import REPLAN_FIRST
from tests.api.stack import SCIM_JSON, build_app

_SEED = text(
    "INSERT INTO users (id, directory_id, user_name, user_name_key, external_id, display_name,"
    " active, data, version, created_at, updated_at)"
    " SELECT md5(:tag || g), :directory_id, 'u' || g, 'u' || g, 'e' || g, 'U' || g, true,"
    " '{}'::jsonb, 1, now(), now() FROM generate_series(1, 20000) g"
)
_PREPARED = text("SELECT name, statement, generic_plans FROM pg_prepared_statements")


def _own_sql(name: str, message: str) -> str:
    """A statement's SQL out of the message that prepared it (several PREPAREs may share
    one message)."""
    return message.split(f"PREPARE {name} AS ")[-1].split(";PREPARE ")[0]


async def test_the_match_is_planned_for_the_table_as_it_grows(database_url: str) -> None:
    settings = Settings(
        database_url=database_url, public_url="http://127.0.0.1:8000", db_pool_size=1
    )
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        db = app.state.db
        tenancy = app.state.tenancy
        org = await tenancy.create_organization(f"Plans {uuid.uuid4().hex[:6]}")
        directory, token = await tenancy.create_directory(org.id, "entra", "entra")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=f"http://127.0.0.1/scim/v2/{directory.id}"
        ) as client:
            # A new directory: the match runs (more than PostgreSQL's five custom plans)
            # while there is nothing to find.
            for n in range(8):
                found = await client.get(f'/Users?filter=userName eq "u{n}"', headers=headers)
                assert found.status_code == 200 and found.json()["totalResults"] == 0
            if db.is_sqlite:
                return  # no plan cache: nothing to go stale
            async with db.write() as conn:
                # No ANALYZE (as between two autovacuum runs) and no DDL: either would
                # make PostgreSQL drop the plans it cached for the table.
                await conn.execute(_SEED, {"tag": uuid.uuid4().hex, "directory_id": directory.id})
            # Past the next re-PREPARE and the five custom plans that follow it.
            for _ in range(REPLAN_FIRST + 6):
                found = await client.get('/Users?filter=userName eq "u19999"', headers=headers)
                assert found.status_code == 200, found.text
                assert found.json()["totalResults"] == 1
        async with db.read() as conn:
            ((name, sql, generic),) = [
                (name, sql, generic)
                for name, message, generic in await conn.execute(_PREPARED)
                if "total_results" in (sql := _own_sql(name, message))
                and "users.user_name_key = $2" in sql
            ]
            uuid.UUID(directory.id)  # safe to write into the statement
            values = [f"'{directory.id}'", "'u19999'", "100", "0"][: sql.count("$")]
            rows = await conn.execute(text(f"EXPLAIN EXECUTE {name}({', '.join(values)})"))
            plan = "\n".join(row[0] for row in rows)
    assert generic > 0, "the match is planned on every execution"
    assert "uq_users_directory_user_name" in plan, plan
