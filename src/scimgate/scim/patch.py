"""PATCH (RFC 7644 §3.5.2) in both of Microsoft Entra's dialects.

scim2-models applies the operations. This module shapes what Entra sends into what the
library accepts (manager ids in three shapes, custom extension attributes it cannot hold),
keeps group members out of the library so that a member change costs O(changed members)
in the store, and reports every failure with the index of the operation at fault, since
that detail is what an IdP admin reads in Entra's provisioning logs.

What Entra and Okta send most (attribute updates, deactivation, member changes) takes a fast
path on the JSON document instead, with the same result; tests/unit/test_patch_fast.py
checks that the two paths agree.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Literal, cast

from pydantic import ValidationError
from scim2_models import Context, PatchOp, Path, Resource, SCIMException, ScimPolicy
from scim2_models.path import CompareOperator, Comparison, FilterNode, LogicalExpr, LogicalOperator
from scim2_models.resources.user import Address, Email, Im, PhoneNumber

from scimgate.scim.errors import (
    ScimError,
    invalid_filter,
    invalid_path,
    invalid_syntax,
    invalid_value,
    mutability,
    no_target,
)
from scimgate.scim.payloads import (
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    MemberRef,
    ScimGroup,
    ScimUser,
    dump,
    find_key,
    is_custom_urn,
    manager_value,
    member_refs,
    parse_group,
    parse_user,
    resource_name,
    scim_error,
    split_document,
)

__all__ = ["PATCH_SCHEMA", "GroupPatchPlan", "MemberAction", "apply_user_patch", "plan_group_patch"]

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# Entra's legacy dialect removes members by listing them in `value`, and creates the element
# a filtered path names (`phoneNumbers[type eq "mobile"].value`) when it does not exist yet.
_POLICY = ScimPolicy(
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)
_MANAGER = f"{ENTERPRISE_SCHEMA}:manager"
_MANAGER_PATHS = ("manager", _MANAGER.casefold())
_GROUP_SCHEMAS = [GROUP_SCHEMA.casefold()]

Op = Literal["add", "remove", "replace"]


@dataclass(frozen=True)
class MemberAction:
    """One membership change for the store, in request order.

    ``replace`` makes the member set exactly ``members``; ``clear`` empties it (also what a
    replace with no members becomes).
    """

    kind: Literal["add", "remove", "replace", "clear"]
    members: tuple[MemberRef, ...] = ()


@dataclass(frozen=True)
class GroupPatchPlan:
    """A group PATCH, planned without loading members: the new document and member changes."""

    doc: dict[str, Any]
    member_actions: tuple[MemberAction, ...]


@dataclass(frozen=True)
class _Operation:
    index: int
    op: Op
    path: str | None
    value: Any
    """None when absent; for replace with a path, also an explicit null (unassign)."""

    @property
    def prefix(self) -> str:
        target = f" {self.path}" if self.path else ""
        return f"Operations[{self.index}] ({self.op}{target}): "


def apply_user_patch(
    doc: dict[str, Any], body: Any, resource_id: str | None = None
) -> dict[str, Any]:
    """Apply a PATCH body to a canonical user document; return the new one (input untouched).

    ``resource_id``: a path-less value may repeat the resource's own id (Entra does);
    any other id is refused."""
    fast = _fast_user_patch(doc, _operations(body), resource_id)
    if fast is not None:
        return _revalidated(lambda: parse_user(fast))
    return _general_user_patch(doc, body, resource_id)


def _general_user_patch(
    doc: dict[str, Any], body: Any, resource_id: str | None = None
) -> dict[str, Any]:
    """Every PATCH shape, through scim2-models (see :func:`apply_user_patch`)."""
    patcher = _Patcher(ScimUser, doc, required="userName", resource_id=resource_id)
    for op in _operations(body):
        with _failing_at(op, "User"):
            if op.path is None:
                value = {}
                filtered: list[tuple[str, Any]] = []
                for key, item in _object_value(op).items():
                    if "[" in key:
                        # A value path as a key (emails[type eq "work"].value) is one more
                        # operation on that path: the library only takes plain keys here.
                        filtered.append((key, item))
                        continue
                    if key.casefold() in _MANAGER_PATHS:
                        key, item = _MANAGER, manager_value(item, _MANAGER)
                    elif key.casefold() == ENTERPRISE_SCHEMA.casefold():
                        item = _normalise_enterprise(item, op)
                    if item is not None or op.op == "replace":
                        value[key] = item
                if value or not filtered:
                    patcher.apply(op, None, value)
                for key, item in filtered:
                    patcher.apply(op, key, item)
            elif op.path.casefold() in _MANAGER_PATHS:
                # Entra's remove may carry the old manager as value; the manager goes anyway.
                manager = None if op.op == "remove" else manager_value(op.value, _MANAGER)
                if manager is not None or op.op != "add":
                    patcher.apply(op, _MANAGER, manager)
            elif op.path.casefold() == ENTERPRISE_SCHEMA.casefold():
                patcher.apply(op, op.path, _normalise_enterprise(op.value, op))
            else:
                patcher.apply(op, op.path, op.value)
    return _revalidated(lambda: parse_user(patcher.finish()))


# --- the fast path for users -------------------------------------------------------------------
#
# What Entra's incremental cycle and Okta send is a handful of shapes: add/replace/remove of a
# string attribute, of `active`, of the manager, and of one sub-attribute of the element of
# emails/phoneNumbers/addresses a `type eq` filter selects, one op per path or (compliant
# dialect, Okta) path-less with those paths as keys. Through scim2-models each operation
# costs 0.5-1 ms (operation model, path resolution, snapshots, checks); these shapes are
# applied straight to the JSON document, which `parse_user` then validates once, as it does
# the result of the general path. Anything else, or anything odd about a value, sends the
# whole PATCH to the general path, which alone reports errors (but for the envelope's).


def _folded(*names: str) -> dict[str, str]:
    return {name.casefold(): name for name in names}


# Singular string attributes of User (RFC 7643 §4.1), without profileUrl (a URI the general
# path checks while applying the op, with its own error).
_PLAIN_STRINGS = _folded(
    "userName",
    "externalId",
    "displayName",
    "nickName",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
)
_NAME_PARTS = _folded(
    "formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"
)
_ENTERPRISE_STRINGS = _folded(
    "employeeNumber", "costCenter", "organization", "division", "department"
)
# Multi-valued attributes whose `type` filter the fast path evaluates, with the string
# sub-attributes it writes (not `type` or `primary`, whose writes have rules of their own).
_ENTRY_PARTS = {
    "emails": _folded("value", "display"),
    "phonenumbers": _folded("value", "display"),
    "ims": _folded("value", "display"),
    "addresses": _folded(
        "formatted", "streetAddress", "locality", "region", "postalCode", "country"
    ),
}
# The canonical types of those attributes, which a type in any case stands for (the rest are
# kept as given), as the library's ExtensibleStringEnum reads them.
_ENTRY_TYPES = {
    attr: {member.value.lower(): member.value for member in model.Type}
    for attr, model in (
        ("emails", Email),
        ("phonenumbers", PhoneNumber),
        ("ims", Im),
        ("addresses", Address),
    )
}
# What a remove may take away whole.
_WHOLE = _folded(
    "name",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "entitlements",
    "roles",
    "x509Certificates",
    ENTERPRISE_SCHEMA,
)
# A JSON string without escapes, as the path grammar reads it.
_QUOTED = r'"[^"\\\x00-\x1f\ud800-\udfff]*"'
_ENTRY_PATH = re.compile(rf"(\w+)\[type eq ({_QUOTED})\](?:\.(\w+))?", re.IGNORECASE)


@dataclass(frozen=True)
class _Target:
    """What a user path names, for the fast path.

    ``active``; ``string``: ``doc[attr]``, or ``doc[attr][part]`` (name, enterprise);
    ``manager``; ``whole``: a complex or multi-valued attribute (remove only); ``entry``:
    the elements of ``doc[attr]`` whose type is ``type``, or their sub-attribute ``part``.
    """

    kind: Literal["active", "string", "manager", "whole", "entry"]
    attr: str
    part: str | None = None
    type: str | None = None


@lru_cache(maxsize=1024)
def _user_target(path: str) -> _Target | None:
    """The target of a path the fast path handles; None for any other."""
    folded = path.casefold()
    if folded == "active":
        return _Target("active", "active")
    if folded in _PLAIN_STRINGS:
        return _Target("string", _PLAIN_STRINGS[folded])
    if folded in _MANAGER_PATHS:
        return _Target("manager", ENTERPRISE_SCHEMA, "manager")
    if folded in _WHOLE:
        return _Target("whole", _WHOLE[folded])
    urn, _, attr = folded.rpartition(":")
    if urn == ENTERPRISE_SCHEMA.casefold() and attr in _ENTERPRISE_STRINGS:
        return _Target("string", ENTERPRISE_SCHEMA, _ENTERPRISE_STRINGS[attr])
    head, _, sub = folded.partition(".")
    if head == "name" and sub in _NAME_PARTS:
        return _Target("string", "name", _NAME_PARTS[sub])
    match = _ENTRY_PATH.fullmatch(path)
    parts = _ENTRY_PARTS.get(match[1].casefold()) if match else None
    if match is None or parts is None or (match[3] and match[3].casefold() not in parts):
        return None
    part = parts[match[3].casefold()] if match[3] else None
    kind = match[2][1:-1]
    kind = _ENTRY_TYPES[match[1].casefold()].get(kind.lower(), kind)
    return _Target("entry", _WHOLE[match[1].casefold()], part, kind)


def _comparable(text: str) -> str:
    """A caseExact=false string as scim2-models' filters compare it (NFC, lower case)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())


