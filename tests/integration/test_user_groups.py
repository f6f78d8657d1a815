"""A user's ``groups`` read the same wherever the user is read: by id, by the match
before a create and in the responses to PATCH and PUT (read with the user, in one
statement), and by any other filter (read by a second query, the reference here). Both
order by displayName in the database's collation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import (
    create_group,
    create_user,
    get_resource,
    patch_body,
    patch_ok,
    search,
    user_body,
)
from tests.live import Directory

# Case, accents and other scripts: orders that differ between collations.
_NAMES = ["beta", "Alpha", "Ωmega", "alpha2", "Émile", "Zed"]


@pytest.fixture()
def member(directory: Directory) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A user in six groups, and its ``groups`` as they must read."""
    user = create_user(directory)
    expected = []
    for name in _NAMES:
        group = create_group(directory, displayName=name)
        response = directory.client.patch(
            directory.url(f"/Groups/{group['id']}"),
            json=patch_body({"op": "add", "path": "members", "value": [{"value": user["id"]}]}),
        )
        assert response.status_code in (200, 204), response.text
        expected.append((name, group["id"]))
    ordered = [
        {"value": gid, "display": name, "$ref": directory.url(f"/Groups/{gid}"), "type": "direct"}
        for name, gid in sorted(expected)
    ]
    return user, ordered


def _groups(resource: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {k: g[k] for k in ("value", "display", "$ref", "type") if k in g}
        for g in resource.get("groups", [])
    ]


def test_every_read_of_a_user_lists_its_groups_alike(
    directory: Directory, member: tuple[dict[str, Any], list[dict[str, str]]]
) -> None:
    user, every = member
    uid, name = user["id"], user["userName"]
    general = search(directory, "/Users", filter=f'userName eq "{name}" and active pr')
    [expected] = [_groups(r) for r in general["Resources"]]
    assert sorted(expected, key=lambda g: g["value"]) == sorted(every, key=lambda g: g["value"])
    assert _groups(get_resource(directory, f"/Users/{uid}")) == expected
    matched = search(directory, "/Users", filter=f'userName eq "{name}"')["Resources"]
    assert [_groups(r) for r in matched] == [expected]
    by_external = search(directory, "/Users", filter=f'externalId eq "{user["externalId"]}"')
    assert [_groups(r) for r in by_external["Resources"]] == [expected]
    patched = patch_ok(
        directory, f"/Users/{uid}", {"op": "replace", "path": "displayName", "value": "New"}
    )
    assert patched.status_code == 200
    assert _groups(patched.json()) == expected
    put = directory.client.put(
        directory.url(f"/Users/{uid}"), json=user_body(userName=name, displayName="Put")
    )
    assert put.status_code == 200, put.text
    assert _groups(put.json()) == expected
    assert _groups(get_resource(directory, f"/Users/{uid}")) == expected


def test_groups_are_left_out_when_excluded_or_not_asked_for(
    directory: Directory, member: tuple[dict[str, Any], list[dict[str, str]]]
) -> None:
    user, _ = member
    uid, name = user["id"], user["userName"]
    for params in ({"excludedAttributes": "groups"}, {"attributes": "userName"}):
        assert "groups" not in get_resource(directory, f"/Users/{uid}", **params)
        found = search(directory, "/Users", filter=f'userName eq "{name}"', **params)
        assert "groups" not in found["Resources"][0]


def test_a_user_in_no_group_has_no_groups_attribute(directory: Directory) -> None:
    user = create_user(directory)
    assert "groups" not in get_resource(directory, f"/Users/{user['id']}")
    found = search(directory, "/Users", filter=f'userName eq "{user["userName"]}"')
    assert "groups" not in found["Resources"][0]
