"""SCIM error responses (RFC 7644 §3.12).

Every failure a SCIM client can see is raised as :class:`ScimError` and turned into an
error body by the app's exception handler, so an IdP admin reads the same shape
(``status`` as a string, ``scimType`` where one fits, an actionable ``detail``) whatever
went wrong.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """A request the server refuses, with the HTTP status and SCIM ``scimType`` to send."""

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The RFC 7644 §3.12 error document."""
        doc: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type:
            doc["scimType"] = self.scim_type
        doc["detail"] = self.detail
        return doc


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, "noTarget")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, "uniqueness")


def not_found(detail: str) -> ScimError:
    return ScimError(404, detail)
