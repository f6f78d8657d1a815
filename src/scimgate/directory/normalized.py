"""The normalized user and group: a flat shape for host apps that don't want to parse
SCIM. Used in event payloads and by the management API; ``raw`` keeps the full resource."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from scimgate.directory.records import ResourceRecord

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _timestamp(record: ResourceRecord, field: str) -> str:
    stamp: datetime = getattr(record, field)
    return stamp.isoformat().replace("+00:00", "Z")


def raw_resource(record: ResourceRecord, resource_type: str) -> dict[str, Any]:
    """The SCIM resource as stored, with ``id`` and ``meta`` (no location: that depends
    on the public URL the IdP uses)."""
    doc = record.doc
    return {
        "schemas": doc.get("schemas", []),
        "id": record.id,
        **{k: v for k, v in doc.items() if k != "schemas"},
        "meta": {
            "resourceType": resource_type,
            "created": _timestamp(record, "created_at"),
            "lastModified": _timestamp(record, "updated_at"),
            "version": record.etag,
        },
    }


def primary_email(doc: dict[str, Any]) -> str | None:
    """Primary email, else the work one, else the first."""
    emails = [e for e in doc.get("emails") or [] if isinstance(e, dict) and e.get("value")]
    picks: tuple[Callable[[dict[str, Any]], bool], ...] = (
        lambda e: e.get("primary") is True,
        lambda e: str(e.get("type", "")).lower() == "work",
        lambda e: True,
    )
    for pick in picks:
        for e in emails:
            if pick(e):
                return str(e["value"])
    return None


def normalized_user(
    record: ResourceRecord,
    organization_id: str,
    groups: list[str] | None = None,
) -> dict[str, Any]:
    doc = record.doc
    name = doc.get("name") or {}
    enterprise = doc.get(ENTERPRISE) or {}
    manager = enterprise.get("manager")
    out: dict[str, Any] = {
        "id": record.id,
        "directory_id": record.directory_id,
        "organization_id": organization_id,
        "external_id": doc.get("externalId"),
        "username": doc.get("userName"),
        "email": primary_email(doc),
        "first_name": name.get("givenName"),
        "last_name": name.get("familyName"),
        "display_name": doc.get("displayName"),
        "active": doc.get("active", True) is not False,
        "title": doc.get("title"),
        "department": enterprise.get("department"),
        "employee_number": enterprise.get("employeeNumber"),
        "manager_id": manager.get("value") if isinstance(manager, dict) else None,
        "created_at": _timestamp(record, "created_at"),
        "updated_at": _timestamp(record, "updated_at"),
    }
    if groups is not None:
        out["groups"] = groups
    out["raw"] = raw_resource(record, "User")
    return out


def normalized_group(
    record: ResourceRecord, organization_id: str, member_count: int | None = None
) -> dict[str, Any]:
    doc = record.doc
    out: dict[str, Any] = {
        "id": record.id,
        "directory_id": record.directory_id,
        "organization_id": organization_id,
        "display_name": doc.get("displayName"),
        "external_id": doc.get("externalId"),
        "created_at": _timestamp(record, "created_at"),
        "updated_at": _timestamp(record, "updated_at"),
    }
    if member_count is not None:
        out["member_count"] = member_count
    out["raw"] = raw_resource(record, "Group")
    return out


def changed_attributes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of the attributes that differ; extension attributes as ``urn:…:attr``."""
    changed: list[str] = []
    for key in sorted(set(before) | set(after)):
        if key == "schemas":
            continue
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key.startswith("urn:") and isinstance(old or {}, dict) and isinstance(new or {}, dict):
            old_d, new_d = old or {}, new or {}
            changed.extend(
                f"{key}:{sub}"
                for sub in sorted(set(old_d) | set(new_d))
                if old_d.get(sub) != new_d.get(sub)
            )
        else:
            changed.append(key)
    return changed
