"""Directory data through the management API: normalized users and groups, filters,
cursor paging (no duplicates, nothing missing) and isolation between organizations."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.api.stack import ENTERPRISE, PATCH_SCHEMA, ScimDirectory, Stack

USER_KEYS = {
    "id",
    "directory_id",
    "organization_id",
    "external_id",
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "active",
    "title",
    "department",
    "employee_number",
    "manager_id",
    "groups",
    "created_at",
    "updated_at",
    "raw",
}


async def _deactivate(stack: Stack, directory: ScimDirectory, user_id: str) -> None:
    body = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    response = await stack.scim(directory, "PATCH", f"/Users/{user_id}", body)
    assert response.status_code in (200, 204), response.text


async def test_the_normalized_user(stack: Stack) -> None:
    directory = await stack.directory()
    scim = await stack.scim_user(directory)
    group = await stack.scim_group(directory, [scim["id"]])
    user = await stack.ok("GET", f"/users/{scim['id']}", params={"include": "groups"})
    assert set(user) == USER_KEYS
    tag = scim["userName"].removeprefix("user_").removesuffix("@contoso.com")
    assert user == {
        "id": scim["id"],
        "directory_id": directory.id,
        "organization_id": directory.organization_id,
        "external_id": f"ext-{tag}",
        "username": scim["userName"],
        "email": f"work_{tag}@contoso.com",  # the primary one, though listed second
        "first_name": f"Given{tag}",
        "last_name": f"Family{tag}",
        "display_name": f"User {tag}",
        "active": True,
        "title": "Engineer",
        "department": "R&D",
        "employee_number": f"E-{tag}",
        "manager_id": "mgr-1",
        "groups": [group["id"]],
        "created_at": user["created_at"],
        "updated_at": user["updated_at"],
        "raw": user["raw"],
    }
    raw = user["raw"]
    assert raw["id"] == scim["id"] and raw["userName"] == scim["userName"]
    assert raw[ENTERPRISE]["employeeNumber"] == f"E-{tag}"
    assert raw["meta"]["resourceType"] == "User"
    # Without include=groups there is no membership lookup.
    assert (await stack.ok("GET", f"/users/{scim['id']}"))["groups"] is None

    # Email fallback: no primary → work; no work → first.
    no_primary = await stack.scim_user(
        directory,
        emails=[{"type": "home", "value": "h@x.org"}, {"type": "work", "value": "w@x.org"}],
    )
    assert (await stack.ok("GET", f"/users/{no_primary['id']}"))["email"] == "w@x.org"
    first = await stack.scim_user(
        directory,
        emails=[{"type": "home", "value": "h1@x.org"}, {"type": "other", "value": "o@x.org"}],
    )
    assert (await stack.ok("GET", f"/users/{first['id']}"))["email"] == "h1@x.org"

    missing = await stack.api("GET", f"/users/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_the_normalized_group_and_its_members(stack: Stack) -> None:
    directory = await stack.directory()
    users = [await stack.scim_user(directory) for _ in range(3)]
    inner = await stack.scim_group(directory, [users[0]["id"]])
    outer = await stack.scim_group(directory, [u["id"] for u in users] + [inner["id"]])
    group = await stack.ok("GET", f"/groups/{outer['id']}")
    assert set(group) == {
        "id",
        "directory_id",
        "organization_id",
        "display_name",
        "external_id",
        "member_count",
        "created_at",
        "updated_at",
        "raw",
    }
    assert group["display_name"] == outer["displayName"]
    assert group["external_id"] == outer["externalId"]
    assert group["member_count"] == 4
    assert group["organization_id"] == directory.organization_id
    assert "members" not in group["raw"]

    members = await stack.all_pages(f"/groups/{outer['id']}/members", limit=3)
    assert sorted(m["id"] for m in members) == sorted([*(u["id"] for u in users), inner["id"]])
    by_id = {m["id"]: m for m in members}
    nested = by_id[inner["id"]]
    assert nested["type"] == "group" and nested["group"]["member_count"] == 1
    assert nested["user"] is None
    one = by_id[users[1]["id"]]
    assert one["type"] == "user" and one["group"] is None
    assert one["user"]["username"] == users[1]["userName"]
    assert one["display"]
    only_groups = await stack.ok("GET", f"/groups/{outer['id']}/members", params={"type": "group"})
    assert [m["id"] for m in only_groups["data"]] == [inner["id"]]

    user_groups = await stack.all_pages(f"/users/{users[0]['id']}/groups", limit=1)
    assert sorted(g["id"] for g in user_groups) == sorted([inner["id"], outer["id"]])
    assert (await stack.api("GET", f"/groups/{uuid.uuid4()}/members")).status_code == 404
    assert (await stack.api("GET", f"/users/{uuid.uuid4()}/groups")).status_code == 404


async def test_paging_users_across_directories_sees_each_once(stack: Stack) -> None:
    org = await stack.organization(external_id=f"paging-{uuid.uuid4().hex[:6]}")
    first = await stack.directory(org["id"])
    second = await stack.directory(org["id"], provider="okta")
    made: set[str] = set()
    for i in range(23):
        user = await stack.scim_user(first if i % 3 else second)
        made.add(user["id"])
    for limit in (1, 4, 7, 23, 1000):
        seen = [
            u["id"] for u in await stack.all_pages("/users", organization_id=org["id"], limit=limit)
        ]
        assert len(seen) == len(set(seen)), f"duplicates at limit={limit}"
        assert set(seen) == made, f"missing at limit={limit}"
    by_external = await stack.all_pages(
        "/users", organization_external_id=org["external_id"], limit=5
    )
    assert {u["id"] for u in by_external} == made
    only_first = await stack.all_pages("/users", directory_id=first.id, limit=4)
    assert {u["directory_id"] for u in only_first} == {first.id}
    assert len(only_first) == len([1 for i in range(23) if i % 3])
    # Created order across both directories.
    stamps = [(u["created_at"], u["id"]) for u in by_external]
    assert stamps == sorted(stamps)
    # A filter with no match: an empty page, not an error.
    assert await stack.ok("GET", "/users", params={"organization_id": str(uuid.uuid4())}) == {
        "data": [],
        "next_cursor": None,
    }


async def test_user_filters(stack: Stack) -> None:
    directory = await stack.directory()
    users = [await stack.scim_user(directory) for _ in range(6)]
    group = await stack.scim_group(directory, [u["id"] for u in users[:4]])
    await _deactivate(stack, directory, users[1]["id"])

    async def ids(**params: Any) -> list[str]:
        return [u["id"] for u in await stack.all_pages("/users", **params)]

    assert await ids(directory_id=directory.id, external_id=users[2]["externalId"]) == [
        users[2]["id"]
    ]
    assert await ids(directory_id=directory.id, active="false") == [users[1]["id"]]
    assert len(await ids(directory_id=directory.id, active="true")) == 5
    in_group = await ids(group_id=group["id"], limit=3)
    assert sorted(in_group) == sorted(u["id"] for u in users[:4])
    assert in_group == sorted(in_group)  # membership order: by member id
    assert await ids(group_id=group["id"], active="false") == [users[1]["id"]]
    # Filters are ANDed: the group is not in another directory.
    other = await stack.directory()
    assert await ids(group_id=group["id"], directory_id=other.id) == []

    await asyncio.sleep(0.01)
    since = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await _deactivate(stack, directory, users[5]["id"])
    await _deactivate(stack, directory, users[3]["id"])
    changed = await stack.all_pages(
        "/users", directory_id=directory.id, updated_since=since.isoformat(), limit=1
    )
    assert [u["id"] for u in changed] == [users[5]["id"], users[3]["id"]]  # change order
    # A cursor from one ordering is refused by another.
    page = await stack.ok("GET", "/users", params={"directory_id": directory.id, "limit": 1})
    mixed = await stack.api(
        "GET",
        "/users",
        params={
            "directory_id": directory.id,
            "updated_since": since.isoformat(),
            "after": page["next_cursor"],
        },
    )
    assert mixed.status_code == 400 and mixed.json()["error"]["code"] == "invalid_cursor"

    with_groups = await stack.all_pages(
        "/users", directory_id=directory.id, include="groups", limit=2
    )
    memberships = {u["id"]: u["groups"] for u in with_groups}
    assert memberships[users[0]["id"]] == [group["id"]]
    assert memberships[users[4]["id"]] == []

    naive = await stack.api(
        "GET", "/users", params={"directory_id": directory.id, "updated_since": "2024-01-01T00:00"}
    )
    assert naive.status_code == 422
    needs_scope = await stack.api("GET", "/users")
    assert needs_scope.status_code == 400
    assert needs_scope.json()["error"]["code"] == "invalid_request"
    for bad in ("nope", "e30", "eyJvIjoiYyIsImsiOlsieCIsInkiXX0"):
        response = await stack.api(
            "GET", "/users", params={"directory_id": directory.id, "after": bad}
        )
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid_cursor"


async def test_group_listing_filters_and_paging(stack: Stack) -> None:
    org = await stack.organization()
    directory = await stack.directory(org["id"])
    groups = [await stack.scim_group(directory) for _ in range(7)]
    listed = await stack.all_pages("/groups", organization_id=org["id"], limit=3)
    assert [g["id"] for g in listed] == [g["id"] for g in groups]
    assert all(g["member_count"] == 0 for g in listed)
    named = await stack.ok(
        "GET",
        "/groups",
        params={"directory_id": directory.id, "display_name": groups[2]["displayName"].upper()},
    )
    assert [g["id"] for g in named["data"]] == [groups[2]["id"]]
    by_ext = await stack.ok(
        "GET",
        "/groups",
        params={"directory_id": directory.id, "external_id": groups[4]["externalId"]},
    )
    assert [g["id"] for g in by_ext["data"]] == [groups[4]["id"]]
    assert (await stack.api("GET", "/groups")).status_code == 400


async def test_a_large_group_pages_its_members(stack: Stack) -> None:
    directory = await stack.directory()
    users = [await stack.scim_user(directory) for _ in range(60)]
    group = await stack.scim_group(directory, [u["id"] for u in users])
    assert (await stack.ok("GET", f"/groups/{group['id']}"))["member_count"] == 60
    pages = 0
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 25}
        if cursor:
            params["after"] = cursor
        page = await stack.ok("GET", f"/groups/{group['id']}/members", params=params)
        pages += 1
        seen.extend(m["id"] for m in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(u["id"] for u in users)


async def test_organizations_never_see_each_other(stack: Stack) -> None:
    """Org A's data never shows up when filtering by org B, on any listing."""
    a_org = await stack.organization(external_id=f"a-{uuid.uuid4().hex[:6]}")
    b_org = await stack.organization(external_id=f"b-{uuid.uuid4().hex[:6]}")
    a = await stack.directory(a_org["id"])
    b = await stack.directory(b_org["id"])
    a_user = await stack.scim_user(a)
    b_user = await stack.scim_user(b)
    a_group = await stack.scim_group(a, [a_user["id"]])
    b_group = await stack.scim_group(b, [b_user["id"]])
    await stack.ok(
        "POST",
        "/webhook-endpoints",
        201,
        json={"organization_id": a_org["id"], "url": "http://127.0.0.1:9/hook"},
    )

    for org, directory, mine, theirs in (
        (a_org, a, (a_user, a_group), (b_user, b_group)),
        (b_org, b, (b_user, b_group), (a_user, a_group)),
    ):
        for scope in (
            {"organization_id": org["id"]},
            {"organization_external_id": org["external_id"]},
            {"directory_id": directory.id},
        ):
            users = await stack.all_pages("/users", **scope)
            assert [u["id"] for u in users] == [mine[0]["id"]], scope
            groups = await stack.all_pages("/groups", **scope)
            assert [g["id"] for g in groups] == [mine[1]["id"]], scope
            # The other organization's group, filtered to this scope: nothing.
            assert await stack.all_pages("/users", group_id=theirs[1]["id"], **scope) == []
            assert (
                await stack.all_pages("/users", external_id=theirs[0]["externalId"], **scope) == []
            )
        events, _ = await stack.follow_events(3, organization_id=org["id"])
        assert len(events) == 3  # user.created, group.created, group.member_added
        assert {e["organization_id"] for e in events} == {org["id"]}
        events, _ = await stack.follow_events(3, directory_id=directory.id)
        assert {e["directory_id"] for e in events} == {directory.id} and len(events) == 3
        dirs = await stack.ok("GET", "/directories", params={"organization_id": org["id"]})
        assert [d["id"] for d in dirs["data"]] == [directory.id]
        hooks = await stack.ok("GET", "/webhook-endpoints", params={"organization_id": org["id"]})
        assert {h["organization_id"] for h in hooks["data"]} <= {org["id"]}
        assert bool(hooks["data"]) is (org is a_org)
        # Both scopes at once that disagree: nothing, never the union.
        other = b_org if org is a_org else a_org
        crossed = await stack.ok(
            "GET", "/users", params={"organization_id": other["id"], "directory_id": directory.id}
        )
        assert crossed["data"] == []
