"""Each user's and group's changes reach the event feed in the order they committed, also
when PostgreSQL gives the later committer the older transaction id (store/feed_order.py).

Regression: under load, a member PATCH that waited for the group's row lock sometimes took
its transaction id before a third PATCH that locked the group first and committed first;
the feed (ordered by transaction id) then showed a member added after its removal while
it was really added last. That race cannot be timed from outside, so these tests make
the same situation on purpose: a unit takes its transaction id, another request changes
the row and commits, then the unit changes the row. The unit must be replayed (with a
newer id), and the feed must show the other request's change first.

On SQLite one writer runs at a time and the unit's transaction would block the other
request: there the other request goes first, and the unit must run once and change the
row as on PostgreSQL (the condition renders as plain true)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from scimgate.directory import groups as group_repo
from scimgate.directory import users as user_repo
from scimgate.directory.tenancy import DirectoryAccess
from scimgate.directory.unit import Unit, run_unit
from scimgate.events.feed import read as read_feed
from scimgate.store import engine, feed_order
from scimgate.store.engine import Database
from tests.api.stack import PATCH_SCHEMA, ScimDirectory, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def _add_member(member_id: str) -> dict[str, Any]:
    return _patch({"op": "add", "path": "members", "value": [{"value": member_id}]})


async def _access(stack: Stack, directory: ScimDirectory) -> DirectoryAccess:
    access = await stack.app.state.tenancy.authenticate(directory.id, directory.token)
    assert access is not None
    return access


async def _run_after_a_newer_writer(
    stack: Stack,
    directory: ScimDirectory,
    other: Callable[[], Awaitable[None]],
    change: Callable[[Unit], Awaitable[None]],
) -> int:
    """Run ``change`` in a unit whose transaction id is older than that of ``other``,
    which commits in between (on PostgreSQL; on SQLite ``other`` runs first). Returns
    how many times the unit ran."""
    db: Database = stack.app.state.db
    access = await _access(stack, directory)
    runs = 0

    async def open_unit(conn: Any) -> Unit:
        return Unit(conn, directory.id, lambda: access)

    async def work(unit: Unit) -> None:
        nonlocal runs
        runs += 1
        if runs == 1 and not db.is_sqlite:
            await unit.conn.execute(text("SELECT pg_current_xact_id()"))  # our id: older
            await other()  # a newer id changes the row and commits
        await change(unit)

    if db.is_sqlite:
        await other()
    await run_unit(db, None, open_unit, work)
    return runs


async def _feed(stack: Stack, directory: ScimDirectory, *types: str) -> list[Any]:
    db: Database = stack.app.state.db
    async with db.read() as conn:
        events, _ = await read_feed(conn, directory_id=directory.id, types=list(types), limit=1000)
    return events


def _replays(stack: Stack) -> int:
    return 1 if stack.app.state.db.is_sqlite else 2


async def test_a_member_removal_older_than_the_add_it_waited_for_is_replayed(
    stack: Stack,
) -> None:
    directory = await stack.directory()
    user = (await stack.scim_user(directory))["id"]
    group = await stack.scim_group(directory)

    async def other() -> None:
        response = await stack.scim(directory, "PATCH", f"/Groups/{group['id']}", _add_member(user))
        assert response.status_code == 204, response.text

    async def remove(unit: Unit) -> None:
        current = await group_repo.get(unit.conn, directory.id, group["id"], for_update=True)
        assert current is not None
        assert await group_repo.remove_members(unit, current, [user]) == [user]
        await group_repo.replace(unit, current)

    assert await _run_after_a_newer_writer(stack, directory, other, remove) == _replays(stack)
    kinds = [
        e.type for e in await _feed(stack, directory, "group.member_added", "group.member_removed")
    ]
    assert kinds == ["group.member_added", "group.member_removed"]
    response = await stack.scim(directory, "GET", f"/Groups/{group['id']}")
    assert response.json().get("members", []) == []
    assert response.json()["meta"]["version"] == 'W/"3"'


async def test_the_one_round_trip_member_patch_is_replayed_too(stack: Stack) -> None:
    """The finisher (lock, change and COMMIT in one message) carries the check in its
    version bump: its failure rolls the whole message back."""
    directory = await stack.directory()
    first, second = [(await stack.scim_user(directory))["id"] for _ in range(2)]
    group = await stack.scim_group(directory)

    async def other() -> None:
        response = await stack.scim(
            directory, "PATCH", f"/Groups/{group['id']}", _add_member(first)
        )
        assert response.status_code == 204, response.text

    async def add(unit: Unit) -> None:
        finish = group_repo.finish_ahead(unit, group["id"], "add", {second: None})
        current = await group_repo.get(unit.conn, directory.id, group["id"], for_update=True)
        assert current is not None
        if finish is not None and group_repo.finished(unit, current, finish) is not None:
            return
        assert await group_repo.add_members(unit, current, {second: None}) == [second]
        await group_repo.replace(unit, current)

    assert await _run_after_a_newer_writer(stack, directory, other, add) == _replays(stack)
    added = [e.data["member"]["id"] for e in await _feed(stack, directory, "group.member_added")]
    assert added == [first, second]
    response = await stack.scim(directory, "GET", f"/Groups/{group['id']}")
    assert sorted(m["value"] for m in response.json()["members"]) == sorted([first, second])
    assert response.json()["meta"]["version"] == 'W/"3"'


async def test_a_user_update_older_than_the_one_it_waited_for_is_replayed(
    stack: Stack,
) -> None:
    directory = await stack.directory()
    user = await stack.scim_user(directory)

    async def other() -> None:
        body = _patch({"op": "replace", "path": "active", "value": False})
        response = await stack.scim(directory, "PATCH", f"/Users/{user['id']}", body)
        assert response.status_code == 200, response.text

    async def rename(unit: Unit) -> None:
        current = await user_repo.get(unit.conn, directory.id, user["id"], for_update=True)
        assert current is not None
        await user_repo.replace(unit, current, {**current.doc, "displayName": "Renamed"})

    assert await _run_after_a_newer_writer(stack, directory, other, rename) == _replays(stack)
    events = await _feed(stack, directory, "user.deactivated", "user.updated")
    assert [e.type for e in events] == ["user.deactivated", "user.updated"]
    # The replay read the row as the other request left it: both changes are kept.
    response = await stack.scim(directory, "GET", f"/Users/{user['id']}")
    assert response.json()["active"] is False
    assert response.json()["displayName"] == "Renamed"


async def test_a_user_delete_older_than_a_change_it_waited_for_is_replayed(
    stack: Stack,
) -> None:
    """Both statements a delete changes rows with carry the check: the user's DELETE,
    and the version bump of the groups it leaves."""
    directory = await stack.directory()
    user = await stack.scim_user(directory)
    group = await stack.scim_group(directory, [user["id"]])

    async def other() -> None:
        body = _patch({"op": "replace", "path": "displayName", "value": "Renamed group"})
        response = await stack.scim(directory, "PATCH", f"/Groups/{group['id']}", body)
        assert response.status_code in (200, 204), response.text

    async def delete(unit: Unit) -> None:
        leaving = group_repo.leave_ahead(unit, user["id"], "User")
        current = await user_repo.get(unit.conn, directory.id, user["id"], for_update=True)
        assert current is not None
        await user_repo.delete_user(unit, current, leaving)

    assert await _run_after_a_newer_writer(stack, directory, other, delete) == _replays(stack)
    kinds = [
        e.type
        for e in await _feed(
            stack, directory, "group.updated", "group.member_removed", "user.deleted"
        )
    ]
    assert kinds[0] == "group.updated"
    assert sorted(kinds[1:]) == ["group.member_removed", "user.deleted"]
    response = await stack.scim(directory, "GET", f"/Groups/{group['id']}")
    assert response.json()["displayName"] == "Renamed group"
    assert response.json().get("members", []) == []


async def test_concurrent_member_patches_of_one_group_queue_instead_of_replaying(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve PATCHes at a time on one group, ten times: each waits its turn for the
    group (feed_order.queued), so none takes its transaction id before an earlier
    writer committed, and none is replayed. (Without the queue about 4 % were.)"""
    replays: list[BaseException] = []

    def counted(exc: BaseException) -> bool:
        found = feed_order.out_of_order(exc)
        if found:
            replays.append(exc)
        return found

    monkeypatch.setattr(engine, "out_of_order", counted)
    directory = await stack.directory()
    users = [(await stack.scim_user(directory))["id"] for _ in range(6)]
    group = await stack.scim_group(directory)
    path = f"/Groups/{group['id']}"
    remove = [_patch({"op": "remove", "path": f'members[value eq "{u}"]'}) for u in users]
    for _ in range(10):
        bodies = [_add_member(u) for u in users]
        responses = await asyncio.gather(
            *(stack.scim(directory, "PATCH", path, b) for b in [*bodies, *remove])
        )
        assert [r.status_code for r in responses] == [204] * 12
    assert replays == []
    # And the feed agrees with the end state, user by user.
    events = await _feed(stack, directory, "group.member_added", "group.member_removed")
    after = (await stack.scim(directory, "GET", path)).json()
    members = {m["value"] for m in after.get("members", [])}
    for user in users:
        kinds = [e.type for e in events if e.data["member"]["id"] == user]
        assert kinds[::2] == ["group.member_added"] * len(kinds[::2])
        assert kinds[1::2] == ["group.member_removed"] * len(kinds[1::2])
        assert (user in members) == (bool(kinds) and kinds[-1] == "group.member_added")
