"""Request bodies → the canonical documents the store keeps.

A resource is stored as one plain JSON dict: its SCIM representation without what the
server owns (``id``, ``meta``, a user's ``groups``, a group's ``members``) and without
``password`` (write-only; scimgate stores no credentials). Reads can then serve stored JSON
without a model round trip. scim2-models does the type checking; this module adds what Entra
needs on top of it: tolerance of nulls and unknown schema URIs in ``schemas``, manager ids in
Entra's shapes, verbatim custom extensions, and errors an IdP admin can act on. Plain bodies,
most of what IdPs send, skip the model for the same document (see fast_payloads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import ValidationError
from scim2_models import Context, EnterpriseUser, Group, Resource, SCIMException, User
from scim2_models.resources.user import Email

from scimgate.directory.keys import fold
from scimgate.scim.errors import ScimError, invalid_syntax, invalid_value
from scimgate.scim.fast_payloads import plain_dump

__all__ = [
    "ENTERPRISE_SCHEMA",
    "GROUP_SCHEMA",
    "USER_SCHEMA",
    "MemberRef",
    "ScimGroup",
    "ScimUser",
    "parse_group",
    "parse_user",
    "user_name_key",
]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


class _Email(Email):
    # RFC 7643 §4.1.2 types emails.value as a plain string. scim2-models checks it as an
    # e-mail address, which rejects Entra's proxyAddresses mapping ("smtp:a@contoso.com").
    value: str | None = None


class ScimUser(User[EnterpriseUser]):
    """The user model scimgate validates with: ``User[EnterpriseUser]``, plain-string emails."""

    emails: list[_Email] | None = None  # type: ignore[assignment]


ScimGroup = Group
"""The group model scimgate validates with."""

M = TypeVar("M", bound=Resource[Any])


@dataclass(frozen=True)
class MemberRef:
    """One member named in a request: the member's id, and its type if the client said."""

    value: str
    type: Literal["User", "Group"] | None = None
    display: str | None = None
    """What the client calls the member; kept and echoed back (else the member's own name)."""


def user_name_key(user_name: str) -> str:
    """The key userName uniqueness and ``userName eq`` compare on (see directory.keys)."""
    return fold(user_name)


def parse_user(body: Any) -> dict[str, Any]:
    """Validate a POST or PUT /Users body and return its canonical document."""
    return _parse_user(body, fast=True)


def _parse_user_models(body: Any) -> dict[str, Any]:
    """:func:`parse_user` all through scim2-models: what its fast path is tested against."""
    return _parse_user(body, fast=False)


def _parse_user(body: Any, *, fast: bool) -> dict[str, Any]:
    split = split_document(body, ScimUser, ignored=("id", "meta", "groups", "password"))
    _require_string(split.core, "userName")
    enterprise = find_key(split.core, ENTERPRISE_SCHEMA)
    manager = None
    if enterprise is not None and isinstance(split.core[enterprise], dict):
        # manager.$ref is required by scim2-models but Entra never sends it: it is checked
        # here, kept as {"value": id}, and the response layer derives $ref from the id.
        ext = dict(split.core[enterprise])
        manager_key = find_key(ext, "manager")
        if manager_key is not None:
            manager = manager_value(ext.pop(manager_key), f"{ENTERPRISE_SCHEMA}:manager")
        split.core[enterprise] = ext
    doc = _canonical(ScimUser, split, fast=fast)
    if manager is not None:
        doc.setdefault(ENTERPRISE_SCHEMA, {})["manager"] = manager
        if ENTERPRISE_SCHEMA not in doc["schemas"]:
            doc["schemas"].insert(1, ENTERPRISE_SCHEMA)
    return doc


def parse_group(body: Any) -> tuple[dict[str, Any], list[MemberRef] | None]:
    """Validate a POST or PUT /Groups body; members are returned apart, for the store."""
    return _parse_group(body, fast=True)


def _parse_group_models(body: Any) -> tuple[dict[str, Any], list[MemberRef] | None]:
    """:func:`parse_group` all through scim2-models: what its fast path is tested against."""
    return _parse_group(body, fast=False)


def _parse_group(body: Any, *, fast: bool) -> tuple[dict[str, Any], list[MemberRef] | None]:
    split = split_document(body, ScimGroup, ignored=("id", "meta"))
    _require_string(split.core, "displayName")
    members_key = find_key(split.core, "members")
    members = None
    if members_key is not None:
        members = member_refs(split.core.pop(members_key), "members")
    return _canonical(ScimGroup, split, fast=fast), members


_TYPES: dict[str, Literal["User", "Group"]] = {"user": "User", "group": "Group"}


