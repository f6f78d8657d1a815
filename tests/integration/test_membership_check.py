"""Entra's membership check, ``GET /Groups?filter=id eq "…" and members[value eq "…"]``,
over HTTP on both backends: it runs a statement of its own (``column_match``), so each
list parameter that takes it down another path is checked here too."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import (
    COMPLIANT,
    LEGACY,
    Dialect,
    create_group,
    create_user,
    ids,
    patch_ok,
    search,
)
from tests.live import Directory, LiveServer


def _add(directory: Directory, group_id: str, *member_ids: str) -> None:
    patch_ok(
        directory,
        f"/Groups/{group_id}",
        {"op": "add", "path": "members", "value": [{"value": m} for m in member_ids]},
    )


def _check(directory: Directory, text: str, dialect: Dialect = LEGACY, **params: Any) -> Any:
    return search(directory, "/Groups", dialect, filter=text, **params)


@pytest.mark.parametrize("dialect", [LEGACY, COMPLIANT], ids=lambda d: d.name)
def test_membership_check(directory: Directory, dialect: Dialect) -> None:
    alice, bob = create_user(directory)["id"], create_user(directory)["id"]
    sales, eng = create_group(directory)["id"], create_group(directory)["id"]
    _add(directory, sales, alice, eng)
    _add(directory, eng, bob)

    def check(group_id: str, member_id: str) -> list[str]:
        text = f'id eq "{group_id}" and members[value eq "{member_id}"]'
        found = _check(directory, text, dialect, attributes="id")
        for resource in found.get("Resources", []):
            assert set(resource) == {"schemas", "id"}  # attributes=id: nothing else
        return ids(found)

    assert check(sales, alice) == [sales]
    assert check(sales, eng) == [sales]  # a nested group is a member
    assert check(sales, bob) == []  # a member of the nested group only
    assert check(eng, bob) == [eng]
    assert check(eng, alice) == []
    assert check(sales, alice.upper()) == []  # member ids are compared exactly
    assert check("no-such-group", alice) == []
    assert check(sales, "") == []


def test_other_spellings_and_list_parameters(directory: Directory) -> None:
    alice = create_user(directory)["id"]
    sales = create_group(directory)["id"]
    _add(directory, sales, alice)
    check = f'id eq "{sales}" and members[value eq "{alice}"]'

    for text in (
        check,
        check.upper().replace(sales.upper(), sales).replace(alice.upper(), alice),
        f'id eq "{sales}" and members eq "{alice}"',
        f'id eq "{sales}" and members.value eq "{alice}"',
        f'members[value eq "{alice}"] and id eq "{sales}"',  # the filter compiler's
    ):
        assert ids(_check(directory, text)) == [sales], text

    past_the_end = _check(directory, check, startIndex=2)
    assert past_the_end["totalResults"] == 1
    assert past_the_end.get("Resources", []) == []
    assert _check(directory, check, count=0)["totalResults"] == 1
    assert ids(_check(directory, check, sortBy="displayName")) == [sales]
    assert ids(_check(directory, check, excludedAttributes="members")) == [sales]


def test_the_other_directory_is_not_seen(server: LiveServer, directory: Directory) -> None:
    other = server.new_directory("entra")
    theirs, their_group = create_user(other)["id"], create_group(other)["id"]
    _add(other, their_group, theirs)
    text = f'id eq "{their_group}" and members[value eq "{theirs}"]'

    assert ids(_check(other, text)) == [their_group]
    assert _check(directory, text)["totalResults"] == 0
