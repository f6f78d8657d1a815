"""The event feed and webhook management through the API."""

from __future__ import annotations

import uuid

from tests.api.stack import Stack


async def test_the_event_feed_pages_in_commit_order_with_a_cursor(stack: Stack) -> None:
    directory = await stack.directory()
    users = [await stack.scim_user(directory) for _ in range(5)]
    await stack.scim_group(directory, [u["id"] for u in users[:2]])
    expected = [e.id for e in stack.events if e.directory_id == directory.id]
    assert len(expected) == 5 + 1 + 2  # created users, created group, two member_added

    seen, cursor = await stack.follow_events(len(expected), directory_id=directory.id, limit=3)
    assert [e["id"] for e in seen] == expected  # same order as committed, once each
    assert seen[0]["type"] == "user.created"
    assert seen[0]["data"]["user"]["id"] == users[0]["id"]
    assert seen[0]["organization_id"] == directory.organization_id

    # Later events continue from the saved cursor.
    late = await stack.scim_user(directory)
    more, _ = await stack.follow_events(1, cursor, directory_id=directory.id)
    assert [e["data"]["user"]["id"] for e in more] == [late["id"]]

    only, _ = await stack.follow_events(
        2, directory_id=directory.id, type=["group.member_added"], limit=1
    )
    assert [e["type"] for e in only] == ["group.member_added"] * 2
    bad = await stack.api("GET", "/events", params={"after": "garbage"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"
    huge = await stack.api("GET", "/events", params={"after": f"{2**70}-1"})
    assert huge.status_code == 400
    unknown_type = await stack.api("GET", "/events", params={"type": "user.exploded"})
    assert unknown_type.status_code == 422


async def test_webhook_endpoint_crud_deliveries_test_and_replay(stack: Stack) -> None:
    org = await stack.organization()
    directory = await stack.directory(org["id"])
    created = await stack.ok(
        "POST",
        "/webhook-endpoints",
        201,
        json={
            "organization_id": org["id"],
            "directory_id": directory.id,
            "url": "http://127.0.0.1:9/hooks/scim",
            "event_types": ["user.created", "user.deleted"],
            "description": "HR sync",
        },
    )
    secret = created.pop("secret")
    assert secret.startswith("whsec_")
    assert created["event_types"] == ["user.created", "user.deleted"]
    assert created["enabled"] is True
    endpoint_id = created["id"]
    fetched = await stack.ok("GET", f"/webhook-endpoints/{endpoint_id}")
    assert fetched == created and "secret" not in fetched
    listed = await stack.ok("GET", "/webhook-endpoints", params={"organization_id": org["id"]})
    assert listed == {"data": [created]}

    updated = await stack.ok(
        "PATCH",
        f"/webhook-endpoints/{endpoint_id}",
        json={"event_types": None, "description": None, "enabled": False},
    )
    assert updated["event_types"] is None and updated["description"] is None
    assert updated["enabled"] is False and updated["url"] == created["url"]
    null_url = await stack.api("PATCH", f"/webhook-endpoints/{endpoint_id}", json={"url": None})
    assert null_url.status_code == 422

    rotated = await stack.ok("POST", f"/webhook-endpoints/{endpoint_id}/rotate-secret")
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret

    test = await stack.ok("POST", f"/webhook-endpoints/{endpoint_id}/test", 202)
    assert test["endpoint_id"] == endpoint_id and test["status"] == "pending"
    assert test["event_type"] == "webhook.test"
    deliveries = await stack.ok("GET", f"/webhook-endpoints/{endpoint_id}/deliveries")
    assert [d["id"] for d in deliveries["data"]] == [test["id"]]
    assert deliveries["next_cursor"] is None
    replayed = await stack.ok("POST", f"/webhook-deliveries/{test['id']}/replay", 202)
    assert replayed["id"] == test["id"] and replayed["event_id"] == test["event_id"]
    assert replayed["status"] == "pending"
    pending = await stack.ok(
        "GET", f"/webhook-endpoints/{endpoint_id}/deliveries", params={"status": "pending"}
    )
    assert len(pending["data"]) == 1

    refused = await stack.api(
        "POST",
        "/webhook-endpoints",
        json={"organization_id": org["id"], "url": "ftp://127.0.0.1/x"},
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request"
    wrong_owner = await stack.api(
        "POST",
        "/webhook-endpoints",
        json={
            "organization_id": (await stack.organization())["id"],
            "directory_id": directory.id,
            "url": "http://127.0.0.1:9/x",
        },
    )
    assert wrong_owner.status_code == 400
    no_org = await stack.api(
        "POST",
        "/webhook-endpoints",
        json={"organization_id": str(uuid.uuid4()), "url": "http://127.0.0.1:9/x"},
    )
    assert no_org.status_code == 404

    await stack.ok("DELETE", f"/webhook-endpoints/{endpoint_id}", 204)
    for method, path in (
        ("GET", f"/webhook-endpoints/{endpoint_id}"),
        ("DELETE", f"/webhook-endpoints/{endpoint_id}"),
        ("GET", f"/webhook-endpoints/{endpoint_id}/deliveries"),
        ("POST", f"/webhook-endpoints/{endpoint_id}/test"),
        ("POST", f"/webhook-endpoints/{endpoint_id}/rotate-secret"),
        ("POST", f"/webhook-deliveries/{test['id']}/replay"),
    ):
        response = await stack.api(method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"


async def test_in_process_events_carry_the_organization_external_id(stack: Stack) -> None:
    """Regression: on_event events had organization_external_id None (only the feed
    filled it in)."""
    external_id = f"cust-{uuid.uuid4().hex[:8]}"
    org = await stack.organization(external_id=external_id)
    directory = await stack.directory(org["id"])
    user = await stack.scim_user(directory)
    [event] = [e for e in stack.events if e.data.get("user", {}).get("id") == user["id"]]
    assert event.organization_external_id == external_id
    assert event.to_json()["organization_external_id"] == external_id
    feed, _ = await stack.follow_events(1, directory_id=directory.id)
    assert feed[0]["organization_external_id"] == external_id