def member_refs(value: Any, where: str, *, allow_bare: bool = False) -> list[MemberRef]:
    """Read a list of members, each ``{"value": id, "type"?: ...}`` (or a bare id if allowed).

    Duplicates are dropped: a member is in a group once.
    """
    if not isinstance(value, list):
        raise invalid_value(f'{where} must be a list of members like [{{"value": "<id>"}}]')
    refs: dict[str, MemberRef] = {}
    for i, entry in enumerate(value):
        if allow_bare and isinstance(entry, str):
            entry = {"value": entry}
        if not isinstance(entry, dict):
            raise invalid_value(f'{where}[{i}] must be an object like {{"value": "<id>"}}')
        member_id, kind, display = member_fields(entry)
        if not isinstance(member_id, str) or not member_id.strip():
            raise invalid_value(f"{where}[{i}].value must be the member's id (a non-empty string)")
        if kind is not None and (not isinstance(kind, str) or kind.casefold() not in _TYPES):
            raise invalid_value(f"{where}[{i}].type must be 'User' or 'Group', got {kind!r}")
        if display is not None and not isinstance(display, str):
            raise invalid_value(f"{where}[{i}].display must be a string, got {display!r}")
        refs.setdefault(
            member_id, MemberRef(member_id, _TYPES[kind.casefold()] if kind else None, display)
        )
    return list(refs.values())


_MEMBER_NAMES = frozenset({"value", "type", "display", "$ref"})
"""A member's attributes as the schema spells them, as every IdP sends them."""


def member_fields(entry: dict[str, Any]) -> tuple[Any, Any, Any]:
    """A member object's ``value``, ``type`` and ``display``, each in any case (None when
    absent). Where every key is spelled as the schema spells it (Entra sends exactly
    ``value`` and ``$ref``), they are read directly: looking each name up in every case
    cost a ten-member PATCH ~16 µs."""
    if entry.keys() <= _MEMBER_NAMES:
        return entry.get("value"), entry.get("type"), entry.get("display")
    return (
        entry.get(find_key(entry, "value") or "value"),
        entry.get(find_key(entry, "type") or "type"),
        entry.get(find_key(entry, "display") or "display"),
    )


def manager_value(value: Any, where: str) -> dict[str, str] | None:
    """Read a manager in any shape Entra sends; ``None`` means "no manager".

    Entra sends a bare id, ``{"value": id, "$ref": null}``, or a one-element list of that.
    The canonical form is ``{"value": id}``: displayName is read-only, $ref derived.
    """
    if isinstance(value, list):
        if len(value) > 1:
            raise invalid_value(f"{where} holds one manager, got a list of {len(value)}")
        value = value[0] if value else None
    if isinstance(value, dict):
        key = find_key(value, "value")
        if key is None:
            raise invalid_value(f"{where} needs a 'value': the manager's user id")
        value = value[key]
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid_value(
            f'{where} must be the manager\'s user id, or an object {{"value": "<id>"}}'
        )
    return {"value": value}


@dataclass
class SplitDocument:
    """A resource body taken apart: what the model validates, and what it cannot know."""

    core: dict[str, Any]
    """Attributes for the model (core schema and declared extensions), nulls dropped."""
    extensions: dict[str, dict[str, Any]]
    """Custom extensions, by URN, kept verbatim."""
    foreign_schemas: list[str]
    """URIs in ``schemas`` the model does not declare (custom extensions, Microsoft's)."""


def split_document(body: Any, model: type[M], ignored: tuple[str, ...] = ()) -> SplitDocument:
    """Take a body apart for validation; the inverse of :func:`dump`.

    Default scim2-models policy rejects unknown schema URIs and attributes, so the URIs and
    custom extension objects are set aside here, and brought back by :func:`dump`.
    ``ignored`` attributes (read-only ones the client may echo back) are dropped.
    """
    if not isinstance(body, dict):
        raise invalid_syntax(f"The request body must be a JSON object (a {resource_name(model)})")
    declared = [str(model.__schema__), *model.get_extension_models()]
    declared_folded = [urn.casefold() for urn in declared]
    core: dict[str, Any] = {}
    extensions: dict[str, dict[str, Any]] = {}
    schemas: Any = [declared[0]]
    seen: set[str] = set()
    for key, value in body.items():
        folded = key.casefold()
        if folded in seen:
            raise invalid_syntax(f"'{key}' is given twice (attribute names are case-insensitive)")
        seen.add(folded)
        if value is None or folded in ignored:
            continue
        if folded == "schemas":
            schemas = value
        elif is_custom_urn(key, declared_folded):
            if not isinstance(value, dict):
                raise invalid_syntax(f"'{key}' must be a JSON object of extension attributes")
            attrs = {k: v for k, v in value.items() if v is not None}
            if attrs:
                extensions[key] = attrs
        else:
            core[key] = value
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise invalid_syntax("'schemas' must be a list of schema URIs")
    core["schemas"] = [declared[0]] + [s for s in schemas if s.casefold() in declared_folded[1:]]
    foreign = [s for s in schemas if s.casefold() not in declared_folded]
    return SplitDocument(core, extensions, foreign)


