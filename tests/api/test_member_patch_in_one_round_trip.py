"""Adding users to a group or removing one member, as Entra and Okta send it, is one
round trip on PostgreSQL once the process remembers the token's directory: the
memberships, their events and the group's version bump go in one statement behind the
group's row lock, with ``COMMIT`` (``groups.finish_ahead``, ``Conn.finish``). Whatever
that statement cannot decide alone (a member that is a group, an unknown id, a missing
group) must come out exactly as the ordinary path answers it, with nothing half-written.
Each test runs on SQLite too, where the ordinary path answers: the outcomes must be the
same."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scimgate.directory.tenancy import Tenancy
from scimgate.events.feed import read as read_feed
from scimgate.store.engine import Database
from tests.api.stack import ScimDirectory, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _add(*ids: str, path: str = "members") -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Add", "path": path, "value": [{"value": i} for i in ids]}],
    }


async def _group(stack: Stack, directory: ScimDirectory, group_id: str) -> dict[str, Any]:
    response = await stack.scim(directory, "GET", f"/Groups/{group_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _member_ids(stack: Stack, directory: ScimDirectory, group_id: str) -> list[str]:
    return [m["value"] for m in (await _group(stack, directory, group_id)).get("members", [])]


def _remove(member_id: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Remove", "path": f'members[value eq "{member_id}"]'}],
    }


def _added(stack: Stack, group_id: str, kind: str = "group.member_added") -> list[Any]:
    return [e for e in stack.events if e.type == kind and e.data["group"]["id"] == group_id]


async def _setup(stack: Stack, users: int) -> tuple[ScimDirectory, list[str], dict[str, Any]]:
    directory = await stack.directory()
    ids = [(await stack.scim_user(directory))["id"] for _ in range(users)]  # remembered now
    group = await stack.scim_group(directory)
    return directory, ids, group


async def test_adding_users_is_one_round_trip_and_records_everything(
    stack: Stack, database_url: str, round_trips: list[str]
) -> None:
    directory, users, group = await _setup(stack, 10)
    round_trips.clear()
    response = await stack.scim(directory, "PATCH", f"/Groups/{group['id']}", _add(*users))
    assert response.status_code == 204, response.text
    if database_url.startswith("postgresql"):
        assert len(round_trips) == 1, round_trips
    # The version moved on by exactly one, and the ETag says so.
    after = await _group(stack, directory, group["id"])
    assert after["meta"]["version"] == 'W/"2"' == response.headers["ETag"]
    assert after["meta"]["lastModified"] > group["meta"]["lastModified"]
    assert sorted(await _member_ids(stack, directory, group["id"])) == sorted(users)
    # One event per member, in the PATCH's order, the same in-process and in the feed.
    seen = _added(stack, group["id"])
    assert [e.data["member"]["id"] for e in seen] == users
    ref = {"id": group["id"], "display_name": group["displayName"]}
    assert all(
        e.data == {"group": ref, "member": {"id": e.data["member"]["id"], "type": "User"}}
        for e in seen
    )
    assert len({e.occurred_at for e in seen}) == 1
    feed, _ = await stack.follow_events(
        len(users), directory_id=directory.id, type=["group.member_added"]
    )
    assert [(e["id"], e["data"]) for e in feed] == [(e.id, e.data) for e in seen]
    assert {e["organization_id"] for e in feed} == {directory.organization_id}
    assert [e["occurred_at"] for e in feed] == [e.to_json()["occurred_at"] for e in seen]


async def test_members_already_there_change_nothing(
    stack: Stack, database_url: str, round_trips: list[str]
) -> None:
    directory, users, group = await _setup(stack, 3)
    path = f"/Groups/{group['id']}"
    assert (await stack.scim(directory, "PATCH", path, _add(*users[:2]))).status_code == 204
    version = (await _group(stack, directory, group["id"]))["meta"]["version"]
    round_trips.clear()
    again = await stack.scim(directory, "PATCH", path, _add(*users[:2]))
    assert again.status_code == 204, again.text
    if database_url.startswith("postgresql"):
        assert len(round_trips) == 1, round_trips
    assert (
        again.headers["ETag"]
        == version
        == (await _group(stack, directory, group["id"]))["meta"]["version"]
    )
    assert len(_added(stack, group["id"])) == 2
    # Half old, half new: only the new one is added, recorded and versioned.
    mixed = await stack.scim(directory, "PATCH", path, _add(users[1], users[2]))
    assert mixed.status_code == 204, mixed.text
    assert [e.data["member"]["id"] for e in _added(stack, group["id"])] == users
    assert (await _group(stack, directory, group["id"]))["meta"]["version"] == 'W/"3"'


async def test_a_group_among_the_members_takes_the_ordinary_path(stack: Stack) -> None:
    directory, users, group = await _setup(stack, 2)
    inner = await stack.scim_group(directory)
    path = f"/Groups/{group['id']}"
    response = await stack.scim(directory, "PATCH", path, _add(users[0], inner["id"], users[1]))
    assert response.status_code == 204, response.text
    members = (await _group(stack, directory, group["id"]))["members"]
    assert {(m["value"], m["type"]) for m in members} == {
        (users[0], "User"),
        (inner["id"], "Group"),
        (users[1], "User"),
    }
    seen = _added(stack, group["id"])
    assert [(e.data["member"]["id"], e.data["member"]["type"]) for e in seen] == [
        (users[0], "User"),
        (inner["id"], "Group"),
        (users[1], "User"),
    ]
    assert (await _group(stack, directory, group["id"]))["meta"]["version"] == 'W/"2"'


@pytest.mark.parametrize("bad", ["unknown", "other directory", "itself"])
async def test_an_id_that_is_not_a_user_here_is_400_and_changes_nothing(
    stack: Stack, bad: str
) -> None:
    directory, users, group = await _setup(stack, 2)
    if bad == "unknown":
        wrong = "2f0c2a39-0000-4000-8000-000000000000"
    elif bad == "other directory":
        wrong = (await stack.scim_user(await stack.directory()))["id"]
    else:
        wrong = group["id"]
    response = await stack.scim(directory, "PATCH", f"/Groups/{group['id']}", _add(users[0], wrong))
    assert response.status_code == 400, response.text
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    after = await _group(stack, directory, group["id"])
    assert after.get("members", []) == []
    assert after["meta"]["version"] == group["meta"]["version"]
    assert _added(stack, group["id"]) == []
    # The process still remembers the directory: the next add is the fast one again.
    ok = await stack.scim(directory, "PATCH", f"/Groups/{group['id']}", _add(users[1]))
    assert ok.status_code == 204, ok.text
    assert await _member_ids(stack, directory, group["id"]) == [users[1]]


async def test_a_missing_group_is_404_and_writes_nothing(stack: Stack) -> None:
    directory, users, _ = await _setup(stack, 1)
    other = await stack.directory()
    elsewhere_group = await stack.scim_group(other)
    before = len(stack.events)
    for group_id in ("2f0c2a39-0000-4000-8000-000000000001", elsewhere_group["id"]):
        response = await stack.scim(directory, "PATCH", f"/Groups/{group_id}", _add(users[0]))
        assert response.status_code == 404, response.text
    assert len(stack.events) == before
    assert (await _group(stack, other, elsewhere_group["id"])).get("members", []) == []


async def test_display_names_given_are_kept(stack: Stack) -> None:
    directory, users, group = await _setup(stack, 2)
    body = {
        "schemas": [PATCH_OP],
        "Operations": [
            {
                "op": "add",
                "path": "members",
                "value": [{"value": users[0], "display": "Zoë O'Brien"}, {"value": users[1]}],
            }
        ],
    }
    response = await stack.scim(directory, "PATCH", f"/Groups/{group['id']}", body)
    assert response.status_code == 204, response.text
    members = {m["value"]: m for m in (await _group(stack, directory, group["id"]))["members"]}
    assert members[users[0]]["display"] == "Zoë O'Brien"


async def test_a_rotated_token_is_refused_and_adds_nothing(stack: Stack, database_url: str) -> None:
    directory, users, group = await _setup(stack, 1)
    db = Database(database_url)
    try:
        await Tenancy(db).rotate_token(directory.id)  # another process: this one remembers
    finally:
        await db.dispose()
    response = await stack.scim(directory, "PATCH", f"/Groups/{group['id']}", _add(users[0]))
    assert response.status_code == 401, response.text
    assert _added(stack, group["id"]) == []


async def test_concurrent_adds_to_one_group_lose_nothing(stack: Stack) -> None:
    """Sixteen PATCHes at once, overlapping: every user ends up a member exactly once,
    with exactly one event, and the version counts the PATCHes that added someone."""
    directory, users, group = await _setup(stack, 24)
    path = f"/Groups/{group['id']}"
    chunks = [users[i : i + 4] for i in range(0, 24, 2)]  # each user in two chunks
    chunks += [users[:4]] * 4  # and some repeated whole
    responses = await asyncio.gather(
        *(stack.scim(directory, "PATCH", path, _add(*chunk)) for chunk in chunks)
    )
    assert [r.status_code for r in responses] == [204] * len(chunks)
    assert sorted(await _member_ids(stack, directory, group["id"])) == sorted(users)
    seen = sorted(e.data["member"]["id"] for e in _added(stack, group["id"]))
    assert seen == sorted(users)
    version = int((await _group(stack, directory, group["id"]))["meta"]["version"][3:-1])
    assert 2 <= version <= 1 + len(chunks)
    etags = {r.headers["ETag"] for r in responses}
    assert {f'W/"{v}"' for v in range(2, version + 1)} <= etags  # one per adding PATCH


async def test_removing_one_member_is_one_round_trip_and_records_it(
    stack: Stack, database_url: str, round_trips: list[str]
) -> None:
    directory, users, group = await _setup(stack, 2)
    inner = await stack.scim_group(directory)
    path = f"/Groups/{group['id']}"
    added = await stack.scim(directory, "PATCH", path, _add(users[0], inner["id"], users[1]))
    assert added.status_code == 204, added.text
    for member, kind, version in ((users[0], "User", 3), (inner["id"], "Group", 4)):
        round_trips.clear()
        response = await stack.scim(directory, "PATCH", path, _remove(member))
        assert response.status_code == 204, response.text
        if database_url.startswith("postgresql"):
            assert len(round_trips) == 1, round_trips
        assert response.headers["ETag"] == f'W/"{version}"'
        [event] = [
            e
            for e in _added(stack, group["id"], "group.member_removed")
            if e.data["member"]["id"] == member
        ]
        ref = {"id": group["id"], "display_name": group["displayName"]}
        assert event.data == {"group": ref, "member": {"id": member, "type": kind}}
    after = await _group(stack, directory, group["id"])
    assert [m["value"] for m in after["members"]] == [users[1]]
    assert after["meta"]["version"] == 'W/"4"'
    feed, _ = await stack.follow_events(2, directory_id=directory.id, type=["group.member_removed"])
    seen = _added(stack, group["id"], "group.member_removed")
    assert [(e["id"], e["data"]) for e in feed] == [(e.id, e.data) for e in seen]
    # Absent now: a no-op, same version, no event.
    again = await stack.scim(directory, "PATCH", path, _remove(users[0]))
    assert again.status_code == 204, again.text
    assert again.headers["ETag"] == 'W/"4"'
    assert len(_added(stack, group["id"], "group.member_removed")) == 2


async def test_removing_from_a_missing_group_is_404(stack: Stack) -> None:
    directory, users, group = await _setup(stack, 1)
    other = await stack.directory()
    before = len(stack.events)
    assert (
        await stack.scim(directory, "PATCH", f"/Groups/{group['id']}", _add(users[0]))
    ).status_code == 204
    elsewhere = await stack.scim(other, "PATCH", f"/Groups/{group['id']}", _remove(users[0]))
    assert elsewhere.status_code == 404, elsewhere.text
    assert await _member_ids(stack, directory, group["id"]) == [users[0]]
    assert len(stack.events) == before + 1  # the add only


async def test_concurrent_adds_and_removes_keep_members_and_events_in_step(
    stack: Stack,
) -> None:
    """Removals racing adds of the same users: whatever order the row lock gives them,
    each user's events in the feed (commit order) alternate added/removed and end as its
    membership ends. The in-process handler gets the same events, each request's after
    its commit; across concurrent requests its order is not promised (docs/embedding.md):
    regression, this test read that order and failed now and then under load."""
    directory, users, group = await _setup(stack, 8)
    path = f"/Groups/{group['id']}"
    published = len(stack.events)
    bodies = [_add(*users)] + [_remove(u) for u in users] + [_add(*users[:4])] * 3
    responses = await asyncio.gather(*(stack.scim(directory, "PATCH", path, b) for b in bodies))
    assert [r.status_code for r in responses] == [204] * len(bodies)
    members = set(await _member_ids(stack, directory, group["id"]))
    kinds_of = ("group.member_added", "group.member_removed")
    db: Database = stack.app.state.db
    async with db.read() as conn:
        feed, _ = await read_feed(conn, directory_id=directory.id, types=list(kinds_of), limit=500)
    events = [e for e in feed if e.data["group"]["id"] == group["id"]]
    handled = [e for e in stack.events[published:] if e.type in kinds_of]
    assert sorted(e.id for e in handled) == sorted(e.id for e in events)
    changes = len(events)
    for user in users:
        kinds = [e.type for e in events if e.data["member"]["id"] == user]
        assert kinds[::2] == ["group.member_added"] * len(kinds[::2])
        assert kinds[1::2] == ["group.member_removed"] * len(kinds[1::2])
        assert (user in members) == (kinds[-1] == "group.member_added")
    version = int((await _group(stack, directory, group["id"]))["meta"]["version"][3:-1])
    assert 1 < version <= 1 + min(len(bodies), changes)