class _Draft:
    """A user document being patched as JSON; what it changes is copied first."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = dict(doc)
        self.copies: dict[str, Any] = {}

    def set(self, attr: str, part: str | None, value: Any) -> bool:
        """Set ``doc[attr]`` or ``doc[attr][part]``; None unassigns (and drops what empties)."""
        if part is None:
            if value is None:
                self.doc.pop(attr, None)
            else:
                self.doc[attr] = value
            return True
        found = self.doc.get(attr)
        if found is None and value is None:
            return True
        if found is not None and not isinstance(found, dict):
            return False
        current: dict[str, Any] = found or {}
        if self.copies.get(attr) is not current:
            current = self.copies[attr] = self.doc[attr] = dict(current)
        if value is None:
            current.pop(part, None)
            if not current:
                del self.doc[attr]
        else:
            current[part] = value
        return True

    def entries(self, target: _Target, op: Op, value: Any) -> bool:
        """Add, replace or remove at ``attr[type eq "…"]`` or ``attr[type eq "…"].part``.

        An add or replace that selects nothing creates ``{"type": …, part: value}``: the
        legacy dialect's create-if-missing (``_POLICY``)."""
        part, wanted = target.part, _comparable(target.type or "")
        current = self.doc.get(target.attr)
        if current is not None and not (
            isinstance(current, list) and all(isinstance(e, dict) for e in current)
        ):
            return False
        old: list[dict[str, Any]] = current or []
        hits = [isinstance(e.get("type"), str) and _comparable(e["type"]) == wanted for e in old]
        if op == "remove":
            if value is not None:
                return False
            new = [
                e if not hit else {k: v for k, v in e.items() if k != part}
                for e, hit in zip(old, hits, strict=True)
                if not (hit and part is None)
            ]
        elif part is None or not isinstance(value, str):
            return False
        elif any(hits):
            new = [{**e, part: value} if hit else e for e, hit in zip(old, hits, strict=True)]
        else:
            new = [*old, {"type": target.type, part: value}]
        if sum(e.get("primary") is True for e in new) > 1:
            return False  # the general path knows the rules of several primary values
        return self.set(target.attr, None, new or None)


