"""A FastAPI host app that embeds scimgate and reacts to provisioning in-process.

The app mounts scimgate (SCIM endpoints for its customers' IdPs) and passes
``on_event``: after each SCIM change commits, scimgate calls it with the event, in commit
order, so the app can create accounts, update profiles and sign out deactivated users
without webhooks or polling. ``Accounts`` stands in for the app's own database.

Run it (from the repository root)::

    SCIMGATE_DATABASE_URL=sqlite:///host.db uvicorn examples.fastapi_host:app --port 8000

then connect a customer's IdP::

    curl -X POST localhost:8000/customers/acme/scim

and paste the returned Tenant URL and Secret Token into Entra ID or Okta.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI

from scimgate import Settings, create_app
from scimgate.errors import NotFound
from scimgate.events.outbox import Event


@dataclass
class Account:
    """The host app's own user record, keyed by scimgate's user id."""

    id: str
    organization_id: str
    """scimgate's id for the customer (the app keeps the mapping; see connect_scim)."""
    email: str | None
    name: str | None
    active: bool


class Accounts:
    """Stand-in for the host app's database: kept in step with each customer's IdP."""

    def __init__(self) -> None:
        self.by_id: dict[str, Account] = {}
        self.signed_out: list[str] = []

    def apply(self, event: Event) -> None:
        if not event.type.startswith("user."):
            return  # groups, memberships, token rotations: not used by this app
        user: dict[str, Any] = event.data["user"]
        if event.type == "user.deleted":
            self.by_id.pop(user["id"], None)
            return
        self.by_id[user["id"]] = Account(
            id=user["id"],
            organization_id=event.organization_id,
            email=user["email"],
            name=user["display_name"] or user["username"],
            active=user["active"],
        )
        if event.type == "user.deactivated":
            self.signed_out.append(user["id"])  # e.g. revoke the user's sessions here


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    accounts = Accounts()

    async def on_scim_event(event: Event) -> None:
        # Called after the SCIM change commits. Keep it quick (it runs inside the IdP's
        # request); an exception here is logged and never fails that request.
        accounts.apply(event)

    scim = create_app(settings, on_event=on_scim_event)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # A mounted app's lifespan does not run by itself: run scimgate's (it migrates
        # the database and closes its connection pool on shutdown).
        async with scim.router.lifespan_context(scim):
            yield

    app = FastAPI(title="Host app", lifespan=lifespan)
    app.state.accounts = accounts

    @app.post("/customers/{customer_id}/scim", status_code=201)
    async def connect_scim(customer_id: str, provider: str = "entra") -> dict[str, Any]:
        """The app's onboarding step: give a customer's IdP admin what to paste."""
        tenancy = scim.state.tenancy
        try:
            org = await tenancy.get_organization(customer_id)
        except NotFound:
            org = await tenancy.create_organization(f"Customer {customer_id}", customer_id)
        directory, token = await tenancy.create_directory(org.id, provider=provider)
        tenant_url = settings.scim_base_url(directory.id)
        if provider == "entra":
            tenant_url += "?aadOptscim062020"
        return {
            "organization_id": org.id,  # store it with the customer: events carry it
            "directory_id": directory.id,
            "tenant_url": tenant_url,
            "secret_token": token,
        }

    @app.get("/accounts")
    async def list_accounts() -> dict[str, Any]:
        return {
            "accounts": [asdict(a) for a in accounts.by_id.values()],
            "signed_out": accounts.signed_out,
        }

    # Last, so the app's own routes win: /scim/v2/… and /healthz go to scimgate.
    app.mount("/", scim)
    return app


app = build_app()
