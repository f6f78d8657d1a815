"""Tenant isolation over real HTTP: a directory's token opens that directory and nothing
else; disabled directories and rotated tokens stop working at once; filters never reach
across directories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.helpers import (
    ENTERPRISE,
    SCIM_JSON,
    SEARCH_SCHEMA,
    USER_SCHEMA,
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
)
from tests.live import Directory, LiveServer


@dataclass
class Victim:
    directory: Directory
    user: dict[str, Any]
    group: dict[str, Any]


@pytest.fixture()
def victim(server: LiveServer) -> Victim:
    """A directory with a user in a group: what another tenant must not reach."""
    directory = server.new_directory()
    user = create_user(directory)
    group = create_group(directory)
    response = directory.client.patch(
        directory.url(f"/Groups/{group['id']}"),
        json=patch_body({"op": "add", "path": "members", "value": [{"value": user["id"]}]}),
    )
    assert response.status_code in (200, 204), response.text
    return Victim(
        directory,
        get_resource(directory, f"/Users/{user['id']}"),
        get_resource(directory, f"/Groups/{group['id']}"),
    )


def _remove_one(member_id: str) -> dict[str, Any]:
    return {"op": "remove", "path": f'members[value eq "{member_id}"]'}


def _add_one(member_id: str) -> dict[str, Any]:
    return {"op": "add", "path": "members", "value": [{"value": member_id}]}


def _requests(v: Victim) -> list[tuple[str, str, Any]]:
    """(method, path, JSON body) for every endpoint of the victim's directory."""
    uid, gid = v.user["id"], v.group["id"]
    patch = patch_body({"op": "replace", "path": "displayName", "value": "pwned"})
    return [
        ("GET", "/Users", None),
        ("GET", f'/Users?filter=userName eq "{v.user["userName"]}"', None),
        ("POST", "/Users", user_body()),
        ("POST", "/Users/.search", {"schemas": [SEARCH_SCHEMA]}),
        ("GET", f"/Users/{uid}", None),
        ("PUT", f"/Users/{uid}", user_body(userName=v.user["userName"], displayName="pwned")),
        ("PATCH", f"/Users/{uid}", patch),
        ("DELETE", f"/Users/{uid}", None),
        ("GET", "/Groups", None),
        ("POST", "/Groups", group_body()),
        ("POST", "/Groups/.search", {"schemas": [SEARCH_SCHEMA]}),
        ("GET", f"/Groups/{gid}", None),
        ("PUT", f"/Groups/{gid}", group_body(displayName="pwned", members=[])),
        ("PATCH", f"/Groups/{gid}", patch),
        ("PATCH", f"/Groups/{gid}", patch_body({"op": "remove", "path": "members"})),
        ("PATCH", f"/Groups/{gid}", patch_body(_remove_one(uid))),
        ("PATCH", f"/Groups/{gid}", patch_body(_add_one(uid))),
        ("DELETE", f"/Groups/{gid}", None),
        ("GET", "/ServiceProviderConfig", None),
        ("GET", "/Schemas", None),
        ("GET", f"/Schemas/{USER_SCHEMA}", None),
        ("GET", "/ResourceTypes", None),
        ("GET", "/ResourceTypes/User", None),
    ]


def _assert_unauthorized(response: httpx.Response) -> None:
    assert_scim_error(response, 401)
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.split(" ")[0].lower() == "bearer", challenge


def _assert_untouched(v: Victim) -> None:
    assert get_resource(v.directory, f"/Users/{v.user['id']}") == v.user
    assert get_resource(v.directory, f"/Groups/{v.group['id']}") == v.group
    assert search(v.directory, "/Users")["totalResults"] == 1
    assert search(v.directory, "/Groups")["totalResults"] == 1


def _send(token: str | None, method: str, url: str, body: Any) -> httpx.Response:
    headers = {"Content-Type": SCIM_JSON}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    kwargs: dict[str, Any] = {"headers": headers, "timeout": 30}
    if body is not None:
        kwargs["json"] = body
    return httpx.request(method, url, **kwargs)


def test_another_directorys_token_is_401_everywhere(directory: Directory, victim: Victim) -> None:
    for method, path, body in _requests(victim):
        response = _send(directory.token, method, victim.directory.url(path), body)
        try:
            _assert_unauthorized(response)
        except AssertionError as exc:
            raise AssertionError(f"{method} {path}: {exc}") from exc
    _assert_untouched(victim)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token", "Basic dXNlcjpwYXNz", "token"],
    ids=["none", "empty", "scheme-only", "wrong", "basic", "no-scheme"],
)
def test_missing_or_wrong_token_is_401(victim: Victim, authorization: str | None) -> None:
    for method, path, body in _requests(victim):
        headers = {"Content-Type": SCIM_JSON}
        if authorization is not None:
            headers["Authorization"] = authorization
        kwargs: dict[str, Any] = {"headers": headers, "timeout": 30}
        if body is not None:
            kwargs["json"] = body
        response = httpx.request(method, victim.directory.url(path), **kwargs)
        try:
            _assert_unauthorized(response)
        except AssertionError as exc:
            raise AssertionError(f"{method} {path}: {exc}") from exc
    _assert_untouched(victim)


