"""Concurrent requests over real HTTP: Entra runs several provisioning threads per job, and
retries; uniqueness and membership must hold under races, and no update may be lost.

Each request runs on its own thread with its own connection, released together by a
barrier so that they really overlap; nothing here sleeps."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.integration.helpers import (
    CUSTOM_EXT,
    ENTERPRISE,
    SCIM_JSON,
    assert_scim_error,
    create_group,
    create_user,
    get_resource,
    group_body,
    ids,
    member_ids,
    patch_body,
    search,
    user_body,
    version_number,
)
from tests.live import Directory, LiveServer

Request = Callable[[httpx.Client], httpx.Response]


def run_together(directory: Directory, requests: list[Request]) -> list[httpx.Response]:
    """Send all requests at once, each on its own client (own connection)."""
    barrier = threading.Barrier(len(requests))
    headers = {"Authorization": f"Bearer {directory.token}", "Content-Type": SCIM_JSON}

    def one(request: Request) -> httpx.Response:
        with httpx.Client(headers=headers, timeout=60) as client:
            client.get(directory.url("/ServiceProviderConfig")).raise_for_status()  # connect
            barrier.wait(timeout=60)
            return request(client)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(one, requests))


def test_concurrent_creates_of_one_user_name(directory: Directory) -> None:
    tag = uuid.uuid4().hex[:10]
    # the same userName, in several spellings (userName is case-insensitive)
    spellings = [f"race.{tag}@contoso.com", f"Race.{tag}@Contoso.com", f"RACE.{tag}@CONTOSO.COM"]
    bodies = [user_body(userName=spellings[i % len(spellings)]) for i in range(20)]

    def post(body: dict[str, Any]) -> Request:
        return lambda client: client.post(directory.url("/Users"), json=body)

    responses = run_together(directory, [post(b) for b in bodies])
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 19}, [(r.status_code, r.text[:200]) for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_scim_error(response, 409, "uniqueness")
    [winner] = [r.json() for r in responses if r.status_code == 201]
    found = search(directory, "/Users", filter=f'userName eq "race.{tag}@contoso.com"')
    assert ids(found) == [winner["id"]]
    assert search(directory, "/Users")["totalResults"] == 1


def test_concurrent_member_adds_to_one_group(directory: Directory) -> None:
    users = [create_user(directory)["id"] for _ in range(24)]
    gid = create_group(directory)["id"]
    already = users[:2]
    response = directory.client.patch(
        directory.url(f"/Groups/{gid}"),
        json=patch_body({"op": "add", "path": "members", "value": [{"value": u} for u in already]}),
    )
    assert response.status_code in (200, 204), response.text

    def add(*member_ids_: str, op: str = "Add") -> Request:
        body = patch_body(
            {
                "op": op,
                "path": "members",
                "value": [{"$ref": None, "value": m} for m in member_ids_],
            }
        )
        return lambda client: client.patch(directory.url(f"/Groups/{gid}"), json=body)

    singles = [add(u, op="Add" if i % 2 else "add") for i, u in enumerate(users[2:22])]
    overlapping = [
        add(users[0], users[2], users[22]),  # one already a member, one also added alone
        add(users[22], users[23]),  # overlaps the one above
        add(users[5], users[6], users[7]),  # all also added alone
        add(users[23], users[1], users[10]),
    ]
    responses = run_together(directory, singles + overlapping)
    assert [r.status_code for r in responses if r.status_code not in (200, 204)] == [], [
        r.text[:300] for r in responses if r.status_code not in (200, 204)
    ]
    assert member_ids(directory, gid) == set(users)
    group = get_resource(directory, f"/Groups/{gid}")
    assert len(group["members"]) == len(users)


def test_concurrent_adds_and_removes_on_one_group(directory: Directory) -> None:
    """Removes of one half race adds of another: the result is exactly the expected set."""
    keep = [create_user(directory)["id"] for _ in range(10)]
    drop = [create_user(directory)["id"] for _ in range(10)]
    new = [create_user(directory)["id"] for _ in range(10)]
    gid = create_group(directory)["id"]
    response = directory.client.patch(
        directory.url(f"/Groups/{gid}"),
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": u} for u in keep + drop]}
        ),
    )
    assert response.status_code in (200, 204), response.text

    def send(operation: dict[str, Any]) -> Request:
        body = patch_body(operation)
        return lambda client: client.patch(directory.url(f"/Groups/{gid}"), json=body)

    requests = [
        send({"op": "Remove", "path": "members", "value": [{"value": u}]}) for u in drop[:5]
    ]
    requests += [send({"op": "remove", "path": f'members[value eq "{u}"]'}) for u in drop[5:]]
    requests += [send({"op": "add", "path": "members", "value": [{"value": u}]}) for u in new]
    responses = run_together(directory, requests)
    assert all(r.status_code in (200, 204) for r in responses), [r.text[:300] for r in responses]
    assert member_ids(directory, gid) == set(keep + new)


def test_concurrent_patches_of_different_attributes_on_one_user(directory: Directory) -> None:
    user = create_user(directory)
    uid = user["id"]
    start = version_number(user["meta"]["version"])
    changes: list[tuple[str, str]] = [
        ("displayName", "Concurrent Display"),
        ("title", "Engineer"),
        ("nickName", "Nick"),
        ("userType", "Employee"),
        ("profileUrl", "https://contoso.example/u/1"),
        ("name.givenName", "Given2"),
        ("name.familyName", "Family2"),
        ("name.middleName", "Middle2"),
        ("name.honorificPrefix", "Dr"),
        ("name.honorificSuffix", "III"),
        ('emails[type eq "work"].value', f"changed.{uid}@contoso.com"),
        ('phoneNumbers[type eq "mobile"].value', "+1 555 0111"),
        ('phoneNumbers[type eq "fax"].value', "+1 555 0112"),
        (f"{ENTERPRISE}:employeeNumber", "E-1001"),
        (f"{ENTERPRISE}:department", "Research"),
        (f"{ENTERPRISE}:costCenter", "CC-7"),
        (f"{ENTERPRISE}:organization", "Contoso"),
        (f"{ENTERPRISE}:division", "Labs"),
        (f"{CUSTOM_EXT}:costCenter", "X-1"),
        (f"{CUSTOM_EXT}:building", "B-2"),
    ]

    def replace(path: str, value: str) -> Request:
        op = "add" if path.startswith(("phoneNumbers", CUSTOM_EXT)) else "replace"
        body = patch_body({"op": op, "path": path, "value": value})
        return lambda client: client.patch(directory.url(f"/Users/{uid}"), json=body)

    responses = run_together(directory, [replace(p, v) for p, v in changes])
    assert all(r.status_code in (200, 204) for r in responses), [
        (r.status_code, r.text[:300]) for r in responses
    ]
    versions = sorted(version_number(r.headers["etag"]) for r in responses)
    # every PATCH saw the previous one's result: versions are start+1 … start+20, no repeats
    assert versions == list(range(start + 1, start + len(changes) + 1)), versions

    got = get_resource(directory, f"/Users/{uid}")
    assert version_number(got["meta"]["version"]) == start + len(changes)
    assert got["displayName"] == "Concurrent Display"
    assert got["title"] == "Engineer"
    assert got["nickName"] == "Nick"
    assert got["userType"] == "Employee"
    assert got["profileUrl"] == "https://contoso.example/u/1"
    assert {
        k: got["name"].get(k)
        for k in ("givenName", "familyName", "middleName", "honorificPrefix", "honorificSuffix")
    } == {
        "givenName": "Given2",
        "familyName": "Family2",
        "middleName": "Middle2",
        "honorificPrefix": "Dr",
        "honorificSuffix": "III",
    }
    assert [(e["type"], e["value"]) for e in got["emails"]] == [
        ("work", f"changed.{uid}@contoso.com")
    ]
    assert sorted((p["type"], p["value"]) for p in got["phoneNumbers"]) == [
        ("fax", "+1 555 0112"),
        ("mobile", "+1 555 0111"),
    ]
    assert {
        k: got[ENTERPRISE].get(k)
        for k in ("employeeNumber", "department", "costCenter", "organization", "division")
    } == {
        "employeeNumber": "E-1001",
        "department": "Research",
        "costCenter": "CC-7",
        "organization": "Contoso",
        "division": "Labs",
    }
    assert got[CUSTOM_EXT] == {"costCenter": "X-1", "building": "B-2"}
    assert got["userName"] == user["userName"]


def _feed_after(
    server: LiveServer, key: str, directory_id: str, cursor: str | None, want: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The directory's events after ``cursor``, read until ``want`` came (PostgreSQL serves
    an event once every older transaction ended) or 30 s passed."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while True:
        params = {"directory_id": directory_id, **({"after": cursor} if cursor else {})}
        page = httpx.get(
            f"{server.base_url}/api/v1/events",
            params=params,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()
        seen.extend(page["data"])
        cursor = page["next_cursor"]
        if not page["data"] and (len(seen) >= want or time.monotonic() > deadline):
            return seen, cursor
        if not page["data"]:
            time.sleep(0.05)


def test_failing_writes_among_concurrent_ones_leave_no_trace(server: LiveServer) -> None:
    """Writes that fail (a taken userName, an unknown member, a malformed PATCH) race ones
    that succeed: each gets its own answer, and the database and the event log hold the
    successful ones' changes and nothing of the others (on SQLite, writes that arrive
    together share one commit, each in a savepoint of its own)."""
    directory = server.new_directory("entra")
    key = server.cli("api-key", "create", "--name", f"race-{uuid.uuid4().hex[:6]}")["key"]
    taken = create_user(directory)
    members = [create_user(directory)["id"] for _ in range(4)]
    gid = create_group(directory)["id"]
    _, cursor = _feed_after(server, key, directory.id, None, 6)

    def post(path: str, body: dict[str, Any]) -> Request:
        return lambda client: client.post(directory.url(path), json=body)

    def patch_group(*operations: dict[str, Any]) -> Request:
        body = patch_body(*operations)
        return lambda client: client.patch(directory.url(f"/Groups/{gid}"), json=body)

    new = [user_body() for _ in range(10)]
    requests: list[tuple[int, Request]] = [(201, post("/Users", b)) for b in new]
    requests += [(409, post("/Users", user_body(userName=taken["userName"].upper())))] * 3
    requests += [
        (204, patch_group({"op": "add", "path": "members", "value": [{"value": m}]}))
        for m in members
    ]
    requests += [
        (400, patch_group({"op": "add", "path": "members", "value": [{"value": m}, {"value": x}]}))
        for m, x in zip(members, [str(uuid.uuid4()) for _ in members], strict=True)
    ]
    requests += [(400, patch_group({"op": "explode", "path": "members", "value": []}))] * 2
    unknown_member = [{"value": members[0]}, {"value": str(uuid.uuid4())}]
    requests += [(400, post("/Groups", group_body(members=unknown_member))) for _ in range(3)]
    responses = run_together(directory, [request for _, request in requests])
    assert [r.status_code for r in responses] == [
        200 if s == 204 and r.status_code == 200 else s
        for (s, _), r in zip(requests, responses, strict=True)
    ], [(r.status_code, r.text[:200]) for r in responses]

    created = {r.json()["id"] for r in responses if r.status_code == 201}
    listed = search(directory, "/Users", count=100)
    assert {u["id"] for u in listed["Resources"]} == created | {taken["id"], *members}
    assert member_ids(directory, gid) == set(members)
    assert ids(search(directory, "/Groups")) == [gid]

    events, _ = _feed_after(server, key, directory.id, cursor, len(created) + len(members))
    assert sorted((e["type"], e["data"].get("user", {}).get("id")) for e in events) == sorted(
        [("user.created", u) for u in created] + [("group.member_added", None)] * len(members)
    )
    assert {e["data"]["member"]["id"] for e in events if "member" in e["data"]} == set(members)
