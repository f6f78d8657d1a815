"""The SCIM 2.0 ASGI app for all directories, mounted at ``/scim/v2``; each directory
lives under ``/scim/v2/{directory_id}/``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from scimgate.directory.tenancy import Tenancy
from scimgate.errors import Conflict, InvalidInput, NotFound
from scimgate.events.bus import EventBus
from scimgate.scim import discovery
from scimgate.scim.endpoints import ScimEndpoints
from scimgate.scim.errors import ScimError
from scimgate.scim.http import error_response, scim_response
from scimgate.settings import Settings
from scimgate.store.engine import Database
from scimgate.store.transient import DatabaseUnavailable

SCIM_MOUNT = "/scim/v2"

Handler = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("scimgate.scim")

_ID = "{id}"
"""A path segment standing for a resource id (``/Users/{id}``)."""


def scim_routes(
    db: Database, settings: Settings, tenancy: Tenancy, bus: EventBus | None = None
) -> dict[tuple[str, ...], dict[str, Handler]]:
    """Every endpoint under ``/{directory_id}``: path segments → method → handler."""
    ep = ScimEndpoints(db, settings, tenancy, bus)

    async def service_provider_config(request: Request) -> Response:
        base = await ep.authenticated_base(request)
        return scim_response(discovery.service_provider_config(base, settings.max_page_size))

    async def schemas(request: Request) -> Response:
        return scim_response(discovery.schemas(await ep.authenticated_base(request)))

    async def schema(request: Request) -> Response:
        base = await ep.authenticated_base(request)
        return scim_response(discovery.schema(base, request.path_params["id"]))

    async def resource_types(request: Request) -> Response:
        return scim_response(discovery.resource_types(await ep.authenticated_base(request)))

    async def resource_type(request: Request) -> Response:
        base = await ep.authenticated_base(request)
        return scim_response(discovery.resource_type(base, request.path_params["id"]))

    return {
        ("Users",): {"GET": ep.list_users, "POST": ep.create_user},
        ("Users", ".search"): {"POST": ep.search_users},
        ("Users", _ID): {
            "GET": ep.get_user,
            "PUT": ep.replace_user,
            "PATCH": ep.patch_user,
            "DELETE": ep.delete_user,
        },
        ("Groups",): {"GET": ep.list_groups, "POST": ep.create_group},
        ("Groups", ".search"): {"POST": ep.search_groups},
        ("Groups", _ID): {
            "GET": ep.get_group,
            "PUT": ep.replace_group,
            "PATCH": ep.patch_group,
            "DELETE": ep.delete_group,
        },
        (".search",): {"POST": ep.search_all},
        ("ServiceProviderConfig",): {"GET": service_provider_config},
        ("Schemas",): {"GET": schemas},
        ("Schemas", _ID): {"GET": schema},
        ("ResourceTypes",): {"GET": resource_types},
        ("ResourceTypes", _ID): {"GET": resource_type},
    }


def _error_for(request: Request, exc: Exception) -> ScimError:
    """Any exception a handler raises, as the SCIM error the client gets."""
    if isinstance(exc, ScimError):
        return exc
    if isinstance(exc, Conflict):
        return ScimError(409, str(exc), "uniqueness")
    if isinstance(exc, NotFound):
        return ScimError(404, str(exc))
    if isinstance(exc, InvalidInput):
        return ScimError(400, str(exc), "invalidValue")
    if isinstance(exc, HTTPException):
        return ScimError(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
    if isinstance(exc, DatabaseUnavailable):
        # Transient: the IdP retries. One line per request, not a traceback each.
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return ScimError(503, exc.public, headers={"Retry-After": str(exc.retry_after_s)})
    # The traceback goes to the operator's log; the client gets a SCIM error, never a page.
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return ScimError(500, "internal server error; the operator's log has details")


class ScimApp:
    """The SCIM 2.0 ASGI app for all directories, mounted at ``/scim/v2``.

    It dispatches on path segments with one dict lookup, and turns every exception into a
    SCIM error itself: a Starlette app here (its router tries each route's regex in turn,
    plus its own error and exception middleware) cost more CPU than serving a ``GET``.
    """

    def __init__(self, routes: dict[tuple[str, ...], dict[str, Handler]]) -> None:
        self.routes = routes

    def _match(self, path: str) -> tuple[dict[str, Handler], dict[str, str]] | None:
        """``/{directory_id}/{head}[/{tail}]`` → (methods, path params), or None (also for
        a directory id with NUL, which names none and would fail in PostgreSQL's driver)."""
        parts = path.split("/", 3)
        if len(parts) < 3 or parts[0] or not parts[1] or not parts[2] or "\x00" in parts[1]:
            return None
        params = {"directory_id": parts[1]}
        head, tail = parts[2], parts[3] if len(parts) == 4 else None
        if tail is None:
            methods = self.routes.get((head,))
        elif (head, tail) in self.routes:
            methods = self.routes[(head, tail)]
        elif tail and ("/" not in tail or head == "Schemas"):  # a schema id is a URN
            methods = self.routes.get((head, _ID))
            params["id"] = tail
        else:
            methods = None
        return (methods, params) if methods is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, root = scope["path"], scope.get("root_path", "")
        found = self._match(path[len(root) :] if root and path.startswith(root) else path)
        scope["path_params"] = found[1] if found else {}
        request = Request(scope, receive)
        try:
            if found is None:
                raise ScimError(
                    404, f"no SCIM endpoint at {request.url.path}; check the Tenant URL"
                )
            methods = found[0]
            method = "GET" if scope["method"] == "HEAD" else scope["method"]
            handler = methods.get(method)
            if handler is None:
                allow = ", ".join(sorted({*methods, "HEAD"} if "GET" in methods else methods))
                raise ScimError(
                    405,
                    f"{scope['method']} is not supported on {request.url.path}",
                    headers={"Allow": allow},
                )
            response = await handler(request)
        except Exception as exc:
            response = error_response(_error_for(request, exc))
        await response(scope, receive, send)


def scim_app(
    db: Database, settings: Settings, tenancy: Tenancy, bus: EventBus | None = None
) -> ScimApp:
    return ScimApp(scim_routes(db, settings, tenancy, bus))
