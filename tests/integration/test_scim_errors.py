"""Errors (RFC 7644 §3.12) and the protocol surface around them over real HTTP: bad bodies,
uniqueness, size limit, methods, unknown ids, PATCH validation, filters, ETags, paging,
sorting, attribute selection, .search, discovery, URL and media-type tolerance."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.integration.helpers import (
    ENTERPRISE,
    GROUP_SCHEMA,
    LIST_SCHEMA,
    SCIM_JSON,
    SEARCH_SCHEMA,
    USER_SCHEMA,
    assert_list_response,
    assert_scim_error,
    build_url,
    create_group,
    create_user,
    get_resource,
    group_body,
    ids,
    media_type,
    member_ids,
    patch,
    patch_ok,
    search,
    user_body,
)
from tests.live import Directory, LiveServer

# -- request bodies ---------------------------------------------------------------------------


def test_malformed_json_is_invalid_syntax(directory: Directory) -> None:
    for path in ("/Users", "/Groups"):
        response = directory.client.post(directory.url(path), content=b'{"userName": "a@b", ')
        assert_scim_error(response, 400, "invalidSyntax")
    uid = create_user(directory)["id"]
    response = directory.client.patch(directory.url(f"/Users/{uid}"), content=b"{not json")
    assert_scim_error(response, 400, "invalidSyntax")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_invalid_syntax(directory: Directory, number: str) -> None:
    """Python reads NaN and Infinity; JSON has no such numbers, and storing one would
    hand the host app a document no JSON parser reads back."""
    body = json.dumps({"schemas": [USER_SCHEMA], "userName": "nan@x.com", "title": 0})
    body = body.replace('"title": 0', f'"title": {number}')
    response = directory.client.post(directory.url("/Users"), content=body.encode())
    assert_scim_error(response, 400, "invalidSyntax")
    assert number in response.json()["detail"]


def test_integers_beyond_64_bits_are_kept_exactly(directory: Directory) -> None:
    big = 2**70 + 1
    ext = "urn:example:params:scim:schemas:extension:acme:2.0:User"
    body = json.dumps({"schemas": [USER_SCHEMA, ext], "userName": "big@x.com", ext: {"n": big}})
    created = directory.client.post(directory.url("/Users"), content=body.encode())
    assert created.status_code == 201, created.text
    assert created.json()[ext]["n"] == big
    fetched = directory.client.get(directory.url(f"/Users/{created.json()['id']}"))
    assert fetched.json()[ext]["n"] == big


@pytest.mark.parametrize(
    "overrides",
    [
        {"userName": 42},
        {"userName": ["a@contoso.com"]},
        {"active": "maybe"},
        {"emails": "someone@contoso.com"},
        {"name": "Alice Smith"},
        {"emails": [{"value": {"nested": 1}, "type": "work"}]},
    ],
    ids=[
        "userName-int",
        "userName-list",
        "active-word",
        "emails-string",
        "name-string",
        "email-value-object",
    ],
)
def test_wrong_types_are_400(directory: Directory, overrides: dict[str, Any]) -> None:
    response = directory.client.post(directory.url("/Users"), json=user_body(**overrides))
    assert_scim_error(response, 400)
    assert search(directory, "/Users")["totalResults"] == 0


def test_body_not_an_object_is_400(directory: Directory) -> None:
    for body in ([], "user", 1):
        assert_scim_error(directory.client.post(directory.url("/Users"), json=body), 400)


def test_missing_or_empty_user_name_is_400(directory: Directory) -> None:
    body = user_body()
    del body["userName"]
    error = assert_scim_error(directory.client.post(directory.url("/Users"), json=body), 400)
    assert "userName" in error["detail"]
    for empty in ("", None):
        response = directory.client.post(directory.url("/Users"), json=user_body(userName=empty))
        assert_scim_error(response, 400)
    assert search(directory, "/Users")["totalResults"] == 0


def test_missing_group_display_name_is_400(directory: Directory) -> None:
    body = group_body()
    del body["displayName"]
    error = assert_scim_error(directory.client.post(directory.url("/Groups"), json=body), 400)
    assert "displayName" in error["detail"]


def test_duplicate_user_name_is_409_uniqueness(directory: Directory) -> None:
    tag = uuid.uuid4().hex[:10]
    first = create_user(directory, userName=f"Alice.{tag}@x.example")
    for dup in (f"Alice.{tag}@x.example", f"alice.{tag}@x.example", f"ALICE.{tag}@X.EXAMPLE"):
        response = directory.client.post(directory.url("/Users"), json=user_body(userName=dup))
        # The detail names the clash even on PostgreSQL, where the INSERT's error arrives
        # with COMMIT (the statement is deferred to save a round trip).
        assert dup in assert_scim_error(response, 409, "uniqueness")["detail"]
    found = search(directory, "/Users", filter=f'userName eq "alice.{tag}@x.example"')
    assert ids(found) == [first["id"]]

    # renaming another user onto the taken name is refused the same way, by PATCH and PUT
    other = create_user(directory)
    response = patch(
        directory,
        f"/Users/{other['id']}",
        {"op": "replace", "path": "userName", "value": f"aLiCe.{tag}@x.example"},
    )
    assert f"aLiCe.{tag}@x.example" in assert_scim_error(response, 409, "uniqueness")["detail"]
    response = directory.client.put(
        directory.url(f"/Users/{other['id']}"), json=user_body(userName=f"alice.{tag}@X.example")
    )
    assert_scim_error(response, 409, "uniqueness")
    assert get_resource(directory, f"/Users/{other['id']}")["userName"] == other["userName"]


def test_oversized_body_is_413(directory: Directory) -> None:
    body = user_body(displayName="x" * (1_100 * 1024))
    response = directory.client.post(directory.url("/Users"), json=body)
    assert_scim_error(response, 413)
    assert search(directory, "/Users")["totalResults"] == 0
    # a normal body right after still works (the connection/server is not wedged)
    create_user(directory)


def test_application_json_request_content_type_is_accepted(directory: Directory) -> None:
    headers = {"Content-Type": "application/json"}
    body = user_body()
    response = directory.client.post(
        directory.url("/Users"), content=json.dumps(body), headers=headers
    )
    assert response.status_code == 201, response.text
    assert media_type(response) == SCIM_JSON
    uid = response.json()["id"]
    response = directory.client.patch(
        directory.url(f"/Users/{uid}"),
        headers={"Content-Type": "application/json; charset=utf-8"},
        content=json.dumps(
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "CFO"}],
            }
        ),
    )
    assert response.status_code in (200, 204), response.text
    assert get_resource(directory, f"/Users/{uid}")["title"] == "CFO"


# -- methods, paths, ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/Users"),
        ("PATCH", "/Users"),
        ("DELETE", "/Users"),
        ("PUT", "/Groups"),
        ("DELETE", "/Groups"),
        ("POST", "/ServiceProviderConfig"),
    ],
)
def test_unsupported_method_is_405(directory: Directory, method: str, path: str) -> None:
    response = directory.client.request(method, directory.url(path), json={})
    assert_scim_error(response, 405)
    assert response.headers.get("allow"), "a 405 must carry an Allow header (RFC 9110 §15.5.6)"


def test_unknown_resource_id_is_404(directory: Directory) -> None:
    missing = str(uuid.uuid4())
    for kind in ("Users", "Groups"):
        url = directory.url(f"/{kind}/{missing}")
        assert_scim_error(directory.client.get(url), 404)
        assert_scim_error(directory.client.delete(url), 404)
        assert_scim_error(
            directory.client.patch(
                url,
                json={
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "displayName", "value": "x"}],
                },
            ),
            404,
        )
        body = user_body() if kind == "Users" else group_body()
        assert_scim_error(directory.client.put(url, json=body), 404)
    assert_scim_error(directory.client.get(directory.url("/Users/not-a-uuid")), 404)


def test_unknown_directory_id_is_404(server: LiveServer, directory: Directory) -> None:
    base = f"{server.base_url}/scim/v2/{uuid.uuid4()}"
    for path in ("/Users", "/Groups", "/ServiceProviderConfig"):
        assert_scim_error(directory.client.get(f"{base}{path}"), 404)
    assert_scim_error(directory.client.post(f"{base}/Users", json=user_body()), 404)


def test_unknown_endpoint_is_404(directory: Directory) -> None:
    assert_scim_error(directory.client.get(directory.url("/Devices")), 404)


# -- PATCH validation -----------------------------------------------------------------------------


def test_patch_unknown_attribute_is_400_naming_it(directory: Directory) -> None:
    user = create_user(directory)
    uid = user["id"]
    for operation in (
        {"op": "replace", "path": "favouriteColour", "value": "blue"},
        {"op": "add", "path": "favouriteColour", "value": "blue"},
        {"op": "replace", "value": {"favouriteColour": "blue"}},
    ):
        error = assert_scim_error(patch(directory, f"/Users/{uid}", operation), 400)
        assert "favouriteColour" in error["detail"], error
    assert get_resource(directory, f"/Users/{uid}")["meta"]["version"] == user["meta"]["version"]


def test_patch_unknown_op_is_400(directory: Directory) -> None:
    uid = create_user(directory)["id"]
    error = assert_scim_error(
        patch(directory, f"/Users/{uid}", {"op": "merge", "path": "title", "value": "x"}), 400
    )
    assert "merge" in error["detail"]
    gid = create_group(directory)["id"]
    assert_scim_error(
        patch(
            directory,
            f"/Groups/{gid}",
            {"op": "Upsert", "path": "members", "value": [{"value": uid}]},
        ),
        400,
    )
    assert member_ids(directory, gid) == set()


def test_patch_bad_envelope_is_400(directory: Directory) -> None:
    uid = create_user(directory)["id"]
    url = directory.url(f"/Users/{uid}")
    for body in (
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": "replace"},
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []},
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]},
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": "maybe"}],
        },
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove"}],
        },
    ):
        assert_scim_error(directory.client.patch(url, json=body), 400)


def test_patch_members_unknown_user_is_400_and_stores_nothing(directory: Directory) -> None:
    u1, u2, u3 = (create_user(directory)["id"] for _ in range(3))
    gid = create_group(directory)["id"]
    patch_ok(
        directory, f"/Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": u1}]}
    )
    version = get_resource(directory, f"/Groups/{gid}")["meta"]["version"]
    ghost = str(uuid.uuid4())
    for value in ([{"value": ghost}], [{"value": u2}, {"value": ghost}, {"value": u3}]):
        response = patch(
            directory, f"/Groups/{gid}", {"op": "add", "path": "members", "value": value}
        )
        error = assert_scim_error(response, 400)
        assert ghost in error["detail"]
        assert member_ids(directory, gid) == {u1}
    # replacing the members with a list holding a ghost also changes nothing
    response = patch(
        directory,
        f"/Groups/{gid}",
        {"op": "replace", "path": "members", "value": [{"value": u2}, {"value": ghost}]},
    )
    assert_scim_error(response, 400)
    assert member_ids(directory, gid) == {u1}
    assert get_resource(directory, f"/Groups/{gid}")["meta"]["version"] == version


def test_one_patch_adds_hundreds_of_members_of_both_kinds(directory: Directory) -> None:
    """More ids than one look-up takes (500), users and a group mixed, one listed twice,
    and an id no directory has whose text needs escaping (the ids travel as one JSON
    parameter on SQLite): refused whole, then added whole, then a no-op."""
    users = [create_user(directory)["id"] for _ in range(505)]
    child = create_group(directory)["id"]
    gid = create_group(directory)["id"]
    odd = "a\"b'c\\d é"
    wanted = [*users, child, users[0]]
    response = patch(
        directory,
        f"/Groups/{gid}",
        {"op": "add", "path": "members", "value": [{"value": v} for v in [*wanted, odd]]},
    )
    assert repr(odd) in assert_scim_error(response, 400)["detail"]
    assert member_ids(directory, gid) == set()
    add = {"op": "add", "path": "members", "value": [{"value": v} for v in wanted]}
    patch_ok(directory, f"/Groups/{gid}", add)
    assert member_ids(directory, gid) == {*users, child}
    version = get_resource(directory, f"/Groups/{gid}")["meta"]["version"]
    patch_ok(directory, f"/Groups/{gid}", add)
    assert member_ids(directory, gid) == {*users, child}
    assert get_resource(directory, f"/Groups/{gid}")["meta"]["version"] == version


def test_patch_members_of_another_directory_is_400(
    server: LiveServer, directory: Directory
) -> None:
    other = server.new_directory()
    foreign = create_user(other)["id"]
    local = create_user(directory)["id"]
    gid = create_group(directory)["id"]
    patch_ok(
        directory, f"/Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": local}]}
    )
    for value in ([{"value": foreign}], [{"value": local}, {"value": foreign}]):
        response = patch(
            directory, f"/Groups/{gid}", {"op": "add", "path": "members", "value": value}
        )
        assert_scim_error(response, 400)
        assert member_ids(directory, gid) == {local}
    # and a group created with a foreign member is refused whole
    response = directory.client.post(
        directory.url("/Groups"), json=group_body(members=[{"value": foreign}])
    )
    assert_scim_error(response, 400)
    assert search(directory, "/Groups")["totalResults"] == 1
    # the foreign user is untouched in its own directory
    assert get_resource(other, f"/Users/{foreign}").get("groups", []) == []


# -- filters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "userName eq",
        'userName xx "a"',
        '(userName eq "a"',
        'userName eq "a" and',
        'userName eq "unterminated',
        'emails[type eq "work".value eq "a"',
        'and userName eq "a"',
    ],
)
def test_bad_filter_is_invalid_filter(directory: Directory, expression: str) -> None:
    for path in ("/Users", "/Groups"):
        response = directory.client.get(directory.url(path), params={"filter": expression})
        assert_scim_error(response, 400, "invalidFilter")


def test_filter_attribute_names_and_operators_are_case_insensitive(directory: Directory) -> None:
    user = create_user(directory)
    create_user(directory)
    for expression in (
        f'USERNAME eq "{user["userName"]}"',
        f'userName EQ "{user["userName"]}"',
        f'ExternalID eq "{user["externalId"]}"',
    ):
        assert ids(search(directory, "/Users", filter=expression)) == [user["id"]], expression
    single = get_resource(directory, f"/Users/{user['id']}", attributes="USERNAME")
    assert set(single) - {"schemas"} == {"id", "userName"}


def test_filter_values_with_quotes_and_apostrophes(directory: Directory) -> None:
    tag = uuid.uuid4().hex[:8]
    irish = create_user(directory, userName=f"o'brien.{tag}@contoso.com")
    quoted = create_user(directory, displayName=f'Bob "The Builder" {tag}')
    found = search(directory, "/Users", filter=f'userName eq "o\'brien.{tag}@contoso.com"')
    assert ids(found) == [irish["id"]]
    found = search(directory, "/Users", filter=f'displayName eq "Bob \\"The Builder\\" {tag}"')
    assert ids(found) == [quoted["id"]]


# -- ETags -----------------------------------------------------------------------------------------


def test_if_match(directory: Directory) -> None:
    user = create_user(directory)
    uid = user["id"]
    first = user["meta"]["version"]
    op = {"op": "replace", "path": "title", "value": "one"}
    response = patch(directory, f"/Users/{uid}", op, headers={"If-Match": first})
    assert response.status_code in (200, 204), response.text
    second = response.headers["etag"]
    assert second == get_resource(directory, f"/Users/{uid}")["meta"]["version"] != first

    stale = patch(
        directory,
        f"/Users/{uid}",
        {"op": "replace", "path": "title", "value": "two"},
        headers={"If-Match": first},
    )
    assert_scim_error(stale, 412)
    assert get_resource(directory, f"/Users/{uid}")["title"] == "one"
    assert_scim_error(
        directory.client.put(
            directory.url(f"/Users/{uid}"),
            json=user_body(userName=user["userName"]),
            headers={"If-Match": first},
        ),
        412,
    )
    assert_scim_error(
        directory.client.delete(directory.url(f"/Users/{uid}"), headers={"If-Match": first}), 412
    )

    current = patch(
        directory,
        f"/Users/{uid}",
        {"op": "replace", "path": "title", "value": "two"},
        headers={"If-Match": second},
    )
    assert current.status_code in (200, 204), current.text
    assert get_resource(directory, f"/Users/{uid}")["title"] == "two"
    response = directory.client.delete(
        directory.url(f"/Users/{uid}"), headers={"If-Match": current.headers["etag"]}
    )
    assert response.status_code == 204


def _group_of(directory: Directory, member_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new group with one member: as created, and as read back after the member joined."""
    group = create_group(directory)
    add = {"op": "add", "path": "members", "value": [{"value": member_id}]}
    patch_ok(directory, f"/Groups/{group['id']}", add)
    return group, get_resource(directory, f"/Groups/{group['id']}")


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "add", "path": "members", "value": [{"value": "NEW"}]},
        {"op": "remove", "path": 'members[value eq "OLD"]'},
        {"op": "remove", "path": "members", "value": [{"value": "OLD"}]},
    ],
    ids=["add", "remove-by-path", "remove-by-value"],
)
def test_a_stale_if_match_on_a_member_patch_changes_nothing(
    directory: Directory, operation: dict[str, Any]
) -> None:
    """The member change is sent with the group's row lock, before the ETag is checked: a
    412 must roll it back."""
    old, new = create_user(directory), create_user(directory)
    group, before = _group_of(directory, old["id"])
    gid = group["id"]
    text = json.dumps(operation).replace("NEW", new["id"]).replace("OLD", old["id"])
    stale = patch(
        directory,
        f"/Groups/{gid}",
        json.loads(text),
        headers={"If-Match": group["meta"]["version"]},
    )
    assert_scim_error(stale, 412)
    assert get_resource(directory, f"/Groups/{gid}") == before
    assert member_ids(directory, gid) == {old["id"]}


