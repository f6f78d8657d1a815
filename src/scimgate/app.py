"""``create_app(settings)``: the whole scimgate ASGI app, for ``scimgate serve`` or for
mounting inside a host app (``host.mount("/", create_app(settings))``)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from scimgate.api import api_mount
from scimgate.directory.tenancy import Tenancy
from scimgate.events.bus import EventBus, Listener
from scimgate.events.webhooks import Webhooks
from scimgate.events.worker import WebhookWorker
from scimgate.logs import configure_server_logging
from scimgate.middleware import AccessLog, NormalizePath
from scimgate.scim.app import SCIM_MOUNT, ScimApp, scim_app
from scimgate.settings import Settings
from scimgate.store.engine import Database


class ScimgateApp(Starlette):
    """The whole app: a Starlette app whose SCIM requests take a shorter road.

    SCIM requests are nearly all of the traffic. They go through the access log and path
    normalisation straight to the SCIM app (which maps every error to a SCIM error
    itself), skipping Starlette's router and its error and exception layers, which cost
    as much CPU as an indexed lookup. Everything else (``/healthz``, ``/api/v1``, the
    lifespan, paths that need normalising first) is plain Starlette.
    """

    def __init__(self, scim: ScimApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)

        async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
            scope["root_path"] = scope.get("root_path", "") + SCIM_MOUNT
            await scim(scope, receive, send)

        self._scim = AccessLog(NormalizePath(mounted))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, root = scope["path"], scope.get("root_path", "")
            if path.startswith(root + SCIM_MOUNT + "/"):
                scope["app"] = self
                await self._scim(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_worker_app() -> Starlette:
    """The app of one ``scimgate serve --workers N`` process (uvicorn's factory): settings
    from the environment, and no migration (the command brought the schema to head
    before it started the workers). Logging as ``serve`` sets it up (uvicorn's own
    configuration covers only its loggers: the access log would be lost)."""
    configure_server_logging()
    return create_app(migrate=False)


def create_app(
    settings: Settings | None = None,
    *,
    on_event: Listener | None = None,
    migrate: bool = True,
) -> Starlette:
    """Build the app.

    ``on_event``: called (sync or async) with each :class:`~scimgate.events.outbox.Event`
    after its transaction commits (a request's events in order; across concurrent
    requests, read the feed for commit order) — for host apps that mount scimgate and
    want changes in-process. With ``migrate`` (the default) startup brings the schema
    to head.
    """
    settings = settings or Settings.from_env()
    db = Database(settings.database_url, **settings.database_options(background_checkpoints=True))
    bus = EventBus()
    if on_event is not None:
        bus.subscribe(on_event)
    tenancy = Tenancy(db, bus)
    worker = WebhookWorker.from_settings(db, settings) if settings.webhook_worker else None
    if worker is not None:
        bus.subscribe(lambda _event: worker.wake())
    webhooks = Webhooks(
        db,
        allow_private=settings.webhook_allow_private,
        notify=worker.wake if worker is not None else None,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if migrate:
            # Imported here: Alembic costs a process ~12 MiB that a worker started by
            # `serve --workers N` (whose command migrated already) need not pay.
            from scimgate.store.migrate import upgrade

            await anyio.to_thread.run_sync(upgrade, settings.database_url)
        await db.warm_up()  # PostgreSQL: the pool opens, its sessions ready to serve
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run_forever(stop)) if worker is not None else None
        if settings.gc_freeze:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            stop.set()
            if task is not None and worker is not None:
                try:
                    await asyncio.wait_for(task, worker.timeout + 5)
                except TimeoutError:
                    task.cancel()
            await db.dispose()

    async def health(_request: Request) -> Response:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))
        return JSONResponse({"status": "ok"})

    scim = scim_app(db, settings, tenancy, bus)
    app = ScimgateApp(
        scim,
        routes=[
            Route("/healthz", health, methods=["GET"]),
            Mount(SCIM_MOUNT, app=scim),
            api_mount(db, settings, tenancy, webhooks),
        ],
        middleware=[Middleware(AccessLog), Middleware(NormalizePath)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.tenancy = tenancy
    app.state.bus = bus
    app.state.webhooks = webhooks
    app.state.webhook_worker = worker
    return app
