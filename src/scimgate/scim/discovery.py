"""Discovery documents: /ServiceProviderConfig, /Schemas, /ResourceTypes (RFC 7644 §4).

Built once from scim2-models' own schema definitions, so what we advertise is what we
validate against; only ``meta.location`` depends on the directory.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Patch,
    ResourceType,
    ServiceProviderConfig,
    Sort,
    User,
)

from scimgate.scim.errors import not_found
from scimgate.scim.render import LIST_SCHEMA


@cache
def _service_provider_config(max_results: int) -> dict[str, Any]:
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=max_results),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="OAuth Bearer Token",
                description="The directory's Secret Token, sent as 'Authorization: Bearer …'",
                primary=True,
            )
        ],
    )
    return config.model_dump()


@cache
def _schemas() -> tuple[dict[str, Any], ...]:
    return tuple(m.to_schema().model_dump() for m in (User, EnterpriseUser, Group))


@cache
def _resource_types() -> tuple[dict[str, Any], ...]:
    return tuple(ResourceType.from_resource(m).model_dump() for m in (User[EnterpriseUser], Group))


def _located(doc: dict[str, Any], resource_type: str, location: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["meta"] = {"resourceType": resource_type, "location": location}
    return out


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": len(items),
        "startIndex": 1,
        "itemsPerPage": len(items),
        "Resources": items,
    }


def service_provider_config(scim_base: str, max_results: int) -> dict[str, Any]:
    return _located(
        _service_provider_config(max_results),
        "ServiceProviderConfig",
        f"{scim_base}/ServiceProviderConfig",
    )


def schemas(scim_base: str) -> dict[str, Any]:
    return _listing([schema(scim_base, s["id"]) for s in _schemas()])


def schema(scim_base: str, schema_id: str) -> dict[str, Any]:
    for s in _schemas():
        if s["id"].lower() == schema_id.lower():
            return _located(s, "Schema", f"{scim_base}/Schemas/{s['id']}")
    raise not_found(f"no schema {schema_id!r}; see /Schemas for the list")


def resource_types(scim_base: str) -> dict[str, Any]:
    return _listing([resource_type(scim_base, r["id"]) for r in _resource_types()])


def resource_type(scim_base: str, type_id: str) -> dict[str, Any]:
    for r in _resource_types():
        if r["id"].lower() == type_id.lower():
            return _located(r, "ResourceType", f"{scim_base}/ResourceTypes/{r['id']}")
    raise not_found(f"no resource type {type_id!r}; see /ResourceTypes for the list")
