"""The event outbox and feed: events commit with their change, a failed request records
none, and a consumer polling with the cursor sees every event exactly once, in commit
order, even when sequence values commit out of order (PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from scimgate.events import feed, outbox
from scimgate.store.connections import PostgresConnection
from scimgate.store.engine import Database
from tests.live import Directory, LiveServer


async def _all_events(database_url: str, at_least: int = 0, **filters: Any) -> list[outbox.Event]:
    """Read the whole feed. With ``at_least``, keep polling (up to 30 s) until that many
    events are visible: on a PostgreSQL cluster shared with other sessions, their open
    transactions can hold the feed back for a moment (never reorder it)."""
    db = Database(database_url, pool_size=2)
    deadline = asyncio.get_running_loop().time() + 30
    try:
        found: list[outbox.Event] = []
        cursor = feed.START
        while True:
            async with db.read() as conn:
                batch, cursor = await feed.read(conn, after=cursor, limit=50, **filters)
            found.extend(batch)
            if batch:
                continue
            if len(found) >= at_least or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.05)
    finally:
        await db.dispose()


def _user(user_name: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"type": "work", "value": user_name, "primary": True}],
        "active": True,
    }


def _patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(ops)}


async def test_a_user_lifecycle_records_its_events(
    server: LiveServer, directory: Directory
) -> None:
    c = directory.client
    created = c.post(directory.url("/Users"), json=_user(f"ada-{uuid.uuid4()}@contoso.com"))
    assert created.status_code == 201
    uid = created.json()["id"]
    group = c.post(directory.url("/Groups"), json={"displayName": f"G {uuid.uuid4()}"}).json()
    ops = [
        _patch({"op": "Replace", "path": "title", "value": "Engineer"}),
        _patch({"op": "Replace", "path": "active", "value": "False"}),
        _patch({"op": "Replace", "path": "active", "value": "True"}),
    ]
    for body in ops:
        assert c.patch(directory.url(f"/Users/{uid}"), json=body).status_code == 200
    add = _patch({"op": "Add", "path": "members", "value": [{"value": uid}]})
    assert c.patch(directory.url(f"/Groups/{group['id']}"), json=add).status_code == 204
    # Adding a member again is a no-op: no second event, no error.
    assert c.patch(directory.url(f"/Groups/{group['id']}"), json=add).status_code == 204
    assert c.delete(directory.url(f"/Users/{uid}")).status_code == 204

    events = await _all_events(server.database_url, 8, directory_id=directory.id)
    assert [e.type for e in events] == [
        "user.created",
        "group.created",
        "user.updated",
        "user.deactivated",
        "user.reactivated",
        "group.member_added",
        "group.member_removed",
        "user.deleted",
    ]
    by_type = {e.type: e for e in events}
    assert by_type["user.updated"].data["changed"] == ["title"]
    user = by_type["user.created"].data["user"]
    assert user["id"] == uid and user["first_name"] == "Ada" and user["active"] is True
    assert user["raw"]["id"] == uid and user["raw"]["userName"] == user["username"]
    assert by_type["user.deactivated"].data["user"]["active"] is False
    assert by_type["group.member_added"].data["member"] == {"id": uid, "type": "User"}
    assert by_type["group.member_removed"].data["reason"] == "user_deleted"
    assert all(e.organization_id == directory.organization_id for e in events)
    assert len({e.id for e in events}) == len(events)


async def test_the_events_of_one_request_share_its_instant(
    server: LiveServer, directory: Directory
) -> None:
    """One PATCH adding three members commits three events together: one ``occurred_at``
    for all of them (the instant of the change), later than the creates before it."""
    c = directory.client
    uids = [
        c.post(directory.url("/Users"), json=_user(f"m{n}-{uuid.uuid4()}@contoso.com")).json()["id"]
        for n in range(3)
    ]
    group = c.post(directory.url("/Groups"), json={"displayName": f"G {uuid.uuid4()}"}).json()
    add = _patch({"op": "Add", "path": "members", "value": [{"value": u} for u in uids]})
    assert c.patch(directory.url(f"/Groups/{group['id']}"), json=add).status_code == 204
    events = await _all_events(server.database_url, at_least=7, directory_id=directory.id)
    added = [e for e in events if e.type == "group.member_added"]
    assert sorted(e.data["member"]["id"] for e in added) == sorted(uids)
    assert len({e.occurred_at for e in added}) == 1
    assert len({e.id for e in added}) == 3
    created = [e for e in events if e.type == "user.created"]
    assert len({e.occurred_at for e in created}) == 3  # one request, one instant each
    assert max(e.occurred_at for e in created) <= added[0].occurred_at


async def test_deleting_a_member_group_leaves_its_parent(
    server: LiveServer, directory: Directory
) -> None:
    c = directory.client
    parent = c.post(directory.url("/Groups"), json={"displayName": f"P {uuid.uuid4()}"}).json()
    child = c.post(directory.url("/Groups"), json={"displayName": f"C {uuid.uuid4()}"}).json()
    add = _patch({"op": "add", "path": "members", "value": [{"value": child["id"]}]})
    assert c.patch(directory.url(f"/Groups/{parent['id']}"), json=add).status_code == 204
    before = c.get(directory.url(f"/Groups/{parent['id']}")).json()
    assert c.delete(directory.url(f"/Groups/{child['id']}")).status_code == 204
    after = c.get(directory.url(f"/Groups/{parent['id']}")).json()
    assert "members" not in after
    assert after["meta"]["version"] != before["meta"]["version"]
    events = await _all_events(server.database_url, 5, directory_id=directory.id)
    removed = [e for e in events if e.type == "group.member_removed"]
    assert [e.data for e in removed] == [
        {
            "group": {"id": parent["id"], "display_name": parent["displayName"]},
            "member": {"id": child["id"], "type": "Group"},
            "reason": "group_deleted",
        }
    ]
    assert [e.type for e in events][-1] == "group.deleted"


async def test_failed_requests_record_no_events(server: LiveServer, directory: Directory) -> None:
    c = directory.client
    name = f"dup-{uuid.uuid4()}@contoso.com"
    assert c.post(directory.url("/Users"), json=_user(name)).status_code == 201
    before = await _all_events(server.database_url, 1, directory_id=directory.id)
    uid = before[-1].data["user"]["id"]
    assert c.post(directory.url("/Users"), json=_user(name.upper())).status_code == 409
    bad = _patch(
        {"op": "replace", "path": "title", "value": "T"},
        {"op": "replace", "path": "nosuch", "value": "x"},
    )
    assert c.patch(directory.url(f"/Users/{uid}"), json=bad).status_code == 400
    group = c.post(directory.url("/Groups"), json={"displayName": "G"}).json()
    missing = _patch(
        {"op": "add", "path": "members", "value": [{"value": uid}, {"value": "no-such-user"}]}
    )
    assert c.patch(directory.url(f"/Groups/{group['id']}"), json=missing).status_code == 400
    after = await _all_events(server.database_url, len(before) + 1, directory_id=directory.id)
    assert [e.type for e in after[len(before) :]] == ["group.created"]


async def test_concurrent_writers_and_a_polling_consumer(
    server: LiveServer, directory: Directory
) -> None:
    """Writers commit concurrently while a consumer polls with the cursor: at the end it
    has seen every event once, and in the feed's order."""
    headers = {"Authorization": f"Bearer {directory.token}"}
    seen: list[str] = []
    done = asyncio.Event()

    async def writer(n: int) -> None:
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            for i in range(15):
                r = await client.post(
                    directory.url("/Users"), json=_user(f"w{n}-{i}-{uuid.uuid4()}@c.com")
                )
                assert r.status_code == 201, r.text

    async def consumer() -> None:
        # Every write has committed once `done` is set; allow the feed (which on a shared
        # PostgreSQL cluster can be held back by other sessions) some time to catch up.
        give_up = asyncio.get_running_loop().time() + 120
        db = Database(server.database_url, pool_size=2)
        cursor = feed.START
        try:
            while True:
                finished = done.is_set()
                async with db.read() as conn:
                    batch, cursor = await feed.read(
                        conn, after=cursor, limit=7, directory_id=directory.id
                    )
                seen.extend(e.id for e in batch)
                if finished and not batch and len(seen) >= 8 * 15:
                    return
                if finished and asyncio.get_running_loop().time() > give_up:
                    return
                if not batch:
                    await asyncio.sleep(0.005)
        finally:
            await db.dispose()

    reader = asyncio.create_task(consumer())
    await asyncio.gather(*(writer(n) for n in range(8)))
    done.set()
    await reader
    everything = [
        e.id for e in await _all_events(server.database_url, 8 * 15, directory_id=directory.id)
    ]
    assert len(everything) == 8 * 15
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    assert seen == everything, "the consumer missed events or saw them out of feed order"