@pytest.mark.parametrize("resource", ["Users", "Groups"])
def test_a_stale_if_match_on_a_delete_leaves_its_groups_alone(
    directory: Directory, resource: str
) -> None:
    """The groups a deleted member leaves get their new version with the member's row
    lock, before the ETag is checked: a 412 must roll that back."""
    member = create_user(directory) if resource == "Users" else create_group(directory)
    group, before = _group_of(directory, member["id"])
    gid = group["id"]
    url = directory.url(f"/{resource}/{member['id']}")
    patch_ok(
        directory,
        f"/{resource}/{member['id']}",
        {"op": "replace", "path": "externalId", "value": "x"},
    )
    stale = directory.client.delete(url, headers={"If-Match": member["meta"]["version"]})
    assert_scim_error(stale, 412)
    assert get_resource(directory, f"/Groups/{gid}") == before
    assert directory.client.get(url).status_code == 200
    assert directory.client.delete(url).status_code == 204
    assert member_ids(directory, gid) == set()
    assert get_resource(directory, f"/Groups/{gid}")["meta"]["version"] != before["meta"]["version"]


# -- listing: count, paging, sorting, attributes, .search -----------------------------------------


def test_count_zero_returns_totals_only(directory: Directory) -> None:
    for _ in range(3):
        create_user(directory)
    body = search(directory, "/Users", count=0)
    assert body["totalResults"] == 3
    assert body.get("Resources", []) == []
    assert body["itemsPerPage"] == 0


