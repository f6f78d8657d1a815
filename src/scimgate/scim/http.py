"""HTTP plumbing shared by the SCIM endpoints: JSON in, ``application/scim+json`` out."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from scimgate.scim.errors import ScimError, invalid_syntax, invalid_value
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
        body = loads(raw, parse_constant=_not_json)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid_syntax(f"the request body is not valid JSON: {exc}") from exc
    except ValueError as exc:
        raise invalid_syntax(f"the request body is not valid JSON: {exc}") from exc
    if any(marker in raw for marker in _UNSTORABLE_MARKERS):
        _refuse_unstorable_text(body, "")
    return body


_UNSTORABLE_MARKERS = (b"\\u0000", b"\\ud", b"\\uD", b"\xed", b"\x00")
"""Where a body may hold NUL or a lone surrogate: UTF-8 JSON writes them only as ``\\u``
escapes, or as UTF-8-encoded surrogates (lead byte ``0xED``, which json.loads reads with
``surrogatepass``); a UTF-16 or UTF-32 body has zero bytes. Hangul text (also ``0xED``)
and escaped surrogate pairs are looked at and pass."""


def _refuse_unstorable_text(value: Any, where: str) -> None:
    """A 400 naming the first string (key or value) no database can store as text: one
    with NUL (PostgreSQL text cannot hold it) or a lone surrogate (not Unicode text)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid_value(f"{where or 'the body'}: text must not contain NUL (\\u0000)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = f"\\u{ord(value[exc.start]):04x}"
            raise invalid_value(
                f"{where or 'the body'}: a lone surrogate ({bad}) is not Unicode text"
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            # The detail names a bad key as JSON escapes it: it cannot hold it as it is.
            shown = f"{where}.{json.dumps(key)[1:-1]}" if where else json.dumps(key)[1:-1]
            _refuse_unstorable_text(key, f"{shown} (the name)")
            _refuse_unstorable_text(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_unstorable_text(item, f"{where}[{index}]")


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
