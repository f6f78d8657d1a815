"""One JSON error shape for every failure of the management API:
``{"error": {"code": "...", "message": "...", "details": [...]}}``.

Host-app backends branch on ``code`` (stable, snake_case) and log ``message``; a 500
never carries a traceback (that goes to the server log)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from scimgate.directory.reads import InvalidCursor
from scimgate.errors import Conflict, DomainError, NotFound
from scimgate.events.feed import InvalidCursor as InvalidFeedCursor
from scimgate.store.transient import DatabaseUnavailable

log = logging.getLogger("scimgate.api")

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}


class ApiError(Exception):
    """An error response decided by the API layer itself (auth, unsupported filter)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


async def _domain_error(_request: Request, exc: Exception) -> Response:
    if isinstance(exc, NotFound):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, Conflict):
        return error_response(409, "conflict", str(exc))
    if isinstance(exc, InvalidCursor | InvalidFeedCursor):
        return error_response(400, "invalid_cursor", str(exc))
    return error_response(400, "invalid_request", str(exc))


async def _integrity_error(_request: Request, exc: Exception) -> Response:
    # Services check what they can; a constraint that still fires (a concurrent delete
    # of a parent, say) is the client's conflict, not a server fault.
    log.info("constraint violation: %s", exc)
    return error_response(409, "conflict", "the request conflicts with the current data")


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "location": [str(part) for part in err.get("loc", ())],
            "message": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    first = details[0] if details else None
    message = f"{'.'.join(first['location'])}: {first['message']}" if first else "invalid request"
    return error_response(422, "validation_error", message, details=_json_safe(details))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    if exc.status_code == 404:
        message = f"no management API endpoint at {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not supported on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


def unavailable_response(exc: DatabaseUnavailable) -> JSONResponse:
    """503 with ``Retry-After``: the host app's backend retries, as an IdP does."""
    log.warning("%s", exc)
    return error_response(
        503, "database_unavailable", exc.public, headers={"Retry-After": str(exc.retry_after_s)}
    )


async def _database_unavailable(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DatabaseUnavailable)
    return unavailable_response(exc)


async def _unexpected(_request: Request, _exc: Exception) -> Response:
    return error_response(500, "internal_error", "internal server error; see the server log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(InvalidFeedCursor, _domain_error)  # a ValueError, not a domain one
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
