"""``create_app(settings)``: the whole scimgate ASGI app, for ``scimgate serve`` or for
mounting inside a host app (``host.mount("/", create_app(settings))``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from scimgate.directory.tenancy import Tenancy
from scimgate.middleware import AccessLog, NormalizePath
from scimgate.scim.app import SCIM_MOUNT, scim_app
from scimgate.settings import Settings
from scimgate.store.engine import Database
from scimgate.store.migrate import upgrade


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> Starlette:
    """Build the app. With ``migrate`` (the default) startup brings the schema to head."""
    settings = settings or Settings.from_env()
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    tenancy = Tenancy(db)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if migrate:
            await anyio.to_thread.run_sync(upgrade, settings.database_url)
        try:
            yield
        finally:
            await db.dispose()

    async def health(_request: Request) -> Response:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/healthz", health, methods=["GET"]),
            Mount(SCIM_MOUNT, app=scim_app(db, settings, tenancy)),
        ],
        middleware=[Middleware(AccessLog), Middleware(NormalizePath)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.tenancy = tenancy
    return app