def test_out_of_range_paging_values_are_clamped(directory: Directory) -> None:
    for _ in range(3):
        create_user(directory)
    negative = search(directory, "/Users", count=-5)  # RFC 7644 §3.4.2.4: negative means 0
    assert negative["totalResults"] == 3
    assert negative.get("Resources", []) == []
    zero_start = search(directory, "/Users", startIndex=0, count=2)  # below 1 means 1
    assert zero_start["startIndex"] == 1
    assert len(zero_start["Resources"]) == 2
    max_results = get_resource(directory, "/ServiceProviderConfig")["filter"]["maxResults"]
    huge = search(directory, "/Users", count=max_results * 10)
    assert len(huge["Resources"]) == 3
    assert_scim_error(directory.client.get(directory.url("/Users"), params={"count": "many"}), 400)


def test_paging_with_start_index_and_count(directory: Directory) -> None:
    created = {create_user(directory)["id"] for _ in range(5)}
    pages = []
    for start, expected in ((1, 2), (3, 2), (5, 1)):
        body = search(directory, "/Users", startIndex=start, count=2)
        assert body["totalResults"] == 5
        assert body["startIndex"] == start
        assert body["itemsPerPage"] == expected
        assert len(body["Resources"]) == expected
        pages.append(ids(body))
    seen = [i for page in pages for i in page]
    assert len(seen) == len(set(seen)) == 5, pages
    assert set(seen) == created
    beyond = search(directory, "/Users", startIndex=6, count=2)
    assert beyond["totalResults"] == 5
    assert beyond.get("Resources", []) == []