def is_custom_urn(key: str, declared_folded: list[str]) -> bool:
    """Whether a key names a custom extension (a URN no model schema starts)."""
    folded = key.casefold()
    return folded.startswith("urn:") and not any(folded.startswith(d) for d in declared_folded)


def validate(model: type[M], core: dict[str, Any]) -> M:
    """Validate a body's declared attributes as a creation (or replacement) request."""
    try:
        return model.model_validate(core, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    except (ValidationError, SCIMException) as exc:
        raise scim_error(exc, resource_name(model)) from exc


def _canonical(model: type[M], split: SplitDocument, *, fast: bool) -> dict[str, Any]:
    """The canonical document of a split body: :func:`validate` then :func:`dump`, or with
    ``fast``, the same document built without the model when the body is plain enough for
    :func:`~scimgate.scim.fast_payloads.plain_dump` to vouch for it."""
    doc = plain_dump(model, split.core) if fast else None
    if doc is None:
        return dump(validate(model, split.core), split)
    return _with_set_aside(doc, split)


def dump(resource: Resource[Any], split: SplitDocument) -> dict[str, Any]:
    """The canonical document: the model's request dump (no read-only attributes) plus the
    custom extensions and schema URIs set aside by :func:`split_document`."""
    doc = resource.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    return _with_set_aside(doc, split)


def _with_set_aside(doc: dict[str, Any], split: SplitDocument) -> dict[str, Any]:
    """A model's request dump, plus what :func:`split_document` set aside."""
    schemas: list[str] = doc["schemas"]
    for urn in [*split.foreign_schemas, *split.extensions]:
        if urn.casefold() not in (s.casefold() for s in schemas):
            schemas.append(urn)
    doc.update(split.extensions)
    return doc


def resource_name(model: type[Resource[Any]]) -> str:
    """Return "User" or "Group": the name an admin knows, not the Python class name."""
    return str(model.__schema__).rsplit(":", 1)[-1]


def find_key(mapping: dict[str, Any], name: str) -> str | None:
    """The first key of ``mapping`` spelling ``name`` in any case (SCIM names are
    case-insensitive). A key spelled exactly as ``name`` is seen without folding it: a
    plain loop, 4x faster than a generator that folds every key."""
    folded = name.casefold()
    for key in mapping:
        if key == name or key.casefold() == folded:
            return key
    return None


def scim_error(exc: Exception, resource: str, prefix: str = "") -> ScimError:
    """Turn a pydantic or scim2-models error into a 400 naming the attribute at fault."""
    if isinstance(exc, SCIMException):
        if isinstance(exc.__cause__, ValidationError):
            detail = _validation_detail(exc.__cause__, resource)
        else:
            detail = exc.detail
        return ScimError(exc.status, prefix + detail, exc.scim_type or "invalidValue")
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False)
        scim_type = _error_type(errors[0]) if errors else "invalidValue"
        return ScimError(400, prefix + _validation_detail(exc, resource), scim_type)
    return invalid_value(prefix + str(exc))


def _validation_detail(exc: ValidationError, resource: str) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:3]:
        where = _location(error["loc"])
        if error["type"] == "extra_forbidden":
            parts.append(f"'{where}' is not an attribute of {resource}")
            continue
        message = re.sub(r" or instance of \S+", "", error["msg"].removeprefix("Value error, "))
        value = error.get("input")
        if isinstance(value, str | int | float | bool) and len(repr(value)) <= 80:
            message += f" (got {value!r})"
        parts.append(f"'{where}': {message}" if where else message)
    return "; ".join(parts)


_SNAKE = re.compile(r"_([a-z0-9])")


def _location(loc: tuple[int | str, ...]) -> str:
    """('emails', 0, 'value') → "emails[0].value"; an extension URN is joined with ':'."""
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, str) and not part.casefold().startswith("urn:"):
            # PATCH errors carry pydantic field names (given_name): show SCIM's givenName.
            part = _SNAKE.sub(lambda m: m.group(1).upper(), part)
        if isinstance(part, int):
            text += f"[{part}]"
        elif i == 0:
            text = part
        else:
            text += (":" if i == 1 and text.casefold().startswith("urn:") else ".") + part
    return text


def _error_type(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "invalidSyntax"
    if error["type"] == "mutability_error":
        return "mutability"
    ctx = error.get("ctx") or {}
    return str(ctx.get("scim_type") or "invalidValue")


def _require_string(core: dict[str, Any], name: str) -> None:
    key = find_key(core, name)
    if key is None:
        raise invalid_value(f"{name} is required")
    if not isinstance(core[key], str) or not core[key].strip():
        raise invalid_value(f"{name} must be a non-empty string, got {core[key]!r}")
