"""What every route shares: the services, the API-key check, paging parameters and the
documented error responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from scimgate.api.errors import error_response, unavailable_response
from scimgate.api.models import ErrorResponse
from scimgate.directory.api_keys import ApiKeys
from scimgate.directory.tenancy import Tenancy
from scimgate.events.webhooks import Webhooks
from scimgate.settings import Settings
from scimgate.store.engine import Database
from scimgate.store.transient import DatabaseUnavailable

MAX_LIMIT = 1000


@dataclass(frozen=True)
class Services:
    db: Database
    settings: Settings
    tenancy: Tenancy
    api_keys: ApiKeys
    webhooks: Webhooks | None


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


Svc = Annotated[Services, Depends(_services)]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="`Authorization: Bearer scimgate_key_…` (create one: `scimgate api-key create`).",
)
"""Declares the scheme in the OpenAPI document; :class:`ApiKeyAuth` enforces it."""

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (at most {MAX_LIMIT}).")]
After = Annotated[
    str | None,
    Query(max_length=1000, description="The `next_cursor` of the previous page."),
]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer (400, 401, 422 and 503
    on every route: a NUL character anywhere in the path or query is a 400, and any
    route can find the database out of reach)."""
    described = {
        400: "Invalid request (bad cursor, rule document, filter combination, NUL character).",
        401: "Missing, unknown or revoked API key.",
        404: "No such resource.",
        409: "Conflicts with existing data.",
        422: "The request does not match the schema.",
        503: "The database cannot be reached; retry after `Retry-After` seconds.",
    }
    return {
        s: {"model": ErrorResponse, "description": described[s]}
        for s in sorted({400, 401, 422, 503, *statuses})
    }


class ApiKeyAuth:
    """Refuses every request without a live API key before routing, so unknown paths,
    malformed bodies and bad parameters all answer 401 to a caller without a key. The
    OpenAPI document and interactive docs stay public (they hold no data)."""

    def __init__(self, app: ASGIApp, api_keys: ApiKeys, public_paths: frozenset[str]) -> None:
        self.app = app
        self.api_keys = api_keys
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path in self.public_paths:
            await self.app(scope, receive, send)
            return
        scheme, _, secret = (Headers(scope=scope).get("authorization") or "").partition(" ")
        secret = secret.strip()
        key = None
        if scheme.lower() == "bearer" and secret:
            try:
                key = await self.api_keys.authenticate(secret)
            except DatabaseUnavailable as exc:
                await unavailable_response(exc)(scope, receive, send)
                return
        if key is None:
            message = (
                "invalid or revoked API key"
                if secret
                else "an API key is required: Authorization: Bearer scimgate_key_…"
            )
            response = error_response(
                401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the driver.
        query: bytes = scope.get("query_string", b"")
        if "\x00" in path or b"%00" in query or b"\x00" in query:
            response = error_response(400, "invalid_request", "NUL characters are not allowed")
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = key
        await self.app(scope, receive, send)