def test_sort_by_user_name(directory: Directory) -> None:
    tag = uuid.uuid4().hex[:8]
    names = [f"charlie.{tag}", f"Alpha.{tag}", f"delta.{tag}", f"Bravo.{tag}"]
    for name in names:
        create_user(directory, userName=name)
    ascending = sorted(names, key=str.casefold)  # userName is caseExact=false
    body = search(directory, "/Users", sortBy="userName", sortOrder="ascending")
    assert [r["userName"] for r in body["Resources"]] == ascending
    body = search(directory, "/Users", sortBy="userName")  # ascending is the default
    assert [r["userName"] for r in body["Resources"]] == ascending
    body = search(directory, "/Users", sortBy="userName", sortOrder="descending")
    assert [r["userName"] for r in body["Resources"]] == ascending[::-1]
    body = search(
        directory, "/Users", sortBy="userName", sortOrder="descending", count=2, startIndex=2
    )
    assert [r["userName"] for r in body["Resources"]] == ascending[::-1][1:3]


def test_attributes_selects_only_those(directory: Directory) -> None:
    user = create_user(directory)
    listed = search(directory, "/Users", attributes="userName")
    [resource] = listed["Resources"]
    assert set(resource) - {"schemas"} == {"id", "userName"}
    assert resource["userName"] == user["userName"]
    single = get_resource(directory, f"/Users/{user['id']}", attributes="userName")
    assert set(single) - {"schemas"} == {"id", "userName"}
    nested = get_resource(
        directory, f"/Users/{user['id']}", attributes=f"name.givenName,{ENTERPRISE}:department"
    )
    assert set(nested) - {"schemas"} == {"id", "name", ENTERPRISE}
    assert nested["name"] == {"givenName": user["name"]["givenName"]}
    assert nested[ENTERPRISE] == {"department": user[ENTERPRISE]["department"]}


