"""Stored records → SCIM resources, and ``attributes``/``excludedAttributes`` projection.

Reads serve the stored canonical JSON directly (no model validation on the read path):
the document was validated when it was written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from scimgate.directory.records import ResourceRecord

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
CORE_SCHEMAS = {"User": USER_SCHEMA, "Group": GROUP_SCHEMA}
ENDPOINTS = {"User": "Users", "Group": "Groups"}
ALWAYS_RETURNED = ("schemas", "id")


def timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def resource(
    record: ResourceRecord,
    resource_type: str,
    scim_base: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full SCIM resource for a stored record (``extra``: members or groups)."""
    doc = record.doc
    out: dict[str, Any] = {
        "schemas": doc.get("schemas") or [CORE_SCHEMAS[resource_type]],
        "id": record.id,
    }
    for key, value in doc.items():
        if key != "schemas":
            out[key] = value
    if extra:
        out.update(extra)
    manager = doc.get(ENTERPRISE_SCHEMA, {}).get("manager") if resource_type == "User" else None
    if isinstance(manager, dict) and manager.get("value") and "$ref" not in manager:
        out[ENTERPRISE_SCHEMA] = {
            **doc[ENTERPRISE_SCHEMA],
            "manager": {**manager, "$ref": f"{scim_base}/Users/{manager['value']}"},
        }
    out["meta"] = {
        "resourceType": resource_type,
        "created": timestamp(record.created_at),
        "lastModified": timestamp(record.updated_at),
        "location": f"{scim_base}/{ENDPOINTS[resource_type]}/{record.id}",
        "version": record.etag,
    }
    return out


def groups_value(groups: Iterable[tuple[str, str]], scim_base: str) -> list[dict[str, Any]]:
    return [
        {"value": gid, "$ref": f"{scim_base}/Groups/{gid}", "display": name, "type": "direct"}
        for gid, name in groups
    ]


AttrPath = tuple[str, ...]


def parse_attribute_list(names: Sequence[str], resource_type: str) -> list[AttrPath]:
    """``["name.givenName", "urn:…:enterprise:2.0:User:manager.value"]`` → lower-case key
    paths into the resource JSON, e.g. ``("name", "givenname")``.

    A schema URN ends with its resource type (``…:2.0:User``), so a name ending that way is
    a whole extension; otherwise the part after the last colon is the attribute.
    """
    core = CORE_SCHEMAS[resource_type].lower()
    suffix = ":" + resource_type.lower()
    paths: list[AttrPath] = []
    for raw in names:
        name = raw.strip().lower()
        if not name or name == core:
            continue
        if name.startswith(core + ":"):
            name = name[len(core) + 1 :]
        elif name.startswith("urn:"):
            if name.endswith(suffix):
                paths.append((name,))
            else:
                urn, _, attr = name.rpartition(":")
                paths.append((urn, *attr.split(".")))
            continue
        paths.append(tuple(name.split(".")))
    return paths


def wants(paths: list[AttrPath] | None, excluded: list[AttrPath] | None, key: str) -> bool:
    """Whether a top-level attribute will survive projection (so it is worth loading)."""
    lk = key.lower()
    if paths is not None:
        return any(p[0] == lk for p in paths)
    if excluded is not None:
        return not any(p == (lk,) for p in excluded)
    return True


def selects_within(paths: list[AttrPath] | None, excluded: list[AttrPath] | None, key: str) -> bool:
    """Whether attribute selection reaches inside the top-level attribute ``key``
    (``attributes=members.value``, ``excludedAttributes=members.display``): its value must
    then be built as objects for :func:`project` to cut, not passed on as JSON text."""
    lk = key.lower()
    return any(p[0] == lk and len(p) > 1 for p in (*(paths or ()), *(excluded or ())))


def project(
    res: dict[str, Any], attributes: list[AttrPath] | None, excluded: list[AttrPath] | None
) -> dict[str, Any]:
    """Apply RFC 7644 §3.4.2.5 attribute selection to a full resource."""
    if attributes:
        selected: dict[str, Any] = _include(res, attributes, top=True)
        return selected
    if excluded:
        remaining: dict[str, Any] = _exclude(res, excluded, top=True)
        return remaining
    return res


def _include(value: Any, paths: list[AttrPath], *, top: bool = False) -> Any:
    if isinstance(value, list):
        return [_include(v, paths) for v in value if isinstance(v, dict)]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, sub in value.items():
        lk = key.lower()
        if top and key in ALWAYS_RETURNED:
            out[key] = sub
            continue
        tails = [p[1:] for p in paths if p[0] == lk]
        if not tails:
            continue
        if any(not t for t in tails):
            out[key] = sub
        else:
            projected = _include(sub, [t for t in tails if t])
            if projected not in ({}, []):
                out[key] = projected
    return out


def _exclude(value: Any, paths: list[AttrPath], *, top: bool = False) -> Any:
    if isinstance(value, list):
        return [_exclude(v, paths) if isinstance(v, dict) else v for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, sub in value.items():
        lk = key.lower()
        tails = [p[1:] for p in paths if p[0] == lk]
        if (top and key in ALWAYS_RETURNED) or not tails:
            out[key] = sub
        elif any(not t for t in tails):
            continue
        else:
            out[key] = _exclude(sub, [t for t in tails if t])
    return out