def _fast_write(draft: _Draft, target: _Target, op: Op, value: Any) -> bool:
    """Apply one add, replace or remove of ``value`` at ``target``; False if not sure."""
    if target.kind == "manager":
        if op == "remove":  # Entra's remove may carry the old manager: it goes anyway
            return draft.set(target.attr, target.part, None)
        try:
            manager = manager_value(value, _MANAGER)
        except ScimError:
            return False
        return (manager is None and op == "add") or draft.set(target.attr, target.part, manager)
    if target.kind == "entry":
        return draft.entries(target, op, value)
    unassign = op == "remove" or value is None
    if op == "remove" and value is not None:
        return False  # legacy remove-by-value: the general path's
    if target.kind == "whole":
        return op == "remove" and draft.set(target.attr, None, None)
    if target.kind == "active":
        if isinstance(value, str) and value.casefold() in ("true", "false"):
            value = value.casefold() == "true"
        return (unassign or isinstance(value, bool)) and draft.set("active", None, value)
    if target.attr == "userName" and (unassign or not isinstance(value, str) or not value.strip()):
        return False  # the general path refuses it, naming the operation
    return (unassign or isinstance(value, str)) and draft.set(target.attr, target.part, value)


def _fast_user_patch(
    doc: dict[str, Any], ops: list[_Operation], resource_id: str | None = None
) -> dict[str, Any] | None:
    """The PATCH applied to the JSON document when every operation is of the common shapes
    (see above); None when any is not, for the general path."""
    draft = _Draft(doc)
    for op in ops:
        if op.path is not None:
            target = _user_target(op.path)
            if target is None or not _fast_write(draft, target, op.op, op.value):
                return None
            continue
        if not isinstance(op.value, dict):
            return None
        later: list[tuple[_Target | None, Any]] = []
        for key, item in op.value.items():
            folded = key.casefold()
            if folded in _IGNORED_KEYS:
                if folded == "id" and item is not None and item != resource_id:
                    return None
                continue
            target = _user_target(key)
            if "[" in key:
                # As in the general path: value paths as keys come after the plain keys.
                later.append((target, item))
                continue
            if item is None and op.op == "add":
                continue
            if target is None or not _fast_write(draft, target, op.op, item):
                return None
        for target, item in later:
            if target is None or not _fast_write(draft, target, op.op, item):
                return None
    return draft.doc


