"""A group's ``members``, as SCIM returns them, are written by the database as JSON text
(``directory.groups.members_json``) and passed on as they are: a 100,000-member group is
one string in the server, not 100,000 objects. A request that selects attributes inside
``members`` gets them parsed and cut instead, and both must agree. What a client
receives: the keys and values, the ``display`` fallbacks, escaping, nested groups, the
order members were added, each group's own members in a list of several, on both
backends.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.helpers import DROP, create_group, create_user, patch_body
from tests.live import Directory, LiveServer

# Every sub-attribute of members named: the members are parsed and projected.
AS_OBJECTS = "attributes=members.value,members.$ref,members.type,members.display,displayName"


def _add(directory: Directory, group_id: str, *members: dict[str, Any]) -> None:
    response = directory.client.patch(
        directory.url(f"/Groups/{group_id}"),
        json=patch_body({"op": "add", "path": "members", "value": list(members)}),
    )
    assert response.status_code in (200, 204), response.text


def _members(directory: Directory, path: str) -> Any:
    response = directory.client.get(directory.url(path))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def directory(server: LiveServer) -> Directory:
    return server.new_directory()


@pytest.fixture(scope="module")
def team(directory: Directory) -> dict[str, Any]:
    """A group whose members take every display rule: the one the client gave, the user's
    displayName, the userName when there is no displayName, a nested group's name; and
    names that need escaping."""
    tricky = create_user(directory, displayName='Zoë "Q" \\ <b>&amp; \u2028 tab\t end')
    plain = create_user(directory, displayName=DROP)
    named = create_user(directory, displayName="Named Person")
    nested = create_group(directory, displayName="Nested ✓ group")
    team = create_group(directory)
    _add(directory, team["id"], {"value": plain["id"]})
    _add(directory, team["id"], {"value": tricky["id"]}, {"value": nested["id"]})
    _add(directory, team["id"], {"value": named["id"], "display": 'Given "display"'})
    return {
        "group": team,
        "tricky": tricky,
        "plain": plain,
        "named": named,
        "nested": nested,
    }


def test_a_groups_members_are_what_rendering_each_member_gives(
    directory: Directory, team: dict[str, Any]
) -> None:
    group_id = team["group"]["id"]
    whole = _members(directory, f"/Groups/{group_id}")["members"]
    as_objects = _members(directory, f"/Groups/{group_id}?{AS_OBJECTS}")["members"]
    assert whole == as_objects
    base = directory.scim_base
    tricky, plain, named, nested = (team[k] for k in ("tricky", "plain", "named", "nested"))
    # The order added; within one PATCH, by id (as before).
    second = sorted([tricky["id"], nested["id"]])
    expected_second = [
        {
            "value": tricky["id"],
            "$ref": f"{base}/Users/{tricky['id']}",
            "type": "User",
            "display": tricky["displayName"],
        },
        {
            "value": nested["id"],
            "$ref": f"{base}/Groups/{nested['id']}",
            "type": "Group",
            "display": "Nested ✓ group",
        },
    ]
    expected_second.sort(key=lambda m: second.index(m["value"]))
    assert whole == [
        {
            "value": plain["id"],
            "$ref": f"{base}/Users/{plain['id']}",
            "type": "User",
            "display": plain["userName"],
        },
        *expected_second,
        {
            "value": named["id"],
            "$ref": f"{base}/Users/{named['id']}",
            "type": "User",
            "display": 'Given "display"',
        },
    ]


def test_each_group_of_a_list_gets_its_own_members(
    directory: Directory, team: dict[str, Any]
) -> None:
    others = [create_group(directory) for _ in range(3)]
    users = [create_user(directory) for _ in range(4)]
    _add(directory, others[0]["id"], *({"value": u["id"]} for u in users[:3]))
    _add(directory, others[1]["id"], {"value": users[3]["id"]}, {"value": team["tricky"]["id"]})
    listed = _members(directory, "/Groups?count=100")["Resources"]
    by_id = {g["id"]: g for g in listed}
    assert "members" not in by_id[others[2]["id"]]  # no members: none rendered, as before
    for group in (team["group"], *others[:2]):
        one = _members(directory, f"/Groups/{group['id']}?{AS_OBJECTS}")["members"]
        assert by_id[group["id"]]["members"] == one
    assert {m["value"] for m in by_id[others[0]["id"]]["members"]} == {u["id"] for u in users[:3]}
    searched = directory.client.post(
        directory.url("/Groups/.search"),
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f'displayName eq "{others[1]["displayName"]}"',
        },
    )
    assert searched.status_code == 200, searched.text
    [found] = searched.json()["Resources"]
    assert [m["value"] for m in found["members"]] == sorted([users[3]["id"], team["tricky"]["id"]])


def test_a_member_filter_and_selection_still_apply(
    directory: Directory, team: dict[str, Any]
) -> None:
    group_id = team["group"]["id"]
    only_values = _members(directory, f"/Groups/{group_id}?attributes=members.value")
    assert all(set(m) == {"value"} for m in only_values["members"])
    no_display = _members(directory, f"/Groups/{group_id}?excludedAttributes=members.display")
    assert all("display" not in m for m in no_display["members"])
    assert len(no_display["members"]) == 4
    whole_only = _members(directory, f"/Groups/{group_id}?attributes=members")
    assert set(whole_only) == {"schemas", "id", "members"}
    assert whole_only["members"] == _members(directory, f"/Groups/{group_id}")["members"]
    flt = quote(f'members[value eq "{team["named"]["id"]}"]', safe="")
    matched = _members(directory, f"/Groups?filter={flt}")["Resources"]
    assert [g["id"] for g in matched] == [group_id]


def test_a_group_the_fast_encoder_cannot_write_still_carries_its_members(
    directory: Directory,
) -> None:
    """A number beyond 64 bits in a stored extension sends the response through the
    standard library's encoder, which cannot pass JSON text on as it is."""
    extension = f"urn:ietf:params:scim:schemas:extension:Custom{uuid.uuid4().hex[:6]}:2.0:Group"
    big = 2**70 + 1
    response = directory.client.post(
        directory.url("/Groups"),
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", extension],
            "displayName": f"Big {uuid.uuid4().hex[:8]}",
            extension: {"serial": big},
        },
    )
    assert response.status_code == 201, response.text
    group = response.json()
    user = create_user(directory)
    _add(directory, group["id"], {"value": user["id"]})
    as_objects = _members(directory, f"/Groups/{group['id']}?{AS_OBJECTS},{extension}")
    assert as_objects[extension] == {"serial": big}
    got = _members(directory, f"/Groups/{group['id']}")
    assert got[extension] == {"serial": big}
    assert [m["value"] for m in got["members"]] == [user["id"]]


def test_hundreds_of_members_keep_the_order_they_were_added_in(directory: Directory) -> None:
    """Added ten at a time, in thirty PATCHes: one request's members by id, requests in
    order (on SQLite the order of a sorted subquery's rows, which its aggregate keeps)."""
    users = [create_user(directory) for _ in range(300)]
    group = create_group(directory)
    expected: list[str] = []
    for start in range(0, 300, 10):
        chunk = [u["id"] for u in users[start : start + 10]]
        _add(directory, group["id"], *({"value": uid} for uid in chunk))
        expected += sorted(chunk)
    whole = _members(directory, f"/Groups/{group['id']}")["members"]
    assert [m["value"] for m in whole] == expected
    assert whole == _members(directory, f"/Groups/{group['id']}?{AS_OBJECTS}")["members"]
