"""Every management route refuses a request without a live API key, whatever else is
wrong with the request; keys are stored hashed, shown once, and revocable."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from scimgate.api import API_MOUNT
from scimgate.directory.api_keys import KEY_PREFIX, ApiKeys, hash_key
from scimgate.directory.tenancy import utcnow
from scimgate.store.tables import api_keys as api_keys_table
from tests.api.stack import Stack

METHODS = ("get", "post", "put", "patch", "delete")


async def _operations(stack: Stack) -> list[tuple[str, str]]:
    """Every (method, concrete path) in the OpenAPI document, ids made up."""
    doc = (await stack.client.get(f"{API_MOUNT}/openapi.json")).json()
    found = []
    for template, item in doc["paths"].items():
        path = re.sub(r"\{[^}]+\}", lambda _m: str(uuid.uuid4()), template)
        found.extend((m.upper(), path) for m in METHODS if m in item)
    return found


def _assert_unauthorized(response: Any, where: str) -> None:
    assert response.status_code == 401, f"{where}: {response.status_code} {response.text}"
    assert response.headers["www-authenticate"] == "Bearer", where
    error = response.json()["error"]
    assert error["code"] == "unauthorized", where
    assert error["message"], where


async def test_the_openapi_document_lists_every_route_and_the_scheme(stack: Stack) -> None:
    doc = (await stack.client.get(f"{API_MOUNT}/openapi.json")).json()
    assert doc["servers"] == [{"url": API_MOUNT}]
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    operations = await _operations(stack)
    assert len(operations) >= 33, operations
    for template, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                assert item[method]["security"] == [{"ApiKey": []}], (method, template)
                assert "401" in item[method]["responses"], (method, template)
                assert "503" in item[method]["responses"], (method, template)
    docs = await stack.client.get(f"{API_MOUNT}/docs")
    assert docs.status_code == 200
    assert f"{API_MOUNT}/openapi.json" in docs.text


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Bearer {KEY_PREFIX}{'x' * 43}",
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Token whatever",
    ],
    ids=["none", "empty", "bare", "blank", "unknown", "garbage", "basic", "other-scheme"],
)
async def test_every_route_refuses_a_missing_or_bad_key(
    stack: Stack, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in [*await _operations(stack), ("GET", "/no-such-route")]:
        # A body that is also invalid: auth is decided first.
        response = await stack.client.request(
            method, f"{API_MOUNT}{path}", headers=headers, content=b"{not json"
        )
        _assert_unauthorized(response, f"{method} {path}")


async def test_a_revoked_key_stops_working_on_every_route(stack: Stack) -> None:
    key, secret = await stack.api_keys.create("soon revoked")
    headers = {"Authorization": f"Bearer {secret}"}
    assert (
        await stack.client.get(f"{API_MOUNT}/organizations", headers=headers)
    ).status_code == 200
    revoked = await stack.api_keys.revoke(key.id)
    assert revoked.revoked_at is not None
    for method, path in await _operations(stack):
        response = await stack.client.request(method, f"{API_MOUNT}{path}", headers=headers)
        _assert_unauthorized(response, f"{method} {path}")
    # Revoking again is harmless; the other key still works.
    assert (await stack.api_keys.revoke(key.id)).revoked_at == revoked.revoked_at
    assert (await stack.api("GET", "/organizations")).status_code == 200


async def test_a_directory_scim_token_is_not_an_api_key(stack: Stack) -> None:
    directory = await stack.directory()
    response = await stack.client.get(
        f"{API_MOUNT}/directories/{directory.id}",
        headers={"Authorization": f"Bearer {directory.token}"},
    )
    _assert_unauthorized(response, "SCIM token on the management API")
    # ...and an API key opens no SCIM directory.
    scim = await stack.client.get(f"/scim/v2/{directory.id}/Users", headers=stack.auth)
    assert scim.status_code == 401


async def test_keys_are_stored_hashed_and_shown_once(stack: Stack) -> None:
    key, secret = await stack.api_keys.create("  backend  ")
    assert secret.startswith(KEY_PREFIX) and len(secret) == len(KEY_PREFIX) + 43
    assert key.name == "backend"
    assert key.key_hint.endswith(secret[-4:]) and secret not in key.key_hint
    db = stack.app.state.db
    async with db.read() as conn:
        row = (
            await conn.execute(select(api_keys_table).where(api_keys_table.c.id == key.id))
        ).one()
    assert row.key_hash == hash_key(secret)
    assert secret not in {str(v) for v in row}
    listed = {k.id: k for k in await stack.api_keys.list()}
    assert key.id in listed
    assert "key" not in listed[key.id].to_json() and "key_hash" not in listed[key.id].to_json()
    with pytest.raises(Exception, match="must not be empty"):
        await stack.api_keys.create("  ")


async def test_last_used_is_written_at_most_once_a_minute(stack: Stack) -> None:
    keys: ApiKeys = stack.api_keys
    key, secret = await keys.create("usage")
    assert key.last_used_at is None
    first = await keys.authenticate(secret)
    assert first is not None
    used = (await keys.get(key.id)).last_used_at
    assert used is not None
    await keys.authenticate(secret)
    assert (await keys.get(key.id)).last_used_at == used  # no write within the minute
    async with stack.app.state.db.write() as conn:
        await conn.execute(
            update(api_keys_table)
            .where(api_keys_table.c.id == key.id)
            .values(last_used_at=utcnow() - timedelta(minutes=5))
        )
    await keys.authenticate(secret)
    assert (await keys.get(key.id)).last_used_at > used - timedelta(seconds=1)
    assert await keys.authenticate(secret + "x") is None
    assert await keys.authenticate(secret[:-1]) is None


async def test_odd_paths_still_get_json_errors(stack: Stack) -> None:
    """A path with an encoded newline or NUL stays inside the API: 401 without a key,
    JSON 404/400 with one (never the outer app's plain-text 404, never a driver error)."""
    for path in ("/directories/a%0Ab", "/users/%0A", "/groups/x%00y", "/organizations/%C2%A5%1A"):
        url = f"{API_MOUNT}{path}"
        _assert_unauthorized(await stack.client.get(url), path)
        response = await stack.client.get(url, headers=stack.auth)
        assert response.status_code in (400, 404), (path, response.text)
        assert response.headers["content-type"] == "application/json", path
        assert response.json()["error"]["code"] in {"not_found", "invalid_request"}
    nul = await stack.client.get(
        f"{API_MOUNT}/organizations", params={"external_id": "a\x00b"}, headers=stack.auth
    )
    assert nul.status_code == 400
    body = await stack.client.post(
        f"{API_MOUNT}/organizations", json={"name": "a\x00b"}, headers=stack.auth
    )
    assert body.status_code == 422