# --- groups ------------------------------------------------------------------------------------


def plan_group_patch(
    doc: dict[str, Any], body: Any, resource_id: str | None = None
) -> GroupPatchPlan:
    """Plan a PATCH body on a canonical group document (which holds no members).

    Non-member changes are applied to the returned document; member changes are returned
    as ordered actions, for the store to apply without loading the member list.
    """
    actions = _member_plan(_operations(body))
    if actions is not None:
        return GroupPatchPlan(doc, tuple(actions))
    return _general_group_patch(doc, body, resource_id)


def member_patch_actions(body: Any) -> tuple[MemberAction, ...] | None:
    """The member actions of a PATCH that changes only members, planned before the group
    is read (its document plays no part): the store can then send the first change with
    the group's row lock. None when the PATCH changes anything else or is not valid:
    :func:`plan_group_patch`, after the group's checks, plans it and says what is wrong."""
    try:
        actions = _member_plan(_operations(body))
    except ScimError:
        return None
    return None if actions is None else tuple(actions)


def _member_plan(ops: list[_Operation]) -> list[MemberAction] | None:
    """The member actions of a PATCH that only changes members (what Entra and Okta send
    but for a rename), without the model: the document stays as it is. None when an
    operation touches anything else, for :func:`_general_group_patch`."""
    actions: list[MemberAction] = []
    for op in ops:
        with _failing_at(op, "Group"):
            found = _member_op(op)
        if found is None:
            return None
        actions += found
    return actions


# `members`, or `members[value eq "<id>" or …]`, in any case, optionally under the core URN.
_MEMBERS_PATH = re.compile(
    rf"(?:{re.escape(GROUP_SCHEMA)}:)?members"
    rf"(?:\[(value eq {_QUOTED}(?: or value eq {_QUOTED})*)\])?",
    re.IGNORECASE,
)


def _member_op(op: _Operation) -> list[MemberAction] | None:
    """The member actions of one operation, as the general path plans them; None when the
    operation is not on members only."""
    if op.path is None:
        value = op.value
        if not isinstance(value, dict) or len(value) != 1:
            return None
        [(key, members)] = value.items()
        return _member_value_actions(op.op, members) if key.casefold() == "members" else None
    match = _MEMBERS_PATH.fullmatch(op.path)
    if match is not None and match[1] is None:
        return _members_actions(op)
    if match is not None:
        ids = [text[1:-1] for text in re.findall(_QUOTED, match[1])]
        return _members_removal(op, ids)
    if "members" not in op.path.casefold() or is_custom_urn(op.path, _GROUP_SCHEMAS):
        return None
    # Any other spelling: parsed as the general path does, with the same errors.
    path = _check_path(ScimGroup, op.path)
    binding = path.resolve() if path.model is None else None
    if binding is None or binding.field_name != "members":
        return None
    return _member_path_actions(op, path, binding.sub_field_name)


