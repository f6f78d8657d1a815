"""How a directory is shown to the host app's people and programs (CLI, management API):
with the URLs an IdP admin pastes, never with its token hash."""

from __future__ import annotations

from typing import Any

from scimgate.directory.rules import parse_rules
from scimgate.directory.tenancy import Directory
from scimgate.settings import Settings


def tenant_url(settings: Settings, directory: Directory) -> str:
    """The URL an IdP admin pastes: Entra gets the flag selecting its RFC-compliant PATCH
    dialect (both dialects work either way)."""
    base = settings.scim_base_url(directory.id)
    return f"{base}?aadOptscim062020" if directory.provider == "entra" else base


def directory_view(settings: Settings, directory: Directory) -> dict[str, Any]:
    return {
        "id": directory.id,
        "organization_id": directory.organization_id,
        "name": directory.name,
        "provider": directory.provider,
        "enabled": directory.enabled,
        "scim_base_url": settings.scim_base_url(directory.id),
        "tenant_url": tenant_url(settings, directory),
        "token_hint": directory.token_hint,
        "token_rotated_at": directory.token_rotated_at.isoformat(),
        "rules": parse_rules(directory.rules).to_json() if directory.rules else None,
        "created_at": directory.created_at.isoformat(),
        "updated_at": directory.updated_at.isoformat(),
    }
