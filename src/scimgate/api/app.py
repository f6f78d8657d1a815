"""``create_api(...)``: the management API as a FastAPI app, mounted at ``/api/v1``.

Routes are relative (``/organizations``), so the mount point is the host's choice; the
OpenAPI document's ``servers`` entry follows the mount (ASGI ``root_path``)."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, Security
from starlette.routing import Mount

from scimgate.api import data, errors, tenants
from scimgate.api import webhooks as webhook_routes
from scimgate.api.deps import ApiKeyAuth, Services, bearer
from scimgate.directory.api_keys import ApiKeys
from scimgate.directory.tenancy import Tenancy
from scimgate.events.webhooks import Webhooks
from scimgate.settings import Settings
from scimgate.store.engine import Database

API_MOUNT = "/api/v1"

DESCRIPTION = """\
Manage organizations, SCIM directories, rules and webhooks, and read what the identity
providers provisioned: users and groups in a flat, normalized shape (with the full SCIM
resource in `raw`) and the event feed.

Every route needs `Authorization: Bearer <API key>`; create a key with
`scimgate api-key create`. Errors are `{"error": {"code": …, "message": …}}`.
Listings are cursor-paged: pass `next_cursor` back as `after` until it is null.
"""

TAGS = [
    {"name": "organizations", "description": "The host app's customers."},
    {"name": "directories", "description": "SCIM directories: tokens, rules, enable."},
    {"name": "users", "description": "Provisioned users, read-only."},
    {"name": "groups", "description": "Provisioned groups and members, read-only."},
    {"name": "events", "description": "Every change, in commit order."},
    {"name": "webhooks", "description": "Push the event feed to your HTTP(S) endpoints."},
]


def _version() -> str:
    try:
        return version("scimgate")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def create_api(
    db: Database,
    settings: Settings,
    tenancy: Tenancy,
    api_keys: ApiKeys,
    webhooks: Webhooks | None = None,
) -> FastAPI:
    """Build the management API over the given services (those of ``create_app``, so
    that e.g. a token rotation reaches its ``on_event`` listeners). Without a webhooks
    service the webhook routes are left out."""
    app = FastAPI(
        title="scimgate management API",
        version=_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
        dependencies=[Security(bearer)],
    )
    app.state.services = Services(db, settings, tenancy, api_keys, webhooks)
    errors.install(app)
    app.include_router(tenants.router)
    app.include_router(data.router)
    if webhooks is not None:
        app.include_router(webhook_routes.router)
    public = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
    app.add_middleware(ApiKeyAuth, api_keys=api_keys, public_paths=public)
    return app


class ApiMount(Mount):
    """A Mount whose pattern also matches paths with an (encoded) newline.

    Starlette compiles ``/api/v1/{path:path}`` to ``.*`` without DOTALL, so such a path
    would miss the mount and get the outer app's plain-text 404 instead of this API's
    JSON error (or its 401)."""

    def __init__(self, path: str, app: FastAPI) -> None:
        super().__init__(path, app=app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def api_mount(
    db: Database,
    settings: Settings,
    tenancy: Tenancy,
    webhooks: Webhooks | None = None,
    *,
    path: str = API_MOUNT,
) -> ApiMount:
    """The management API as a route for ``create_app``'s route list."""
    return ApiMount(path, create_api(db, settings, tenancy, ApiKeys(db), webhooks))