def _general_group_patch(
    doc: dict[str, Any], body: Any, resource_id: str | None = None
) -> GroupPatchPlan:
    """Every group PATCH shape, through scim2-models (see :func:`plan_group_patch`)."""
    patcher = _Patcher(ScimGroup, doc, required="displayName", resource_id=resource_id)
    actions: list[MemberAction] = []
    for op in _operations(body):
        with _failing_at(op, "Group"):
            if op.path is None:
                value = dict(_object_value(op))
                members_key = find_key(value, "members")
                if members_key is not None:
                    actions += _member_value_actions(op.op, value.pop(members_key))
                patcher.apply(op, None, value)
                continue
            path = None if patcher.is_custom(op.path) else patcher.check_path(op.path)
            binding = path.resolve() if path is not None and path.model is None else None
            if path is not None and binding is not None and binding.field_name == "members":
                actions += _member_path_actions(op, path, binding.sub_field_name)
            else:
                patcher.apply(op, op.path, op.value)
    new_doc = _revalidated(lambda: parse_group(patcher.finish())[0])
    return GroupPatchPlan(new_doc, tuple(actions))


@cache
def _patch_op_class(model: type[Resource[Any]]) -> Any:
    """``PatchOp[model]``, built once. pydantic holds parameterised models only weakly, so
    without this reference each request re-created the class (schema generation included)."""
    return PatchOp.__class_getitem__(model)


@cache
def _path_class(model: type[Resource[Any]]) -> Any:
    """``Path[model]``, built once."""
    return Path.__class_getitem__(model)


def _check_path(model: type[Resource[Any]], text: str) -> Path[Any]:
    """Parse a path and check it names an attribute, for a clear invalidPath."""
    try:
        path: Path[Any] = _path_class(model)(text)
    except SCIMException as exc:
        raise invalid_path(f"'{text}' is not a valid attribute path: {exc.detail}") from exc
    if path.model is None and path.resolve() is None:
        raise invalid_path(f"'{text}' is not an attribute of {resource_name(model)}")
    return path


_IGNORED_KEYS = {"id", "meta", "schemas"}


class _Patcher:
    """A resource being patched: a model for what scim2-models knows, and the rest apart.

    Custom extensions are plain dicts (the library cannot hold undeclared schemas), edited
    here and put back by :func:`~scimgate.scim.payloads.dump`.
    """

    def __init__(
        self,
        model: type[Resource[Any]],
        doc: dict[str, Any],
        required: str,
        resource_id: str | None = None,
    ) -> None:
        self.model = model
        self.resource_id = resource_id
        self.required = required
        self.name = resource_name(model)
        self.patch_op: Any = _patch_op_class(model)
        schemas = [str(model.__schema__), *model.get_extension_models()]
        self.declared = [urn.casefold() for urn in schemas]
        self.split = split_document(copy.deepcopy(doc), model)
        # A stored document is trusted: no request-context checks (e.g. manager.$ref).
        self.resource = model.model_validate(self.split.core)

    def is_custom(self, key: str) -> bool:
        return is_custom_urn(key, self.declared)

    def check_path(self, text: str) -> Path[Any]:
        return _check_path(self.model, text)

    def apply(self, op: _Operation, path: str | None, value: Any) -> None:
        """Apply one operation; custom extension attributes are set aside first."""
        if path is not None and self.is_custom(path):
            self._apply_custom(op.op, path, value)
            return
        if path is None:
            # Entra's compliant dialect renames a group with {"id": <its id>, "displayName":
            # …}: read-only keys in a path-less value are ignored, as PUT ignores them.
            given_id = value.get(find_key(value, "id") or "id")
            if given_id is not None and given_id != self.resource_id:
                raise mutability(f"'id' is read-only (this resource's id is {self.resource_id!r})")
            value = {k: v for k, v in value.items() if k.casefold() not in _IGNORED_KEYS}
            for key in [k for k in value if self.is_custom(k)]:
                self._apply_custom(op.op, key, value.pop(key))
            if not value:
                return
        else:
            self.check_path(path)
        operation: dict[str, Any] = {"op": op.op}
        if path is not None:
            operation["path"] = path
        if op.op != "remove" or value is not None:
            operation["value"] = value
        patch = self.patch_op.model_validate(
            {"schemas": [PATCH_SCHEMA], "Operations": [operation]},
            scim_ctx=Context.RESOURCE_PATCH_REQUEST,
            scim_policy=_POLICY,
        )
        patch.patch(self.resource, scim_policy=_POLICY)
        value = self.resource[self.required]  # the library allows "", the store cannot
        if not isinstance(value, str) or not value.strip():
            raise invalid_value(f"{self.required} must be a non-empty string, got {value!r}")

    def _apply_custom(self, op: Op, key: str, value: Any) -> None:
        """Set or remove an attribute of a custom extension kept verbatim."""
        extensions = self.split.extensions
        if "[" in key:
            raise invalid_path(f"'{key}': filters on custom extension attributes are not supported")
        urn, attr = key, ""
        whole = key.casefold().endswith(f":{self.name}".casefold())  # ...:2.0:User
        if find_key(extensions, key) is None and not whole:
            urn, _, attr = key.rpartition(":")
            if not attr or urn.count(":") < 2:
                raise invalid_path(
                    f"'{key}' is not an extension attribute: use '<URN>:<attribute>'"
                )
        ext_key = find_key(extensions, urn) or urn
        ext = extensions.pop(ext_key, {})
        if attr:
            _write(ext, attr.split("."), value, op)
        elif op == "remove":
            ext = {}
        elif not isinstance(value, dict):
            raise invalid_value(f"the value of '{urn}' must be an object of its attributes")
        else:
            for name, item in value.items():
                _write(ext, name.split("."), item, op)
        if ext:
            extensions[ext_key] = ext
        else:  # RFC 7643 §3: 'schemas' lists only the schemas of attributes present.
            self.split.foreign_schemas = [
                s for s in self.split.foreign_schemas if s.casefold() != ext_key.casefold()
            ]

    def finish(self) -> dict[str, Any]:
        return dump(self.resource, self.split)