def test_excluded_attributes(directory: Directory) -> None:
    user = create_user(directory)
    listed = search(directory, "/Users", excludedAttributes="emails")
    [resource] = listed["Resources"]
    assert "emails" not in resource
    assert resource["id"] == user["id"]
    assert resource["userName"] == user["userName"]
    assert resource["name"] == user["name"]
    single = get_resource(directory, f"/Users/{user['id']}", excludedAttributes="emails,name")
    assert "emails" not in single and "name" not in single
    assert single["userName"] == user["userName"]


def test_post_search(directory: Directory) -> None:
    target = create_user(directory)
    create_user(directory)
    response = directory.client.post(
        directory.url("/Users/.search"),
        json={
            "schemas": [SEARCH_SCHEMA],
            "filter": f'userName eq "{target["userName"]}"',
            "attributes": ["userName", "active"],
            "startIndex": 1,
            "count": 10,
        },
    )
    body = assert_list_response(response)
    assert body["totalResults"] == 1
    [resource] = body["Resources"]
    assert resource["id"] == target["id"]
    assert set(resource) - {"schemas"} == {"id", "userName", "active"}

    gid = create_group(directory, displayName=f"Search {uuid.uuid4().hex}")["id"]
    response = directory.client.post(
        directory.url("/Groups/.search"),
        json={
            "schemas": [SEARCH_SCHEMA],
            "filter": f'id eq "{gid}"',
            "excludedAttributes": ["members"],
        },
    )
    assert ids(assert_list_response(response)) == [gid]

    response = directory.client.post(
        directory.url("/Users/.search"),
        json={"schemas": [SEARCH_SCHEMA], "sortBy": "userName", "count": 1},
    )
    body = assert_list_response(response)
    assert body["totalResults"] == 2 and body["itemsPerPage"] == 1

    bad = directory.client.post(
        directory.url("/Users/.search"), json={"schemas": [SEARCH_SCHEMA], "filter": "userName eq"}
    )
    assert_scim_error(bad, 400, "invalidFilter")


