"""The round trips to PostgreSQL of the writes an IdP sends most, once the process
remembers the token's directory. Each costs ~100 µs of server CPU and a turn of the event
loop, and a member PATCH holds its group's row lock across them: the first member change
and a delete's version bumps of the groups it leaves go with the row lock
(``Conn.follow``), the rest with ``COMMIT``. On SQLite the same requests, for their
outcome."""

from __future__ import annotations

import pytest

from tests.api.stack import ScimDirectory, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _patch(*operations: dict[str, object]) -> dict[str, object]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def _members(stack: Stack, directory: ScimDirectory, group_id: str) -> set[str]:
    response = await stack.scim(directory, "GET", f"/Groups/{group_id}")
    assert response.status_code == 200, response.text
    return {m["value"] for m in response.json().get("members", [])}


async def _version(stack: Stack, directory: ScimDirectory, group_id: str) -> str:
    response = await stack.scim(directory, "GET", f"/Groups/{group_id}")
    return str(response.json()["meta"]["version"])


async def test_member_patches_and_deletes_take_two_round_trips(
    stack: Stack, database_url: str, round_trips: list[str]
) -> None:
    directory = await stack.directory()
    users = [(await stack.scim_user(directory))["id"] for _ in range(10)]  # remembered now
    costs: dict[str, int] = {}
    round_trips.clear()
    group = (await stack.scim_group(directory))["id"]
    costs["create a group"] = len(round_trips)

    async def counted(name: str, method: str, path: str, body: object = None) -> None:
        round_trips.clear()
        response = await stack.scim(directory, method, path, body)
        assert response.status_code == 204, response.text
        costs[name] = len(round_trips)

    add = [{"value": u} for u in users]
    await counted(
        "add 10",
        "PATCH",
        f"/Groups/{group}",
        _patch({"op": "Add", "path": "members", "value": add}),
    )
    assert await _members(stack, directory, group) == set(users)
    await counted(
        "remove 1",
        "PATCH",
        f"/Groups/{group}",
        _patch({"op": "Remove", "path": "members", "value": [{"value": users[0]}]}),
    )
    assert await _members(stack, directory, group) == set(users[1:])
    before = await _version(stack, directory, group)
    await counted("delete a member", "DELETE", f"/Users/{users[1]}")
    assert await _members(stack, directory, group) == set(users[2:])
    assert await _version(stack, directory, group) != before  # the group it left moved on
    await counted(
        "add 1 again",
        "PATCH",
        f"/Groups/{group}",
        _patch({"op": "add", "path": "members", "value": [{"value": users[2]}]}),
    )  # already a member: a no-op
    assert await _members(stack, directory, group) == set(users[2:])
    if database_url.startswith("postgresql"):
        # the lock with the look-up (or removal, or version bumps); the writes with COMMIT
        assert costs == {
            "create a group": 1,  # BEGIN, the directory assumed, INSERT, its event, COMMIT
            "add 10": 1,  # the whole change with the lock and COMMIT (finish_adding)
            "remove 1": 1,  # likewise (finish_ahead)
            "delete a member": 2,
            "add 1 again": 1,
        }