def _write(target: dict[str, Any], names: list[str], value: Any, op: Op) -> None:
    """RFC 7644 §3.5.2 on plain JSON: add appends to lists and merges objects, replace sets,
    null or remove unassigns; remove with a value on a list removes those entries."""
    key = find_key(target, names[0]) or names[0]
    current = target.get(key)
    if len(names) > 1:
        if current is None:
            if op == "remove":
                return
            current = target[key] = {}
        if not isinstance(current, dict):
            raise invalid_path(f"'{key}' is not a complex attribute, it has no '{names[1]}'")
        _write(current, names[1:], value, op)
    elif op == "remove" and value is not None and isinstance(current, list):
        drop = value if isinstance(value, list) else [value]
        target[key] = [item for item in current if item not in drop]
    elif op == "remove" or (value is None and op == "replace"):
        target.pop(key, None)
    elif value is None:
        return
    elif op == "add" and isinstance(current, list):
        added = value if isinstance(value, list) else [value]
        target[key] = current + [item for item in added if item not in current]
    elif isinstance(current, dict) and isinstance(value, dict):
        for name, item in value.items():
            _write(current, [name], item, op)
    else:
        target[key] = copy.deepcopy(value)
    if target.get(key) in ([], {}):
        target.pop(key, None)


def _normalise_enterprise(value: Any, op: _Operation) -> Any:
    """Normalise the manager inside an enterprise extension object."""
    if not isinstance(value, dict):
        return value
    value = dict(value)
    key = find_key(value, "manager")
    if key is not None:
        manager = manager_value(value.pop(key), _MANAGER)
        if manager is not None or op.op == "replace":
            value["manager"] = manager
    return value


def _member_path_actions(
    op: _Operation, path: Path[Any], sub_attr: str | None
) -> list[MemberAction]:
    """Member actions for an operation whose path is ``members`` or ``members[...]``."""
    if sub_attr is not None:
        raise invalid_path("only 'members' or 'members[value eq \"<id>\"]' can be patched")
    if path.value_filter is None:
        return _members_actions(op)
    return _members_removal(op, path.value_filter)


def _members_actions(op: _Operation) -> list[MemberAction]:
    """Member actions for an operation whose path is ``members``."""
    if op.op == "remove" and op.value is None:
        return [MemberAction("clear")]
    return _member_value_actions(op.op, op.value)


