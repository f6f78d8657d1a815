"""How the CLI prints: JSON for scripts (``--json``), labelled text for people."""

from __future__ import annotations

import json
import sys
from typing import Any

from scimgate.directory.tenancy import Directory, Organization
from scimgate.directory.views import directory_view, tenant_url
from scimgate.settings import Settings


def directory_json(
    settings: Settings, directory: Directory, token: str | None = None
) -> dict[str, Any]:
    out = directory_view(settings, directory)
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
