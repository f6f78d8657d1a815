"""How the CLI prints: JSON for scripts (``--json``), labelled text for people."""

from __future__ import annotations

import json
import sys
from typing import Any

from scimgate.directory.tenancy import Directory, Organization
from scimgate.settings import Settings


def tenant_url(settings: Settings, directory: Directory) -> str:
    """The URL an IdP admin pastes: Entra gets the flag selecting its RFC-compliant PATCH
    dialect (both dialects work either way)."""
    base = settings.scim_base_url(directory.id)
    return f"{base}?aadOptscim062020" if directory.provider == "entra" else base


def directory_json(
    settings: Settings, directory: Directory, token: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": directory.id,
        "organization_id": directory.organization_id,
        "name": directory.name,
        "provider": directory.provider,
        "enabled": directory.enabled,
        "scim_base_url": settings.scim_base_url(directory.id),
        "tenant_url": tenant_url(settings, directory),
        "token_hint": directory.token_hint,
        "created_at": directory.created_at.isoformat(),
    }
    if token is not None:
        out["token"] = token
    return out


def organization_json(org: Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "external_id": org.external_id,
        "created_at": org.created_at.isoformat(),
    }


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def print_directory(settings: Settings, directory: Directory, token: str | None = None) -> None:
    state = "enabled" if directory.enabled else "DISABLED"
    print(f"Directory   {directory.name}  [{directory.provider}, {state}]")
    print(f"  id            {directory.id}")
    print(f"  Tenant URL    {tenant_url(settings, directory)}")
    if token is not None:
        print(f"  Secret Token  {token}")
        print("  (The Secret Token is shown only this once; store it now or rotate it later.)")
    else:
        print(
            f"  Secret Token  {directory.token_hint} (hidden; new one: "
            f"scimgate directory rotate-token {directory.id})"
        )


def fail(message: str, code: int = 1) -> int:
    print(f"scimgate: error: {message}", file=sys.stderr)
    return code
