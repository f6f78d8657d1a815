"""HTTP plumbing shared by the SCIM endpoints: JSON in, ``application/scim+json`` out."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from scimgate.scim.errors import ScimError, invalid_syntax
from scimgate.store.jsoncodec import dumps_bytes, loads

SCIM_MEDIA_TYPE = "application/scim+json"


class ScimResponse(Response):
    media_type = SCIM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return dumps_bytes(content)


def scim_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> ScimResponse:
    return ScimResponse(content, status_code=status_code, headers=headers)


def error_response(error: ScimError) -> ScimResponse:
    return scim_response(error.body(), error.status, error.headers)


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body as JSON, refusing oversized bodies before reading them whole."""
    return parse_json(await read_body(request, max_bytes))


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw request body, refusing oversized bodies before reading them whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, or a 400 saying what is wrong with it."""
    if not raw.strip():
        raise invalid_syntax("the request body is empty; a JSON object was expected")
    try:
        return loads(raw, parse_constant=_not_json)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid_syntax(f"the request body is not valid JSON: {exc}") from exc
    except ValueError as exc:
        raise invalid_syntax(f"the request body is not valid JSON: {exc}") from exc


def _not_json(constant: str) -> Any:
    # Python's json reads NaN and Infinity; RFC 8259 JSON has no such numbers.
    raise ValueError(f"{constant} is not a JSON number")


def _too_large(max_bytes: int) -> ScimError:
    return ScimError(413, f"the request body is larger than the {max_bytes}-byte limit")


def check_if_match(request: Request, etag: str) -> None:
    """Honour ``If-Match`` (RFC 7644 §3.14): a stale version gets 412."""
    header = request.headers.get("if-match")
    if header is None:
        return
    candidates = {c.strip() for c in header.split(",")}
    if "*" in candidates or etag in candidates or etag.removeprefix("W/") in candidates:
        return
    raise ScimError(
        412,
        f"the resource has changed (current version {etag}); fetch it again and retry",
        headers={"ETag": etag},
    )


def not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    candidates = {c.strip() for c in header.split(",")}
    return "*" in candidates or etag in candidates or etag.removeprefix("W/") in candidates
