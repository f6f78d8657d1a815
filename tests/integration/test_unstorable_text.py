"""Text no database can store as text: NUL (PostgreSQL text cannot hold it) and lone
surrogates (not Unicode; no UTF-8 encoding). Either, anywhere in a SCIM body, is a 400
``invalidValue`` naming the attribute, on both backends alike: once a 500 on PostgreSQL
(and for surrogates on SQLite too), while SQLite stored NUL. In a URL it names nothing: 404.
Real text that merely looks like it (Hangul, whose UTF-8 starts with 0xED like an encoded
surrogate; an escaped surrogate pair) is stored and read back exactly."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.integration.helpers import (
    ENTERPRISE,
    assert_scim_error,
    create_group,
    create_user,
    get_resource,
    group_body,
    patch_body,
    search,
    user_body,
)
from tests.live import Directory, LiveServer

NUL = "\u0000"
LONE = "\ud800"


def _send(directory: Directory, method: str, path: str, body: Any) -> httpx.Response:
    """``body`` as JSON with ``ensure_ascii`` (NUL and a lone surrogate as ``\\u`` escapes,
    as every JSON encoder writes them)."""
    return directory.client.request(method, directory.url(path), content=json.dumps(body))


def _refused(response: httpx.Response, where: str) -> str:
    error = assert_scim_error(response, 400, "invalidValue")
    detail: str = error["detail"]
    assert detail.startswith(f"{where}: "), detail
    return detail


@pytest.mark.parametrize(("bad", "says"), [(NUL, "NUL"), (LONE, "surrogate")], ids=["nul", "lone"])
@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"userName": "a{}b@contoso.com"}, "userName"),
        ({"displayName": "Ada{}"}, "displayName"),
        ({"name": {"givenName": "{}", "familyName": "L"}}, "name.givenName"),
        ({"emails": [{"value": "x@y.z", "type": "work{}"}]}, "emails[0].type"),
        ({ENTERPRISE: {"department": "R{}D"}}, f"{ENTERPRISE}.department"),
        ({"title{}": "x"}, "title{} (the name)"),
    ],
    ids=["userName", "displayName", "nested", "in-list", "extension", "key"],
)
def test_user_create_refuses_it_and_stores_nothing(
    directory: Directory, overrides: dict[str, Any], where: str, bad: str, says: str
) -> None:
    body = json.loads(json.dumps(user_body(**overrides)).replace("{}", json.dumps(bad)[1:-1]))
    # A bad name is shown as JSON escapes it (a lone surrogate has no UTF-8 to show).
    shown = where.replace("{}", json.dumps(bad)[1:-1] if "(the name)" in where else bad)
    detail = _refused(_send(directory, "POST", "/Users", body), shown)
    assert says in detail
    assert search(directory, "/Users")["totalResults"] == 0


def test_a_utf8_encoded_surrogate_is_refused_too(directory: Directory) -> None:
    """A body may carry a surrogate as raw UTF-8 bytes (0xED 0xA0 0x80) rather than a
    ``\\u`` escape: it is no more storable."""
    raw = json.dumps(user_body(displayName="X")).encode().replace(b'"X"', b'"\xed\xa0\x80"')
    response = directory.client.post(directory.url("/Users"), content=raw)
    assert response.status_code == 400, response.text
    assert search(directory, "/Users")["totalResults"] == 0


def test_replace_and_patch_refuse_it_and_change_nothing(directory: Directory) -> None:
    user = create_user(directory, displayName="Before")
    path = f"/Users/{user['id']}"
    replaced = user_body(userName=user["userName"], displayName=f"After{NUL}")
    _refused(_send(directory, "PUT", path, replaced), "displayName")
    for dialect in ("/Users/{}", "/Users/{}?aadOptscim062020"):
        url = dialect.format(user["id"])
        op = {"op": "Replace", "path": "displayName", "value": f"After{LONE}"}
        _refused(_send(directory, "PATCH", url, patch_body(op)), "Operations[0].value")
        pathless = {"op": "replace", "value": {"displayName": f"After{NUL}"}}
        _refused(
            _send(directory, "PATCH", url, patch_body(pathless)), "Operations[0].value.displayName"
        )
    after = get_resource(directory, path)
    assert after["displayName"] == "Before" and after["meta"] == user["meta"]


def test_groups_refuse_it_in_names_members_and_displays(directory: Directory) -> None:
    _refused(_send(directory, "POST", "/Groups", group_body(displayName=f"G{NUL}")), "displayName")
    user = create_user(directory)
    group = create_group(directory)
    path = f"/Groups/{group['id']}"
    for member, key in (
        ({"value": f"{user['id']}{NUL}"}, "value"),
        ({"value": user["id"], "display": LONE}, "display"),
    ):
        op = {"op": "add", "path": "members", "value": [member]}
        _refused(_send(directory, "PATCH", path, patch_body(op)), f"Operations[0].value[0].{key}")
    rename = {"op": "replace", "path": "displayName", "value": f"G{LONE}"}
    _refused(_send(directory, "PATCH", path, patch_body(rename)), "Operations[0].value")
    after = get_resource(directory, path)
    assert after.get("members", []) == [] and after["meta"] == group["meta"]
    assert search(directory, "/Groups")["totalResults"] == 1


def test_real_text_that_looks_like_it_is_kept_exactly(directory: Directory) -> None:
    """Hangul's UTF-8 starts with 0xED, as an encoded surrogate does; an emoji in JSON may
    come as an escaped surrogate pair. Both are text: stored and read back as sent."""
    hangul, emoji = "김민준 한국", "\U0001f600"
    raw = json.dumps(user_body(displayName=hangul, title=emoji), ensure_ascii=False).encode()
    assert b"\xed" in raw
    created = directory.client.post(directory.url("/Users"), content=raw)
    assert created.status_code == 201, created.text
    escaped = json.dumps(user_body(displayName=emoji))  # "\ud83d\ude00"
    assert "\\ud83d\\ude00" in escaped
    second = directory.client.post(directory.url("/Users"), content=escaped)
    assert second.status_code == 201, second.text
    first = get_resource(directory, f"/Users/{created.json()['id']}")
    assert (first["displayName"], first["title"]) == (hangul, emoji)
    assert get_resource(directory, f"/Users/{second.json()['id']}")["displayName"] == emoji
    found = search(directory, "/Users", filter=f'displayName eq "{hangul}"')
    assert [r["id"] for r in found["Resources"]] == [created.json()["id"]]


@pytest.mark.parametrize("kind", ["Users", "Groups"])
def test_an_id_with_nul_in_the_url_is_404_after_the_token(directory: Directory, kind: str) -> None:
    url = directory.url(f"/{kind}/a%00b")
    body = user_body() if kind == "Users" else group_body()
    op = patch_body({"op": "replace", "path": "displayName", "value": "x"})
    for method, content in (("GET", None), ("PUT", body), ("PATCH", op), ("DELETE", None)):
        data = json.dumps(content) if content is not None else None
        response = directory.client.request(method, url, content=data)
        error = assert_scim_error(response, 404)
        assert "with id 'a\\x00b' in this directory" in error["detail"], error
        wrong = directory.client.request(
            method, url, content=data, headers={"Authorization": "Bearer wrong"}
        )
        assert_scim_error(wrong, 401)


def test_a_directory_id_with_nul_is_404(server: LiveServer, directory: Directory) -> None:
    for path in ("/Users", "/Groups/x", "/ServiceProviderConfig"):
        response = directory.client.get(f"{server.base_url}/scim/v2/a%00b{path}")
        assert "check the Tenant URL" in assert_scim_error(response, 404)["detail"]


def test_a_filter_value_with_nul_is_invalid_filter(directory: Directory) -> None:
    for value in ("a%00b", "a%5Cu0000b"):
        url = directory.url(f"/Users?filter=userName%20eq%20%22{value}%22")
        assert_scim_error(directory.client.get(url), 400, "invalidFilter")
