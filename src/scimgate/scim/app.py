"""The SCIM 2.0 ASGI app for all directories, mounted at ``/scim/v2``; each directory
lives under ``/scim/v2/{directory_id}/``."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimgate.directory.tenancy import Tenancy
from scimgate.errors import Conflict, InvalidInput, NotFound
from scimgate.events.bus import EventBus
from scimgate.scim import discovery
from scimgate.scim.endpoints import ScimEndpoints
from scimgate.scim.errors import ScimError
from scimgate.scim.http import error_response, scim_response
from scimgate.settings import Settings
from scimgate.store.engine import Database

SCIM_MOUNT = "/scim/v2"
SCIM_PREFIX = "/{directory_id}"


def scim_routes(
    db: Database, settings: Settings, tenancy: Tenancy, bus: EventBus | None = None
) -> list[Route]:
    ep = ScimEndpoints(db, settings, tenancy, bus)

    async def service_provider_config(request: Request) -> Response:
        caller = await ep.caller(request)
        return scim_response(
            discovery.service_provider_config(caller.scim_base, settings.max_page_size)
        )

    async def schemas(request: Request) -> Response:
        return scim_response(discovery.schemas((await ep.caller(request)).scim_base))

    async def schema(request: Request) -> Response:
        caller = await ep.caller(request)
        return scim_response(discovery.schema(caller.scim_base, request.path_params["id"]))

    async def resource_types(request: Request) -> Response:
        return scim_response(discovery.resource_types((await ep.caller(request)).scim_base))

    async def resource_type(request: Request) -> Response:
        caller = await ep.caller(request)
        return scim_response(discovery.resource_type(caller.scim_base, request.path_params["id"]))

    p = SCIM_PREFIX
    return [
        Route(f"{p}/Users", ep.list_users, methods=["GET"]),
        Route(f"{p}/Users", ep.create_user, methods=["POST"]),
        Route(f"{p}/Users/.search", ep.search_users, methods=["POST"]),
        Route(f"{p}/Users/{{id}}", ep.get_user, methods=["GET"]),
        Route(f"{p}/Users/{{id}}", ep.replace_user, methods=["PUT"]),
        Route(f"{p}/Users/{{id}}", ep.patch_user, methods=["PATCH"]),
        Route(f"{p}/Users/{{id}}", ep.delete_user, methods=["DELETE"]),
        Route(f"{p}/Groups", ep.list_groups, methods=["GET"]),
        Route(f"{p}/Groups", ep.create_group, methods=["POST"]),
        Route(f"{p}/Groups/.search", ep.search_groups, methods=["POST"]),
        Route(f"{p}/Groups/{{id}}", ep.get_group, methods=["GET"]),
        Route(f"{p}/Groups/{{id}}", ep.replace_group, methods=["PUT"]),
        Route(f"{p}/Groups/{{id}}", ep.patch_group, methods=["PATCH"]),
        Route(f"{p}/Groups/{{id}}", ep.delete_group, methods=["DELETE"]),
        Route(f"{p}/.search", ep.search_all, methods=["POST"]),
        Route(f"{p}/ServiceProviderConfig", service_provider_config, methods=["GET"]),
        Route(f"{p}/Schemas", schemas, methods=["GET"]),
        Route(f"{p}/Schemas/{{id:path}}", schema, methods=["GET"]),
        Route(f"{p}/ResourceTypes", resource_types, methods=["GET"]),
        Route(f"{p}/ResourceTypes/{{id}}", resource_type, methods=["GET"]),
    ]


async def _scim_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ScimError)
    return error_response(exc)


async def _domain_error(_request: Request, exc: Exception) -> Response:
    if isinstance(exc, Conflict):
        return error_response(ScimError(409, str(exc), "uniqueness"))
    if isinstance(exc, NotFound):
        return error_response(ScimError(404, str(exc)))
    return error_response(ScimError(400, str(exc), "invalidValue"))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        detail = f"{request.method} is not supported on {request.url.path}"
    elif exc.status_code == 404:
        detail = f"no SCIM endpoint at {request.url.path}; check the Tenant URL"
    else:
        detail = str(exc.detail)
    headers = dict(exc.headers or {})
    return error_response(ScimError(exc.status_code, detail, headers=headers))


async def _unexpected(_request: Request, _exc: Exception) -> Response:
    # The traceback goes to the server log via Starlette's ServerErrorMiddleware; the
    # client gets a SCIM error, never an HTML page.
    return error_response(ScimError(500, "internal server error; the operator's log has details"))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ScimError: _scim_error,
    Conflict: _domain_error,
    InvalidInput: _domain_error,
    NotFound: _domain_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}


def scim_app(
    db: Database, settings: Settings, tenancy: Tenancy, bus: EventBus | None = None
) -> Starlette:
    return Starlette(
        routes=scim_routes(db, settings, tenancy, bus), exception_handlers=EXCEPTION_HANDLERS
    )
