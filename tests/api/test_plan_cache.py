"""Every statement an Entra provisioning cycle runs again and again must settle on one
plan per PostgreSQL connection. PostgreSQL plans a prepared statement anew on each
execution when it prices the statement's generic plan above the custom ones it tried
first; the match before every create did so for months (its ``OFFSET $n``, see
``tests/store/test_generic_plans.py``), ~¼ of PostgreSQL's CPU. This test runs the cycle
through the whole app on one connection and reads PostgreSQL's own plan counters, so a new
statement with the same trap fails here, whichever it is."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from scimgate import Settings
from tests.api.stack import GROUP_SCHEMA, PATCH_SCHEMA, SCIM_JSON, USER_SCHEMA, build_app

_ROUNDS = 12
"""PostgreSQL tries five custom plans before it may choose the generic one."""

_PLANS = text("SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements")


async def test_a_provisioning_cycle_settles_on_one_plan_per_statement(database_url: str) -> None:
    settings = Settings(
        database_url=database_url, public_url="http://127.0.0.1:8000", db_pool_size=1
    )
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        tenancy = app.state.tenancy
        org = await tenancy.create_organization(f"Plans {uuid.uuid4().hex[:6]}")
        directory, token = await tenancy.create_directory(org.id, "entra", "entra")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=f"http://127.0.0.1/scim/v2/{directory.id}"
        ) as client:

            async def call(method: str, path: str, body: Any = None, want: int = 200) -> Any:
                content = None if body is None else json.dumps(body)
                response = await client.request(method, path, content=content, headers=headers)
                assert response.status_code == want, f"{method} {path}: {response.text}"
                return response.json() if response.content else None

            group_name = f"Team {uuid.uuid4().hex[:6]}"
            found = await call("GET", f'/Groups?filter=displayName eq "{group_name}"')
            assert found["totalResults"] == 0
            group = await call(
                "POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": group_name}, 201
            )
            for n in range(_ROUNDS):
                user_name = f"plan{n}.{uuid.uuid4().hex[:6]}@contoso.com"
                match = f'/Users?filter=userName eq "{user_name}"'
                assert (await call("GET", match))["totalResults"] == 0
                body = {"schemas": [USER_SCHEMA], "userName": user_name, "active": True}
                user = await call("POST", "/Users", body, 201)
                assert (await call("GET", match))["totalResults"] == 1
                await call("GET", f"/Users/{user['id']}")
                add = {"op": "Add", "path": "members", "value": [{"value": user["id"]}]}
                patch = {"schemas": [PATCH_SCHEMA], "Operations": [add]}
                await call("PATCH", f"/Groups/{group['id']}", patch, 204)
                title = {"op": "Replace", "path": "title", "value": f"T{n}"}
                await call(
                    "PATCH",
                    f"/Users/{user['id']}",
                    {"schemas": [PATCH_SCHEMA], "Operations": [title]},
                )
                remove = {"op": "Remove", "path": f'members[value eq "{user["id"]}"]'}
                patch = {"schemas": [PATCH_SCHEMA], "Operations": [remove]}
                await call("PATCH", f"/Groups/{group['id']}", patch, 204)
                await call("DELETE", f"/Users/{user['id']}", want=204)
        if app.state.db.is_sqlite:
            return  # no plan cache; the cycle above ran all the same
        async with app.state.db.read() as conn:
            plans = list(await conn.execute(_PLANS))
    hot = [p for p in plans if p.generic_plans + p.custom_plans >= _ROUNDS]
    assert len(hot) >= 8, [p.name for p in plans]  # the cycle's statements ran on this one
    replanned = [
        (p.custom_plans, p.statement.split(f"PREPARE {p.name} AS ")[-1].split(";PREPARE")[0])
        for p in hot
        if p.generic_plans == 0
    ]
    assert replanned == [], replanned