def _members_removal(op: _Operation, value_filter: FilterNode | list[str]) -> list[MemberAction]:
    """Member actions for an operation whose path is ``members[<filter>]``; the filter may
    come as the ids it names."""
    if op.op != "remove":
        raise invalid_path(f"a members filter only works with remove; {op.op} takes a member list")
    if op.value is not None:
        raise invalid_value("a remove with a members filter takes no value")
    ids = value_filter if isinstance(value_filter, list) else _filtered_ids(value_filter)
    if ids is None:
        raise invalid_filter(
            f"unsupported members filter '{value_filter}': use value eq \"<id>\", joined by 'or'"
        )
    return [MemberAction("remove", tuple(MemberRef(member_id) for member_id in dict.fromkeys(ids)))]


def _member_value_actions(op: Op, value: Any) -> list[MemberAction]:
    """Member actions for a list of members given as a value (never a clear for remove)."""
    if value is None:
        return [MemberAction("clear")] if op == "replace" else []
    entries = value if isinstance(value, list) else [value]
    refs = tuple(member_refs(entries, "members", allow_bare=True))
    if op == "replace":
        return [MemberAction("replace", refs) if refs else MemberAction("clear")]
    return [MemberAction(op, refs)] if refs else []


def _filtered_ids(node: FilterNode) -> list[str] | None:
    """The ids of ``value eq "a" or value eq "b"``; None for any other filter."""
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_:
        ids = [_filtered_ids(term) for term in node.terms]
        return None if any(i is None for i in ids) else [x for i in ids for x in i or ()]
    if (
        isinstance(node, Comparison)
        and node.op == CompareOperator.eq
        and node.attr_path.attr.casefold() == "value"
        and node.attr_path.sub_attr is None
        and isinstance(node.value, str)
    ):
        return [node.value]
    return None


def _operations(body: Any) -> list[_Operation]:
    """Check the PATCH envelope and each operation's shape; values are checked when applied."""
    if not isinstance(body, dict):
        raise invalid_syntax("The PATCH body must be a JSON object with an 'Operations' list")
    schemas_key = find_key(body, "schemas")
    if schemas_key is not None:  # lenient when absent, but a wrong message type is a mistake
        schemas = body[schemas_key]
        if not isinstance(schemas, list) or PATCH_SCHEMA.casefold() not in [
            str(s).casefold() for s in schemas
        ]:
            raise invalid_syntax(f"'schemas' of a PATCH body must be [\"{PATCH_SCHEMA}\"]")
    operations = body.get(find_key(body, "Operations") or "Operations")
    if not isinstance(operations, list) or not operations:
        raise invalid_syntax("'Operations' must be a non-empty list of operations")
    return [_operation(i, item) for i, item in enumerate(operations)]


def _operation(index: int, item: Any) -> _Operation:
    where = f"Operations[{index}]"
    if not isinstance(item, dict):
        raise invalid_syntax(f"{where} must be an object with 'op', 'path' and 'value'")
    op = item.get(find_key(item, "op") or "op")
    if not isinstance(op, str) or op.casefold() not in ("add", "remove", "replace"):
        raise invalid_value(f"{where}: {op!r} is not a PATCH op; expected add, remove or replace")
    op = op.casefold()
    path = item.get(find_key(item, "path") or "path")
    path = None if path == "" else path
    if path is not None and not isinstance(path, str):
        raise invalid_path(f"{where}: 'path' must be a string, got {path!r}")
    value_key = find_key(item, "value")
    value = item[value_key] if value_key is not None else None
    if op == "remove" and path is None:
        raise no_target(f"{where}: remove needs a 'path' naming what to remove")
    if op != "remove" and (value_key is None or (value is None and (op == "add" or path is None))):
        raise invalid_value(f"{where}: {op} needs a 'value'")
    return _Operation(index, cast(Op, op), path, value)


def _object_value(op: _Operation) -> dict[str, Any]:
    if not isinstance(op.value, dict):
        raise invalid_value("without a 'path', 'value' must be an object of attribute paths")
    return op.value


@contextmanager
def _failing_at(op: _Operation, resource: str) -> Iterator[None]:
    """Name the operation at fault in any error raised while applying it."""
    try:
        yield
    except ScimError as exc:
        raise ScimError(exc.status, op.prefix + exc.detail, exc.scim_type) from exc
    except (ValidationError, SCIMException) as exc:
        raise scim_error(exc, resource, op.prefix) from exc


def _revalidated(parse: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Re-validate the patched document as a full resource, as a PUT of it would be."""
    try:
        return parse()
    except ScimError as exc:
        detail = f"after applying Operations: {exc.detail}"
        raise ScimError(exc.status, detail, exc.scim_type) from exc