# -- discovery ------------------------------------------------------------------------------------


def test_service_provider_config(directory: Directory) -> None:
    config = get_resource(directory, "/ServiceProviderConfig")
    assert "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig" in config["schemas"]
    assert config["patch"]["supported"] is True
    assert config["filter"]["supported"] is True
    assert isinstance(config["filter"]["maxResults"], int) and config["filter"]["maxResults"] > 0
    assert config["bulk"]["supported"] in (True, False)
    assert config["authenticationSchemes"]


def test_schemas_and_resource_types(directory: Directory) -> None:
    schemas = get_resource(directory, "/Schemas")
    assert schemas["schemas"] == [LIST_SCHEMA]
    schema_ids = {s["id"] for s in schemas["Resources"]}
    assert {USER_SCHEMA, ENTERPRISE, GROUP_SCHEMA} <= schema_ids
    user_schema = get_resource(directory, f"/Schemas/{USER_SCHEMA}")
    assert user_schema["id"] == USER_SCHEMA
    assert "userName" in {a["name"] for a in user_schema["attributes"]}

    types = get_resource(directory, "/ResourceTypes")
    assert types["schemas"] == [LIST_SCHEMA]
    by_name = {t["name"]: t for t in types["Resources"]}
    assert {"User", "Group"} <= set(by_name)
    assert by_name["User"]["endpoint"] == "/Users"
    assert by_name["User"]["schema"] == USER_SCHEMA
    assert ENTERPRISE in {e["schema"] for e in by_name["User"].get("schemaExtensions", [])}
    assert by_name["Group"]["endpoint"] == "/Groups"
    assert by_name["Group"]["schema"] == GROUP_SCHEMA
    assert get_resource(directory, "/ResourceTypes/User")["name"] == "User"
    assert_scim_error(directory.client.get(directory.url("/ResourceTypes/Device")), 404)
    assert_scim_error(directory.client.get(directory.url("/Schemas/urn:nope")), 404)


