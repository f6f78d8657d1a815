"""Helpers for the real-HTTP integration tests: Entra-shaped request bodies, URLs in either
of Entra's PATCH dialects, and assertions on SCIM responses.

Every helper that creates something asserts the exact success status, so a test body only
has to say what it is about.
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from tests.live import Directory

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
CUSTOM_EXT = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ENTRA_FLAG = "aadOptscim062020"

DROP = object()
"""An override value meaning "leave this key out of the body"."""


def guid() -> str:
    return str(uuid.uuid4())


def media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def build_url(
    base: str, path: str, params: dict[str, Any] | None = None, *, flag: bool = False
) -> str:
    """``base + path`` with a query string built by hand, so that Entra's bare
    ``aadOptscim062020`` flag arrives exactly as Entra sends it (no ``=``)."""
    parts = [ENTRA_FLAG] if flag else []
    for key, value in (params or {}).items():
        parts.append(f"{quote(key, safe='')}={quote(str(value), safe='')}")
    return f"{base}{path}" + (f"?{'&'.join(parts)}" if parts else "")


# -- the two PATCH dialects ---------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """How Entra talks: the legacy dialect (no query flag, capitalised ops, string booleans,
    members removed by value list) or the RFC-compliant one (``?aadOptscim062020``)."""

    name: str
    flag: bool
    compliant_ops: bool

    def __str__(self) -> str:
        return self.name

    def url(self, directory: Directory, path: str, **params: Any) -> str:
        return build_url(directory.scim_base, path, params, flag=self.flag)

    def op(self, name: str, path: str | None = None, value: Any = DROP) -> dict[str, Any]:
        op: dict[str, Any] = {"op": name.lower() if self.compliant_ops else name.capitalize()}
        if path is not None:
            op["path"] = path
        if value is not DROP:
            op["value"] = value
        return op

    def boolean(self, value: bool) -> bool | str:
        """``active`` as this dialect sends it: a JSON boolean, or "True"/"False"."""
        return value if self.compliant_ops else str(value)

    def add_members(self, *ids: str) -> dict[str, Any]:
        if self.compliant_ops:
            return self.op("add", "members", [{"value": i} for i in ids])
        return self.op("add", "members", [{"$ref": None, "value": i} for i in ids])

    def rename_group(self, group_id: str, display_name: str) -> dict[str, Any]:
        """The compliant dialect renames with a path-less replace that repeats the id."""
        if self.compliant_ops:
            return self.op("replace", None, {"id": group_id, "displayName": display_name})
        return self.op("replace", "displayName", display_name)

    def remove_members(self, *ids: str) -> list[dict[str, Any]]:
        if self.compliant_ops:
            return [self.op("remove", f'members[value eq "{i}"]') for i in ids]
        return [self.op("remove", "members", [{"value": i} for i in ids])]


LEGACY = Dialect("legacy", flag=False, compliant_ops=False)
COMPLIANT = Dialect("compliant", flag=True, compliant_ops=True)
ON_DEMAND = Dialect("legacy-ops-with-flag", flag=True, compliant_ops=False)
"""Provision on demand ignores the flag: legacy bodies on a Tenant URL that carries it."""
DIALECTS = [LEGACY, COMPLIANT]
PLAIN = LEGACY
"""For tests that are not about the dialect: plain URLs."""


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


# -- bodies -------------------------------------------------------------------------------


def _apply_overrides(body: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if value is DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def user_body(**overrides: Any) -> dict[str, Any]:
    """A POST /Users body as Entra sends it (random userName and externalId).

    Keyword overrides replace top-level keys (``None`` sends an explicit null); ``DROP``
    leaves a key out.
    """
    tag = uuid.uuid4().hex[:12]
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": guid(),
        "userName": f"Test_User_{tag}@contoso.com",
        "active": True,
        "displayName": f"Test User {tag}",
        "emails": [{"primary": True, "type": "work", "value": f"Test_User_{tag}@contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": f"Given{tag} Family{tag}",
            "familyName": f"Family{tag}",
            "givenName": f"Given{tag}",
        },
        "roles": [],
        ENTERPRISE: {"department": "Sales", "employeeNumber": f"N-{tag}"},
    }
    return _apply_overrides(body, overrides)


def group_body(**overrides: Any) -> dict[str, Any]:
    """A POST /Groups body as Entra sends it, with Microsoft's schema URI."""
    body: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA, ADSCIM_GROUP],
        "externalId": guid(),
        "displayName": f"Group {uuid.uuid4().hex[:12]}",
        "meta": {"resourceType": "Group"},
    }
    return _apply_overrides(body, overrides)


