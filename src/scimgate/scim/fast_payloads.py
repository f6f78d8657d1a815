"""The fast path of :func:`~scimgate.scim.payloads.parse_user` and ``parse_group``.

Validating a body with scim2-models and dumping it back costs about 300 µs a user, most of
it in the library's Python validators, and every user write pays it (PATCH re-validates the
patched document). Yet what IdPs send is plain: attribute names spelled as the schema spells
them, strings where strings belong, real booleans, canonical ``type`` values. The model's
request dump of such a body is known in advance: the same values, in field order, without
nulls, empty objects and empty lists. :func:`plain_dump` builds it from tables derived from
the models, and answers None for anything it cannot vouch for (another spelling, a value the
library would coerce or refuse, an attribute it does not handle); that body then takes the
scim2-models path as before. tests/unit/test_fast_payloads.py checks that both paths agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from inspect import isclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from scim2_models import (
    BaseModel,
    ComplexAttribute,
    ExtensibleStringEnum,
    Extension,
    Mutability,
    Reference,
    Required,
    Resource,
)

__all__ = ["plain_dump"]


class _Unsure(Exception):
    """A value the fast path does not vouch for: scim2-models must decide."""


Dumper = Callable[[Any], Any]
"""A value as the model's request dump holds it, None where the dump leaves it out; raises
:class:`_Unsure` for a value it cannot vouch for."""


def plain_dump(model: type[Resource[Any]], core: dict[str, Any]) -> dict[str, Any] | None:
    """``model.model_validate(core)`` then ``model_dump``, both in the resource creation
    context, for a plain ``core``; None for any other.

    ``core`` is what :func:`~scimgate.scim.payloads.split_document` leaves for the model: its
    ``schemas`` starts with the model's schema, then names declared extensions.
    """
    plan = _plan(model)
    attributes = dict(core)
    schemas = attributes.pop("schemas", None)
    if type(schemas) is not list or not schemas or schemas[0] != plan.schema:
        return None
    # The library refuses an extension URN spelled in another case.
    if not all(urn in plan.extensions for urn in schemas[1:]):
        return None
    try:
        dumped = plan.attributes(attributes) or {}
    except _Unsure:
        return None
    if not all(name in dumped for name in plan.required):
        return None
    # The dump lists the model's schemas, less the extensions it does not carry.
    return {"schemas": [plan.schema, *(u for u in plan.extensions if u in dumped)], **dumped}


@dataclass(frozen=True)
class _Plan:
    schema: str
    extensions: tuple[str, ...]
    attributes: Dumper
    required: tuple[str, ...]


@cache
def _plan(model: type[Resource[Any]]) -> _Plan:
    required = tuple(
        info.serialization_alias or name
        for name, info in model.model_fields.items()
        if name != "schemas" and model.get_field_annotation(name, Required) == Required.true
    )
    extensions = tuple(model.get_extension_models())
    return _Plan(str(model.__schema__), extensions, _object(_fields(model)), required)


def _fields(model: type[BaseModel]) -> dict[str, Dumper]:
    """A dumper for each attribute of ``model`` the fast path handles, in field order (the
    order of the dump), by the attribute's exact name."""
    fields: dict[str, Dumper] = {}
    for name, info in model.model_fields.items():
        dumper = _field_dumper(model, name)
        if dumper is not None:
            fields[info.serialization_alias or name] = dumper
    return fields


def _field_dumper(model: type[BaseModel], name: str) -> Dumper | None:
    # 'schemas' is plain_dump's business (and an extension's own is not handled). Read-only
    # attributes are dropped by a creation request, write-only ones are not stored: the
    # request parsers leave those out, so they need no fast path.
    mutability = model.get_field_annotation(name, Mutability)
    if name == "schemas" or mutability in (Mutability.read_only, Mutability.write_only):
        return None
    root = model.get_field_root_type(name)
    dumper = _value_dumper(root)
    if dumper is None or not model.get_field_multiplicity(name):
        return dumper
    has_primary = isclass(root) and issubclass(root, BaseModel) and "primary" in root.model_fields
    return _many(dumper, has_primary)


def _value_dumper(root: Any) -> Dumper | None:
    if root is str:
        return _string
    if root is bool:
        return _boolean
    if not isclass(root):
        return None
    if issubclass(root, ExtensibleStringEnum):
        # Another case of a canonical value is folded to it, and is left to the library.
        return _one_of(frozenset(member.value for member in root))
    if issubclass(root, Reference):
        return _reference(TypeAdapter(root))
    if issubclass(root, ComplexAttribute | Extension):
        # A complex attribute with required sub-attributes (manager) is left to the library.
        if any(
            root.get_field_annotation(name, Required) == Required.true
            for name in root.model_fields
            if name != "schemas"
        ):
            return None
        return _object(_fields(root))
    return None


def _string(value: Any) -> str:
    if type(value) is str:
        return value
    raise _Unsure


def _boolean(value: Any) -> bool:
    if type(value) is bool:  # not "True", 1, ...: the library coerces those
        return value
    raise _Unsure


def _one_of(values: frozenset[str]) -> Dumper:
    def dump(value: Any) -> str:
        if type(value) is str and value in values:
            return value
        raise _Unsure

    return dump


def _reference(adapter: TypeAdapter[Any]) -> Dumper:
    """A reference: checked by the library's own validator, dumped as given."""

    def dump(value: Any) -> str:
        if type(value) is not str:
            raise _Unsure
        try:
            adapter.validate_python(value)
        except ValidationError:
            raise _Unsure from None
        return value

    return dump


def _object(fields: dict[str, Dumper]) -> Dumper:
    """A complex value: only the attributes in ``fields``, spelled exactly; nulls and empty
    values left out, and an object left with nothing is itself left out."""

    def dump(value: Any) -> dict[str, Any] | None:
        if type(value) is not dict or not fields.keys() >= value.keys():
            raise _Unsure
        out = {}
        for name, field in fields.items():
            item = value.get(name)
            if item is not None:
                item = field(item)
                if item is not None:
                    out[name] = item
        return out or None

    return dump


def _many(entry: Dumper, has_primary: bool) -> Dumper:
    """A multi-valued attribute: empty entries left out, and at most one primary."""

    def dump(value: Any) -> list[Any] | None:
        if type(value) is not list:
            raise _Unsure
        items = [item for item in map(entry, value) if item is not None]
        if has_primary and sum(item.get("primary") is True for item in items) > 1:
            raise _Unsure
        return items or None

    return dump