# -- URL tolerance --------------------------------------------------------------------------------


def test_trailing_slash_base_url(directory: Directory) -> None:
    base = directory.scim_base + "/"
    response = directory.client.get(f"{base}/Users")  # Entra joins "<base>/" + "/Users"
    body = assert_list_response(response)
    assert body["totalResults"] == 0
    response = directory.client.post(f"{base}/Users", json=user_body())
    assert response.status_code == 201, response.text
    uid = response.json()["id"]
    assert response.headers["location"] == f"{directory.scim_base}/Users/{uid}"
    assert get_resource(directory, f"//Users/{uid}")["id"] == uid
    flagged = directory.client.get(
        build_url(base, "/Groups", {"filter": 'displayName eq "x"'}, flag=True)
    )
    assert assert_list_response(flagged)["totalResults"] == 0
    response = directory.client.get(f"{directory.scim_base}/Users/")
    assert assert_list_response(response)["totalResults"] == 1


def test_responses_are_scim_json_with_scim_schemas(directory: Directory) -> None:
    user = create_user(directory)
    for path in (
        f"/Users/{user['id']}",
        "/Users",
        "/Groups",
        "/ServiceProviderConfig",
        "/Schemas",
        "/ResourceTypes",
    ):
        response = directory.client.get(directory.url(path))
        assert response.status_code == 200
        assert media_type(response) == SCIM_JSON, path
        assert response.json()["schemas"], path


def test_sort_puts_resources_without_the_attribute_last_when_ascending(
    directory: Directory,
) -> None:
    """Regression: SQLite sorted users without a title first when ascending (RFC 7644
    §3.4.2.3 wants them last, and first when descending); PostgreSQL did not."""
    with_title = create_user(directory, title="Engineer")["id"]
    without = create_user(directory)["id"]
    up = search(directory, "/Users", sortBy="title", sortOrder="ascending")
    assert [r["id"] for r in up["Resources"]][-1] == without
    down = search(directory, "/Users", sortBy="title", sortOrder="descending")
    assert down["Resources"][0]["id"] == without
    assert with_title in [r["id"] for r in down["Resources"]]


def test_active_filter_and_resource_agree_when_active_is_absent(directory: Directory) -> None:
    """Regression: a user stored without `active` matched `active eq true` although the
    resource had no `active` attribute."""
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"noactive-{uuid.uuid4()}@contoso.com",
    }
    created = directory.client.post(directory.url("/Users"), json=body)
    assert created.status_code == 201 and "active" not in created.json()
    for value in ("true", "false"):
        found = search(
            directory, "/Users", filter=f'userName eq "{body["userName"]}" and active eq {value}'
        )
        assert found["totalResults"] == 0
    assert (
        search(directory, "/Users", filter=f'userName eq "{body["userName"]}" and not (active pr)')[
            "totalResults"
        ]
        == 1
    )