# -- calls ----------------------------------------------------------------------------------


def create_user(directory: Directory, dialect: Dialect = PLAIN, **overrides: Any) -> dict[str, Any]:
    response = directory.client.post(dialect.url(directory, "/Users"), json=user_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def create_group(
    directory: Directory, dialect: Dialect = PLAIN, **overrides: Any
) -> dict[str, Any]:
    response = directory.client.post(
        dialect.url(directory, "/Groups"), json=group_body(**overrides)
    )
    assert response.status_code == 201, response.text
    return response.json()


def get_resource(
    directory: Directory, path: str, dialect: Dialect = PLAIN, **params: Any
) -> dict[str, Any]:
    response = directory.client.get(dialect.url(directory, path, **params))
    assert response.status_code == 200, response.text
    assert media_type(response) == SCIM_JSON
    return response.json()


def patch(
    directory: Directory,
    path: str,
    *operations: dict[str, Any],
    dialect: Dialect = PLAIN,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return directory.client.patch(
        dialect.url(directory, path), json=patch_body(*operations), headers=headers
    )


def patch_ok(
    directory: Directory, path: str, *operations: dict[str, Any], dialect: Dialect = PLAIN
) -> httpx.Response:
    """A PATCH that must succeed: 200 with the resource, or 204 (RFC 7644 §3.5.2)."""
    response = patch(directory, path, *operations, dialect=dialect)
    assert response.status_code in (200, 204), response.text
    if response.status_code == 200:
        assert media_type(response) == SCIM_JSON
    return response


def search(
    directory: Directory, path: str, dialect: Dialect = PLAIN, **params: Any
) -> dict[str, Any]:
    """GET a list endpoint; asserts a well-formed ListResponse and returns it."""
    response = directory.client.get(dialect.url(directory, path, **params))
    return assert_list_response(response)


def ids(list_response: dict[str, Any]) -> list[str]:
    return [r["id"] for r in list_response.get("Resources", [])]


def member_ids(directory: Directory, group_id: str, dialect: Dialect = PLAIN) -> set[str]:
    """The ids in a group's ``members``, asserting that none is listed twice."""
    group = get_resource(directory, f"/Groups/{group_id}", dialect)
    values = [m["value"] for m in group.get("members") or []]
    assert len(values) == len(set(values)), f"duplicate members: {values}"
    return set(values)


# -- assertions -------------------------------------------------------------------------------


def assert_list_response(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert media_type(response) == SCIM_JSON
    body = response.json()
    assert body["schemas"] == [LIST_SCHEMA]
    assert isinstance(body["totalResults"], int)
    resources = body.get("Resources", [])
    assert isinstance(resources, list)
    if body["totalResults"] > 0 and body.get("itemsPerPage", 1) > 0:
        assert "Resources" in body
    assert body.get("itemsPerPage", len(resources)) == len(resources)
    return body


def assert_scim_error(
    response: httpx.Response, status: int, scim_type: str | None = None
) -> dict[str, Any]:
    """An RFC 7644 §3.12 error: the status, a SCIM body with ``status`` as a string, a
    non-empty ``detail``, the SCIM media type."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:500]}"
    )
    assert media_type(response) == SCIM_JSON, response.headers.get("content-type")
    body = response.json()
    assert ERROR_SCHEMA in body["schemas"], body
    assert body["status"] == str(status), body
    assert isinstance(body["status"], str)
    assert isinstance(body.get("detail"), str) and body["detail"].strip(), body
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def version_number(version: str) -> int:
    """The counter in a ``W/"<n>"`` ETag, to check that versions go up."""
    match = re.fullmatch(r'(?:W/)?"(\d+)"', version)
    assert match, f"unexpected version format {version!r}"
    return int(match.group(1))


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    out.pop("meta", None)
    return out
