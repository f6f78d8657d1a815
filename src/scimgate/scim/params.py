"""List and search parameters (RFC 7644 §3.4.2, §3.4.3), from a query string or a
``POST …/.search`` body, validated into one :class:`ListParams`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scimgate.scim.errors import ScimError, invalid_syntax
from scimgate.scim.render import AttrPath, parse_attribute_list

SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@dataclass(frozen=True)
class ListParams:
    filter: str | None
    sort_by: str | None
    descending: bool
    start_index: int
    count: int
    attributes: list[AttrPath] | None
    excluded: list[AttrPath] | None


def _invalid(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def _int(name: str, raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise _invalid(f"{name} must be an integer, got {raw!r}")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise _invalid(f"{name} must be an integer, got {raw!r}") from None


def _names(name: str, raw: Any) -> list[str] | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        return [part for part in raw.split(",") if part.strip()]
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return [part for item in raw for part in item.split(",") if part.strip()]
    raise _invalid(f"{name} must be a comma-separated string or a list of strings")


def _text(name: str, raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _invalid(f"{name} must be a string")
    return raw


def list_params(
    source: Mapping[str, Any], resource_type: str, *, default_count: int, max_count: int
) -> ListParams:
    """Validate parameters given as query parameters or search-body keys.

    Per RFC 7644 §3.4.2.4 a ``startIndex`` below 1 means 1, a negative ``count`` means 0,
    and a ``count`` above the server maximum is lowered to it.
    """
    lowered = {k.lower(): v for k, v in source.items()}
    start = _int("startIndex", lowered.get("startindex"))
    count = _int("count", lowered.get("count"))
    order = _text("sortOrder", lowered.get("sortorder"))
    if order is not None and order.lower() not in {"ascending", "descending"}:
        raise _invalid(f"sortOrder must be 'ascending' or 'descending', got {order!r}")
    attributes = _names("attributes", lowered.get("attributes"))
    excluded = _names("excludedAttributes", lowered.get("excludedattributes"))
    if attributes and excluded:
        raise _invalid("attributes and excludedAttributes cannot be used together")
    return ListParams(
        filter=_text("filter", lowered.get("filter")),
        sort_by=_text("sortBy", lowered.get("sortby")),
        descending=order is not None and order.lower() == "descending",
        start_index=max(1, start if start is not None else 1),
        count=min(max_count, max(0, count if count is not None else default_count)),
        attributes=parse_attribute_list(attributes, resource_type) if attributes else None,
        excluded=parse_attribute_list(excluded, resource_type) if excluded else None,
    )


def search_body(body: Any) -> dict[str, Any]:
    """The keys of a SearchRequest body (its ``schemas`` checked leniently)."""
    if not isinstance(body, dict):
        raise invalid_syntax("a SearchRequest must be a JSON object")
    schemas = body.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or SEARCH_SCHEMA not in schemas):
        raise invalid_syntax(f"a SearchRequest's schemas must contain {SEARCH_SCHEMA!r}")
    return {k: v for k, v in body.items() if k != "schemas"}


def selection_params(source: Mapping[str, Any], resource_type: str) -> ListParams:
    """Only ``attributes``/``excludedAttributes``, for single-resource reads and writes."""
    return list_params(source, resource_type, default_count=0, max_count=0)