async def test_late_commit_of_an_earlier_sequence_value_is_not_skipped(database_url: str) -> None:
    """Transaction A takes a sequence value, B takes a later one and commits first. A
    consumer must not move its cursor past B while A can still commit before it."""
    db = Database(database_url, pool_size=4)
    directory_id, org_id = str(uuid.uuid4()), str(uuid.uuid4())
    ev = [outbox.new_event("user.created", directory_id, org_id, {"n": i}) for i in range(2)]
    try:
        if db.is_sqlite:
            pytest.skip("SQLite serialises writers: a later sequence value cannot commit first")
        async with db.engine.connect() as raw_a:
            conn_a = PostgresConnection(raw_a)
            await conn_a.begin()
            await outbox.write(conn_a, [ev[0]])
            # The events INSERT waits to ride with the next statement or COMMIT: send it
            # now, so that A really holds the earlier sequence value while B commits.
            await conn_a.execute(text("SELECT 1"))
            async with db.write() as conn_b:
                await outbox.write(conn_b, [ev[1]])
            async with db.read() as conn:
                early, cursor = await feed.read(conn, directory_id=directory_id)
            assert early == [], "B was served while A (older) was still in flight"
            await conn_a.commit()
        # Both now, in order. (Poll briefly: on a shared PostgreSQL cluster another
        # session's open transaction can hold the feed back, never reorder it.)
        late: list[outbox.Event] = []
        deadline = asyncio.get_running_loop().time() + 10
        while not late and asyncio.get_running_loop().time() < deadline:
            async with db.read() as conn:
                late, _ = await feed.read(conn, after=cursor, directory_id=directory_id)
            if not late:
                await asyncio.sleep(0.05)
        assert [e.id for e in late] == [ev[0].id, ev[1].id]
    finally:
        await db.dispose()


def test_cursor_round_trip_and_rejects_garbage() -> None:
    assert feed.Cursor.decode(feed.Cursor(12, 34).encode()) == feed.Cursor(12, 34)
    for bad in ["", "x", "1-", "-1-2", "1-2-3x", "a-b"]:
        with pytest.raises(feed.InvalidCursor):
            feed.Cursor.decode(bad)
