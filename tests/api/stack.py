"""The full ASGI app as ``create_app`` will serve it once the management API is wired in:
scimgate's app with the API mounted at ``/api/v1`` over the same services (so events of a
token rotation reach ``on_event`` too). Tests build it here until ``app.py`` mounts it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette

from scimgate import Settings, create_app
from scimgate.api import API_MOUNT
from scimgate.directory.api_keys import ApiKeys
from scimgate.events.bus import Listener
from scimgate.events.outbox import Event

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def build_app(
    settings: Settings, *, on_event: Listener | None = None, migrate: bool = False
) -> Starlette:
    # Private targets allowed: tests register 127.0.0.1 URLs and never run the worker.
    settings = settings.with_overrides(webhook_allow_private=True, webhook_worker=False)
    app = create_app(settings, on_event=on_event, migrate=migrate)
    app.state.api_keys = ApiKeys(app.state.db)
    return app


@dataclass
class ScimDirectory:
    id: str
    organization_id: str
    token: str
    raw: dict[str, Any]


@dataclass
class Stack:
    """The app, an HTTP client into it, a live API key and the events seen in-process."""

    app: Starlette
    client: httpx.AsyncClient
    key: str
    api_keys: ApiKeys
    events: list[Event] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return await self.client.request(method, f"{API_MOUNT}{path}", headers=headers, **kwargs)

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.api(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    async def organization(self, external_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": f"Org {uuid.uuid4().hex[:8]}"}
        if external_id is not None:
            body["external_id"] = external_id
        org: dict[str, Any] = await self.ok("POST", "/organizations", 201, json=body)
        return org

    async def directory(
        self, organization_id: str | None = None, provider: str = "entra"
    ) -> ScimDirectory:
        if organization_id is None:
            organization_id = (await self.organization())["id"]
        raw = await self.ok(
            "POST",
            "/directories",
            201,
            json={"organization_id": organization_id, "provider": provider},
        )
        return ScimDirectory(raw["id"], organization_id, raw["token"], raw)

    async def scim(
        self, directory: ScimDirectory, method: str, path: str, body: Any = None
    ) -> httpx.Response:
        return await self.client.request(
            method,
            f"/scim/v2/{directory.id}{path}",
            content=json.dumps(body) if body is not None else None,
            headers={"Authorization": f"Bearer {directory.token}", "Content-Type": SCIM_JSON},
        )

    async def scim_user(self, directory: ScimDirectory, **overrides: Any) -> dict[str, Any]:
        tag = uuid.uuid4().hex[:10]
        body: dict[str, Any] = {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": f"user_{tag}@contoso.com",
            "externalId": f"ext-{tag}",
            "active": True,
            "displayName": f"User {tag}",
            "title": "Engineer",
            "name": {"givenName": f"Given{tag}", "familyName": f"Family{tag}"},
            "emails": [
                {"type": "home", "value": f"home_{tag}@example.net"},
                {"type": "work", "value": f"work_{tag}@contoso.com", "primary": True},
            ],
            ENTERPRISE: {
                "department": "R&D",
                "employeeNumber": f"E-{tag}",
                "manager": {"value": "mgr-1"},
            },
        }
        body.update(overrides)
        response = await self.scim(directory, "POST", "/Users", body)
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()
        return user

    async def scim_group(
        self, directory: ScimDirectory, member_ids: Sequence[str] = (), **overrides: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": [GROUP_SCHEMA],
            "displayName": f"Group {uuid.uuid4().hex[:10]}",
            "externalId": f"gext-{uuid.uuid4().hex[:10]}",
            "members": [{"value": m} for m in member_ids],
        }
        body.update(overrides)
        response = await self.scim(directory, "POST", "/Groups", body)
        assert response.status_code == 201, response.text
        group: dict[str, Any] = response.json()
        return group

    async def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Follow next_cursor to the end; asserts the cursor eventually runs out."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(1000):
            query = dict(params)
            if cursor is not None:
                query["after"] = cursor
            page = await self.ok("GET", path, params=query)
            items.extend(page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items
        raise AssertionError("paging did not end")

    async def follow_events(
        self, want: int, cursor: str | None = None, **params: Any
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Read the feed from ``cursor`` until ``want`` events came, as a consumer polls.

        On PostgreSQL an event is served once every older transaction has ended, including
        other clients' (see events.feed), so a fresh event may take a moment to appear."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while True:
            query = dict(params)
            if cursor is not None:
                query["after"] = cursor
            page = await self.ok("GET", "/events", params=query)
            assert page["next_cursor"]
            seen.extend(page["data"])
            if page["data"]:
                cursor = page["next_cursor"]
                continue
            assert page["has_more"] is False
            if cursor is not None:
                assert page["next_cursor"] == cursor  # an empty page keeps the position
            if len(seen) >= want or time.monotonic() > deadline:
                return seen, cursor
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_stack(database_url: str) -> AsyncIterator[Stack]:
    settings = Settings(database_url=database_url, public_url="http://127.0.0.1:8000")
    events: list[Event] = []
    app = build_app(settings, on_event=events.append)
    async with app.router.lifespan_context(app):
        api_keys: ApiKeys = app.state.api_keys
        _, secret = await api_keys.create("tests")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield Stack(app, client, secret, api_keys, events)