def test_a_token_with_a_changed_character_is_401(victim: Victim) -> None:
    token = victim.directory.token
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    _assert_unauthorized(_send(altered, "GET", victim.directory.url("/Users"), None))
    _assert_unauthorized(_send(token + "x", "GET", victim.directory.url("/Users"), None))
    assert _send(token, "GET", victim.directory.url("/Users"), None).status_code == 200


def test_a_directorys_own_url_cannot_address_another_directorys_ids(
    directory: Directory, victim: Victim
) -> None:
    uid, gid = victim.user["id"], victim.group["id"]
    assert_scim_error(directory.client.get(directory.url(f"/Users/{uid}")), 404)
    assert_scim_error(directory.client.get(directory.url(f"/Groups/{gid}")), 404)
    assert_scim_error(directory.client.delete(directory.url(f"/Users/{uid}")), 404)
    assert_scim_error(directory.client.delete(directory.url(f"/Groups/{gid}")), 404)
    assert_scim_error(
        directory.client.patch(
            directory.url(f"/Users/{uid}"),
            json=patch_body({"op": "replace", "path": "active", "value": False}),
        ),
        404,
    )
    assert_scim_error(
        directory.client.put(directory.url(f"/Groups/{gid}"), json=group_body(displayName="pwned")),
        404,
    )
    # A member change is sent with the group's row lock, before the lock says the group
    # is not this directory's: it must touch nothing.
    for operation in (_remove_one(uid), _add_one(uid)):
        response = directory.client.patch(
            directory.url(f"/Groups/{gid}"), json=patch_body(operation)
        )
        assert_scim_error(response, 404)
    _assert_untouched(victim)


def test_disabled_directory_is_401_until_enabled(server: LiveServer, victim: Victim) -> None:
    d = victim.directory
    info = server.cli("directory", "disable", d.id)
    assert info["enabled"] is False
    for method, path, body in _requests(victim):
        response = d.client.request(method, d.url(path), json=body)
        try:
            _assert_unauthorized(response)
        except AssertionError as exc:
            raise AssertionError(f"{method} {path}: {exc}") from exc

    info = server.cli("directory", "enable", d.id)
    assert info["enabled"] is True
    _assert_untouched(victim)
    assert d.client.get(d.url("/ServiceProviderConfig")).status_code == 200


def test_rotated_token_replaces_the_old_one_at_once(server: LiveServer, victim: Victim) -> None:
    d = victim.directory
    old = d.token
    info = server.cli("directory", "rotate-token", d.id)
    new = info["token"]
    assert new and new != old
    _assert_unauthorized(_send(old, "GET", d.url("/Users"), None))
    _assert_unauthorized(_send(old, "POST", d.url("/Users"), user_body()))
    response = _send(new, "GET", d.url(f"/Users/{victim.user['id']}"), None)
    assert response.status_code == 200, response.text
    assert response.json() == victim.user
    response = _send(new, "POST", d.url("/Users"), user_body())
    assert response.status_code == 201, response.text
    # rotating again retires the second token too
    newer = server.cli("directory", "rotate-token", d.id)["token"]
    _assert_unauthorized(_send(new, "GET", d.url("/Users"), None))
    assert _send(newer, "GET", d.url("/Users"), None).status_code == 200


def test_filters_never_return_another_directorys_resources(
    server: LiveServer, directory: Directory
) -> None:
    """Two tenants provision the same person (same userName, externalId, mail) and a group
    of the same name: each directory sees only its own."""
    other = server.new_directory()
    shared = user_body()
    mine_response = directory.client.post(directory.url("/Users"), json=shared)
    theirs_response = other.client.post(other.url("/Users"), json=shared)
    assert mine_response.status_code == theirs_response.status_code == 201
    mine, theirs = mine_response.json()["id"], theirs_response.json()["id"]
    assert mine != theirs
    extra_theirs = create_user(other)["id"]
    group_name = "Shared Name"
    my_group = create_group(directory, displayName=group_name)["id"]
    their_group = create_group(other, displayName=group_name)["id"]
    response = other.client.patch(
        other.url(f"/Groups/{their_group}"),
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": theirs}, {"value": extra_theirs}]}
        ),
    )
    assert response.status_code in (200, 204), response.text

    mail = shared["emails"][0]["value"]
    for expression in (
        f'userName eq "{shared["userName"]}"',
        f'externalId eq "{shared["externalId"]}"',
        f'emails[type eq "work"].value eq "{mail}"',
        f'{ENTERPRISE}:employeeNumber eq "{shared[ENTERPRISE]["employeeNumber"]}"',
        f'userName eq "{shared["userName"]}" or id eq "{extra_theirs}"',
        f'id eq "{theirs}" or id eq "{mine}"',
        "userName pr",
        "active eq true",
    ):
        assert ids(search(directory, "/Users", filter=expression)) == [mine], expression
        found = search(other, "/Users", filter=expression)
        assert mine not in ids(found), expression
    assert search(directory, "/Users", filter=f'id eq "{theirs}"')["totalResults"] == 0
    assert set(ids(search(directory, "/Users"))) == {mine}
    assert set(ids(search(other, "/Users"))) == {theirs, extra_theirs}

    assert ids(search(directory, "/Groups", filter=f'displayName eq "{group_name}"')) == [my_group]
    assert search(directory, "/Groups", filter=f'members[value eq "{theirs}"]')["totalResults"] == 0
    assert search(directory, "/Groups", filter=f'id eq "{their_group}"')["totalResults"] == 0
    response = directory.client.post(
        directory.url("/Users/.search"),
        json={"schemas": [SEARCH_SCHEMA], "filter": f'userName eq "{shared["userName"]}"'},
    )
    assert response.status_code == 200
    assert ids(response.json()) == [mine]
    assert member_ids(other, their_group) == {theirs, extra_theirs}
    assert member_ids(directory, my_group) == set()


