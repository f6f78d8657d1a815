"""The SCIM app's own dispatch: which handler a path reaches, and what a client gets when a
handler fails unexpectedly (a SCIM error body, the traceback in the operator's log)."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scimgate.scim.app import _ID, ScimApp


async def _echo(request: Request) -> Response:
    return JSONResponse({"method": request.method, **request.path_params})


async def _boom(request: Request) -> Response:
    raise RuntimeError("the database fell over")


def _client() -> httpx.AsyncClient:
    app = ScimApp(
        {
            ("Users",): {"GET": _echo, "POST": _echo},
            ("Users", ".search"): {"POST": _echo},
            ("Users", _ID): {"GET": _echo, "PATCH": _echo},
            ("Schemas", _ID): {"GET": _echo},
            ("Groups",): {"GET": _boom},
        }
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/d1/Users", {"directory_id": "d1"}),
        ("POST", "/d1/Users/.search", {"directory_id": "d1"}),
        ("PATCH", "/d1/Users/u%201", {"directory_id": "d1", "id": "u 1"}),
        ("GET", "/d1/Schemas/urn:x:a/b", {"directory_id": "d1", "id": "urn:x:a/b"}),
    ],
)
async def test_paths_reach_their_handler(method: str, path: str, expected: dict[str, str]) -> None:
    async with _client() as client:
        response = await client.request(method, path)
    assert response.status_code == 200
    assert response.json() == {"method": method, **expected}


@pytest.mark.parametrize(
    "path", ["/d1", "/d1/", "/d1/Nope", "/d1/Users/a/b", "/", "//Users", "/d1/Users/"]
)
async def test_unknown_paths_are_scim_404s(path: str) -> None:
    async with _client() as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/scim+json")
    assert "check the Tenant URL" in response.json()["detail"]


async def test_wrong_method_is_405_with_allow() -> None:
    async with _client() as client:
        response = await client.delete("/d1/Users")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert response.json()["status"] == "405"


async def test_unexpected_error_is_a_scim_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="scimgate.scim"):
        async with _client() as client:
            response = await client.get("/d1/Groups")
    assert response.status_code == 500
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert "the database fell over" not in response.text, "internals must not leak"
    [record] = [r for r in caplog.records if r.name == "scimgate.scim"]
    assert record.exc_info is not None and "the database fell over" in str(record.exc_info[1])