@pytest.mark.parametrize("content", [b"{not json", b"", b'{"schemas": 5}'])
def test_a_bad_body_without_a_token_is_still_401(victim: Victim, content: bytes) -> None:
    """Writes authenticate inside their transaction, after the body is read: a client
    without a valid token learns nothing from its body being checked."""
    for method, path in [
        ("POST", "/Users"),
        ("PUT", f"/Users/{victim.user['id']}"),
        ("PATCH", f"/Users/{victim.user['id']}"),
        ("POST", "/Groups"),
        ("PATCH", f"/Groups/{victim.group['id']}"),
    ]:
        response = httpx.request(
            method,
            victim.directory.url(path),
            headers={"Content-Type": SCIM_JSON, "Authorization": "Bearer wrong"},
            content=content,
            timeout=30,
        )
        try:
            _assert_unauthorized(response)
        except AssertionError as exc:
            raise AssertionError(f"{method} {path}: {exc}") from exc
    _assert_untouched(victim)


def _bad_requests(v: Victim) -> list[tuple[str, str, bytes | None]]:
    """Requests that are wrong in a way a valid token would hear about (400 or 404)."""
    gid = v.group["id"]
    return [
        ("GET", "/Users?filter=userName%20zz%20%22x%22", None),
        ("GET", "/Users?count=many", None),
        ("GET", "/Groups?filter=nosuch%20eq%20%22x%22&excludedAttributes=members", None),
        ("GET", "/Users?sortBy=no%20such", None),
        ("GET", "/Users?startIndex=first", None),
        ("GET", "/Users/no-such-user", None),
        ("GET", "/Groups/no-such-group", None),
        ("POST", "/Users/.search", b"{not json"),
        ("POST", "/Groups/.search", b'{"schemas": ["wrong"]}'),
        ("POST", "/.search", b'{"schemas": 5}'),
        ("PATCH", "/Users/no-such-user", b'{"schemas": 5}'),
        ("PATCH", f"/Groups/{gid}?excludedAttributes=no%20such", b"{not json"),
        ("DELETE", "/Groups/no-such-group", None),
    ]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong"], ids=["none", "wrong"])
def test_a_bad_request_without_a_valid_token_is_401(
    victim: Victim, authorization: str | None
) -> None:
    """The token is checked before anything else is (on PostgreSQL it travels with the
    request's first query): a caller without it learns nothing from the other errors."""
    headers = {"Content-Type": SCIM_JSON}
    if authorization is not None:
        headers["Authorization"] = authorization
    for method, path, content in _bad_requests(victim):
        response = httpx.request(
            method, victim.directory.url(path), headers=headers, content=content, timeout=30
        )
        try:
            _assert_unauthorized(response)
        except AssertionError as exc:
            raise AssertionError(f"{method} {path}: {exc}") from exc
        # the same request with the token gets the error it deserves
        good = victim.directory.client.request(method, victim.directory.url(path), content=content)
        assert good.status_code in (400, 404), (method, path, good.status_code, good.text)
    _assert_untouched(victim)


def test_an_unknown_directory_is_404_whatever_else_is_wrong(victim: Victim) -> None:
    base = victim.directory.scim_base.rsplit("/", 1)[0]  # .../scim/v2
    unknown = f"{base}/00000000-0000-4000-8000-000000000000"
    for method, path, content in _bad_requests(victim):
        response = httpx.request(
            method,
            unknown + path,
            headers={"Content-Type": SCIM_JSON, "Authorization": "Bearer wrong"},
            content=content,
            timeout=30,
        )
        detail = assert_scim_error(response, 404).get("detail", "")
        assert "Tenant URL" in detail, (method, path, detail)
