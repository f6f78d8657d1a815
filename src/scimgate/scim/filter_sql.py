"""SCIM ``filter`` and ``sortBy`` (RFC 7644 §3.4.2.2, §3.4.2.3) as SQLAlchemy Core expressions.

scim2-models parses the filter and binds each attribute path to its schema (canonical name,
type, ``caseExact``, multi-valuedness); this module turns the tree into one boolean
expression that the database evaluates, so a filter never loads rows into Python. The
expression covers ``users`` or ``groups`` only: the caller adds ``directory_id = ?``.

Where a value lives decides the SQL. Hot attributes use their indexed columns (``id``,
``userName`` and a group's ``displayName`` through their folded ``*_key`` columns,
``externalId``, ``active``, ``meta.created``/``meta.lastModified``); group membership
(``members``, a user's ``groups``) is an EXISTS on ``group_members``; everything else is
read from the stored JSON document, multi-valued attributes through an EXISTS over the
array's elements. The little JSON SQL each backend needs sits in ``_SqliteJson`` and
``_PostgresJson``. Attribute names come only from the schema and values are always bound
parameters, so nothing from the filter text is ever spliced into SQL.

Semantics, decided once for every attribute:

* Every predicate is two-valued (never SQL NULL), so ``not`` is an exact complement.
* ``ne`` is ``not eq``: an absent attribute matches ``title ne "x"``, and on a multi-valued
  attribute ``emails.value ne "x"`` matches when no value equals ``"x"`` (no emails
  included). This is what scim2-models' in-memory ``ScimFilter.match`` does, so the two
  agree. Every other operator is false on an absent attribute.
* ``x eq null`` is ``not (x pr)`` and ``x ne null`` is ``x pr``; other operators refuse null.
* ``pr``: not null, not ``""``, not ``[]``, not ``{}``.
* A comparison on a multi-valued attribute matches when any element matches; on a complex
  one without a sub-attribute it compares ``.value`` (``emails eq "x"``).
* Strings compare case-insensitively unless the schema says ``caseExact`` (``id``,
  ``externalId``, ``members.value``, ``manager.value``...). ``userName`` and a group's
  ``displayName`` compare their stored keys with the value folded the same way
  (``scimgate.directory.keys.fold``: NFC + Unicode casefold), for every operator, so
  ``eq`` uses the unique index and ``sw`` agrees with ``eq``. Other attributes compare
  ``lower(column) = lower(:value)``; SQLite's built-in ``lower()`` folds ASCII letters
  only, so there ``"É"`` and ``"é"`` differ (PostgreSQL folds them).
* ``co``/``sw``/``ew`` are LIKE with ``%``, ``_`` and the escape character escaped. They rely
  on LIKE being case-sensitive, which ``store.engine`` sets on SQLite
  (``PRAGMA case_sensitive_like=ON``). ``gt``/``ge``/``lt``/``le`` compare strings in the
  database's collation (byte order on SQLite, the database collation on PostgreSQL) and
  dateTimes by instant; they are refused on booleans and binaries.
"""

from __future__ import annotations

import functools
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from inspect import isclass
from typing import Any, Literal

from scim2_models import BaseModel, EnterpriseUser, Extension, Group, Path, SCIMException, User
from scim2_models import ScimFilter as _ScimFilter
from scim2_models.path import (
    AttributeBinding,
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    FromClause,
    Table,
    Text,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

from scimgate.directory.keys import fold
from scimgate.directory.records import ColumnMatch
from scimgate.scim.errors import ScimError, invalid_filter, invalid_value
from scimgate.store import tables

__all__ = [
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_LENGTH",
    "MAX_FILTER_TERMS",
    "column_match",
    "compile_filter",
    "sort_expression",
]

ResourceType = Literal["User", "Group"]

MAX_FILTER_LENGTH = 4096
"""Longest filter accepted, in characters."""
MAX_FILTER_DEPTH = 16
"""Deepest nesting of ``not``/``and``/``or``/``[...]`` accepted."""
MAX_FILTER_TERMS = 100
"""Most comparisons and presence tests in one filter: each may become a subquery."""

_MODELS: dict[str, type[BaseModel]] = {"User": User[EnterpriseUser], "Group": Group}
_ESCAPE = "/"
_ORDERING: dict[CompareOperator, Callable[[Any, Any], Any]] = {
    CompareOperator.gt: operator.gt,
    CompareOperator.ge: operator.ge,
    CompareOperator.lt: operator.lt,
    CompareOperator.le: operator.le,
}
_LIKE = {
    CompareOperator.co: "%{}%",
    CompareOperator.sw: "{}%",
    CompareOperator.ew: "%{}",
}

Kind = Literal["string", "boolean", "datetime", "binary", "number", "complex"]
JsonPath = tuple[str | int, ...]
Bool = ColumnElement[bool]


# --------------------------------------------------------------------------- public API


def compile_filter(text: str, resource_type: ResourceType, dialect: str) -> ColumnElement[bool]:
    """The WHERE condition selecting the resources of ``resource_type`` matching ``text``.

    Raises ScimError 400 ``invalidFilter`` for a syntax error, an unknown attribute, an
    operator the attribute's type does not allow, a bad value, or a filter over the limits.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid_filter(
            f"the filter is {len(text)} characters long; at most {MAX_FILTER_LENGTH} are allowed"
        )
    try:
        ast = _ScimFilter(text).ast
    except (SCIMException, ValueError) as exc:
        raise invalid_filter(_syntax_detail(text, exc)) from exc
    _check_shape(ast, text)
    scope = _ResourceScope(resource_type, _json_dialect(dialect))
    try:
        return _Compiler(scope).visit(ast)
    except ScimError as exc:
        raise invalid_filter(f"{exc.detail}, in the filter {_quote(text)}") from exc


# `attr eq "value"` with a plain value (no escapes): the rest goes to the full parser.
_SIMPLE_EQ = re.compile(r'\s*([A-Za-z]+)\s+[eE][qQ]\s+"([^"\\]*)"\s*')
_MATCH_COLUMNS: dict[str, dict[str, tuple[str, bool]]] = {
    # attribute (folded) -> (indexed column, whether the value is folded as its key is)
    "User": {
        "id": ("id", False),
        "externalid": ("external_id", False),
        "username": ("user_name_key", True),
    },
    "Group": {
        "id": ("id", False),
        "externalid": ("external_id", False),
        "displayname": ("display_name_key", True),
    },
}


# Entra's membership check: `id eq "…" and members[value eq "…"]` (or `members eq`,
# `members.value eq`), plain values; attribute names and operators in any case.
_MEMBER_CHECK = re.compile(
    r'\s*id\s+eq\s+"([^"\\]*)"\s+and\s+members'
    r'(?:\[value\s+eq\s+"([^"\\]*)"\]|(?:\.value)?\s+eq\s+"([^"\\]*)")\s*',
    re.IGNORECASE,
)


def _plain(value: str) -> bool:
    """A value the fast paths may bind as it is (the full path names a bad character)."""
    return "\x00" not in value and _is_utf8(value)


def column_match(text: str, resource_type: ResourceType) -> ColumnMatch | None:
    """The same condition :func:`compile_filter` builds, for the filters IdPs send before
    every create (``userName eq "…"``, ``externalId eq "…"``, a group's ``displayName eq
    "…"``, ``id eq "…"``), and for Entra's membership check on groups (``id eq "…" and
    members[value eq "…"]``), without parsing the filter or building an expression: the
    repositories run a statement built once. None for every other filter.

    The semantics are those of ``_ResourceScope._column`` (folded keys for ``userName`` and
    a group's ``displayName``, exact match for ``id`` and ``externalId``);
    tests/unit/test_filter_sql.py checks both paths select the same rows.
    """
    if len(text) > MAX_FILTER_LENGTH:
        return None
    match = _SIMPLE_EQ.fullmatch(text)
    if match is None:
        return _member_check(text) if resource_type == "Group" else None
    target = _MATCH_COLUMNS[resource_type].get(match.group(1).casefold())
    value = match.group(2)
    if target is None or not _plain(value):
        return None  # the full path names the attribute or the bad character
    column, folded = target
    return ColumnMatch(column, fold(value) if folded else value)


def _member_check(text: str) -> ColumnMatch | None:
    """``id eq "G" and members[value eq "M"]``: group G if M is one of its direct members
    (``id`` and ``members.value`` are caseExact), as ``_ResourceScope._membership`` has it."""
    match = _MEMBER_CHECK.fullmatch(text)
    if match is None:
        return None
    group_id, member_id = match.group(1), match.group(2) or match.group(3) or ""
    if not (_plain(group_id) and _plain(member_id)):
        return None
    return ColumnMatch("id", group_id, member=member_id)


def sort_expression(sort_by: str, resource_type: ResourceType, dialect: str) -> ColumnElement[Any]:
    """The ORDER BY key for ``sortBy``; the caller adds ``.asc()``/``.desc()``.

    Case-insensitive attributes sort by their folded or lowered value. A multi-valued
    attribute sorts by its primary element's value, or its first element's. Absent values
    are NULL, which SQLite sorts first and PostgreSQL last when ascending: use
    ``.nulls_last()`` for one order on both. Raises ScimError 400 ``invalidValue``.
    """
    try:
        path = Path(sort_by)
        attr_path = path.ast
    except (SCIMException, ValueError) as exc:
        raise invalid_value(f"sortBy {_quote(sort_by)} is not an attribute path: {exc}") from exc
    if not isinstance(attr_path, AttrPath):
        raise invalid_value(f"sortBy {_quote(sort_by)} must name one attribute")
    scope = _ResourceScope(resource_type, _json_dialect(dialect))
    try:
        return scope.sort_key(attr_path)
    except ScimError as exc:
        raise invalid_value(f"cannot sort by {_quote(sort_by)}: {exc.detail}") from exc


# --------------------------------------------------------------------------- parsing


def _quote(text: str, limit: int = 200) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _syntax_detail(text: str, exc: Exception) -> str:
    """Say where the parser stopped, quoting the text there, so an IdP admin can fix it."""
    detail = exc.detail if isinstance(exc, SCIMException) else str(exc)
    column = getattr(exc.__cause__, "column", None)
    if isinstance(column, int) and 0 < column <= len(text):
        detail += f" (at {text[column - 1 : column + 19]!r})"
    return f"invalid filter {_quote(text)}: {detail}"


def _check_shape(ast: FilterNode, text: str) -> None:
    """Refuse filters too deep or with too many terms to be worth running."""
    stack: list[tuple[FilterNode, int]] = [(ast, 1)]
    terms = 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            raise invalid_filter(
                f"the filter {_quote(text)} nests more than {MAX_FILTER_DEPTH} expressions"
            )
        if isinstance(node, Comparison | Present):
            terms += 1
        elif isinstance(node, Not):
            stack.append((node.expr, depth + 1))
        elif isinstance(node, LogicalExpr):
            stack.extend((term, depth + 1) for term in node.terms)
        elif isinstance(node, ValuePath):
            stack.append((node.val_filter, depth + 1))
    if terms > MAX_FILTER_TERMS:
        raise invalid_filter(
            f"the filter {_quote(text)} has {terms} comparisons; at most {MAX_FILTER_TERMS} "
            "are allowed"
        )


def _kind(target: Any) -> Kind:
    if not isclass(target):
        return "string"
    if issubclass(target, bool):
        return "boolean"
    if issubclass(target, datetime):
        return "datetime"
    if issubclass(target, bytes):
        return "binary"
    if issubclass(target, BaseModel):
        return "complex"
    if issubclass(target, int | float):
        return "number"
    return "string"  # str, enums of str, Reference, EmailStr


def _resolve(model: type[BaseModel], attr_path: AttrPath, *, comparison: bool) -> AttributeBinding:
    """Bind a path to the schema; a comparison on ``emails`` binds ``emails.value``."""
    try:
        binding = Path(str(attr_path)).resolve(model)
    except (SCIMException, ValueError) as exc:
        raise invalid_filter(f"invalid attribute path {str(attr_path)!r}: {exc}") from exc
    if binding is None:
        raise invalid_filter(f"unknown attribute {str(attr_path)!r}")
    item = binding.field_type
    if (
        comparison
        and binding.sub_field_name is None
        and binding.is_multivalued
        and isclass(item)
        and issubclass(item, BaseModel)
        and "value" in item.model_fields
    ):
        return _resolve(model, AttrPath(attr_path.attr, "value", attr_path.uri), comparison=False)
    return binding


def _names(binding: AttributeBinding) -> tuple[str | None, str, str | None]:
    """(extension schema or None, canonical attribute, canonical sub-attribute or None)."""
    schema, _, name = binding.urn.rpartition(":")
    head, _, sub = name.partition(".")
    is_extension = isclass(binding.model) and issubclass(binding.model, Extension)
    return (schema if is_extension else None), head, (sub or None)


# --------------------------------------------------------------------------- JSON per dialect


class _Json(ABC):
    """A JSON document in SQL (a resource's ``data``, or one array element)."""

    NULL = STRING = ARRAY = OBJECT = ""  # what type() answers for each JSON type

    def __init__(self, doc: ColumnElement[Any]) -> None:
        self.doc = doc

    @abstractmethod
    def text(self, path: JsonPath) -> ColumnElement[Any]:
        """The value at ``path`` as SQL text; NULL when absent. ``()``: a scalar element."""

    @abstractmethod
    def boolean(self, path: JsonPath) -> ColumnElement[Any]:
        """``'true'``/``'false'`` for a JSON boolean at ``path``."""

    @abstractmethod
    def type(self, path: JsonPath) -> ColumnElement[Any]:
        """The JSON type name at ``path``; NULL when absent."""

    @abstractmethod
    def elements(self, path: JsonPath, *, scalar: bool) -> tuple[FromClause, _Json]:
        """A row source of the array at ``path`` (no rows if it is not an array)."""

    def present(self, path: JsonPath) -> Bool:
        """RFC 7644 ``pr``: a value that is not null, ``""``, ``[]`` or ``{}``."""
        kind, value = self.type(path), self.text(path)
        return case(
            (kind == self.NULL, false()),
            (kind == self.STRING, value != ""),
            (kind == self.ARRAY, value != "[]"),
            (kind == self.OBJECT, value != "{}"),
            else_=kind.is_not(None),
        )


class _SqliteJson(_Json):
    NULL, STRING, ARRAY, OBJECT = "null", "text", "array", "object"

    def __init__(self, doc: ColumnElement[Any], item_type: ColumnElement[Any] | None = None):
        super().__init__(doc)
        # json_each hands an element as plain SQL text; json_extract on a non-object
        # element would fail on malformed JSON, hence the guard.
        self.item_type = item_type

    @staticmethod
    def _path(path: JsonPath) -> str:
        parts = []
        for part in path:
            if isinstance(part, int):
                parts.append(f"[{part}]")
            else:
                if '"' in part:  # names come from the schema, never from the filter
                    raise ValueError(f"unexpected JSON key {part!r}")
                parts.append(f'."{part}"')
        return "$" + "".join(parts)

    def _guarded(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        if self.item_type is None:
            return expr
        return case((self.item_type == "object", expr))

    def text(self, path: JsonPath) -> ColumnElement[Any]:
        if not path:
            return self.doc
        return self._guarded(func.json_extract(self.doc, literal(self._path(path))))

    def type(self, path: JsonPath) -> ColumnElement[Any]:
        if not path:
            return self.item_type if self.item_type is not None else func.json_type(self.doc)
        return self._guarded(func.json_type(self.doc, literal(self._path(path))))

    def boolean(self, path: JsonPath) -> ColumnElement[Any]:
        return self.type(path)  # json_type answers 'true' / 'false' for booleans

    def elements(self, path: JsonPath, *, scalar: bool) -> tuple[FromClause, _Json]:
        rows = (
            func.json_each(self.doc, literal(self._path(path)))
            .table_valued("value", "type")
            .alias()
        )
        return rows, _SqliteJson(rows.c.value, rows.c.type)


class _PostgresJson(_Json):
    NULL, STRING, ARRAY, OBJECT = "null", "string", "array", "object"

    def __init__(self, doc: ColumnElement[Any], *, scalar: bool = False):
        super().__init__(doc)
        self.scalar = scalar  # doc is already the text of a scalar element

    @staticmethod
    def _path(path: JsonPath) -> ColumnElement[Any]:
        return literal([str(part) for part in path], ARRAY(Text))

    def _at(self, path: JsonPath) -> ColumnElement[Any]:
        return self.doc.op("#>", return_type=JSONB)(self._path(path))

    def text(self, path: JsonPath) -> ColumnElement[Any]:
        if not path and self.scalar:
            return self.doc
        return self.doc.op("#>>", return_type=Text)(self._path(path))

    def type(self, path: JsonPath) -> ColumnElement[Any]:
        if not path and self.scalar:
            return case((self.doc.is_not(None), self.STRING))
        return func.jsonb_typeof(self._at(path))

    def boolean(self, path: JsonPath) -> ColumnElement[Any]:
        return self.text(path)  # #>> renders a JSON boolean as 'true' / 'false'

    def elements(self, path: JsonPath, *, scalar: bool) -> tuple[FromClause, _Json]:
        array = self._at(path)
        # jsonb_array_elements raises on a non-array (e.g. a stored JSON null): give it NULL.
        only_array = case((func.jsonb_typeof(array) == "array", array))
        function = func.jsonb_array_elements_text if scalar else func.jsonb_array_elements
        rows = function(only_array).table_valued("value").alias()
        return rows, _PostgresJson(rows.c.value, scalar=scalar)


def _json_dialect(dialect: str) -> type[_Json]:
    if dialect == "sqlite":
        return _SqliteJson
    if dialect in {"postgresql", "postgres"}:
        return _PostgresJson
    raise ValueError(f"unsupported SQL dialect {dialect!r}")


# --------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class _Operand:
    """One comparable value in SQL, and what comparing it correctly takes."""

    name: str
    expr: ColumnElement[Any]
    kind: Kind
    case_exact: bool
    present: Bool
    nullable: bool = True
    folded: bool = False  # expr holds keys.fold() text: fold the value the same way
    json_bool: bool = False  # expr is 'true'/'false', a JSON boolean rendered as text


def _escape_like(value: str) -> str:
    for char in (_ESCAPE, "%", "_"):
        value = value.replace(char, _ESCAPE + char)
    return value


def _check(operand: _Operand, op: CompareOperator, value: Any) -> None:
    """Refuse operators the attribute's type does not allow and values of the wrong type."""
    name, kind = operand.name, operand.kind
    if kind == "complex":
        raise invalid_filter(
            f"{name!r} is a complex attribute: compare one of its sub-attributes instead"
        )
    if kind == "number":
        raise invalid_filter(f"filtering on the number attribute {name!r} is not supported")
    if kind in {"boolean", "binary"} and op is not CompareOperator.eq:
        raise invalid_filter(
            f"operator {op.value!r} is not allowed on the {kind} attribute {name!r}"
        )
    if kind == "datetime" and op in _LIKE:
        raise invalid_filter(
            f"operator {op.value!r} is not allowed on the dateTime attribute {name!r}"
        )
    if kind == "boolean" and not isinstance(value, bool):
        raise invalid_filter(f"{name!r} is a boolean: compare it with true or false, not {value!r}")
    if kind != "boolean" and not isinstance(value, str):
        raise invalid_filter(f"{name!r} takes a string value, not {value!r}")
    if isinstance(value, str) and ("\x00" in value or not _is_utf8(value)):
        # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be sent at all:
        # refuse them on both backends rather than fail with a server error on one.
        raise invalid_filter(f"the value {value!r} for {name!r} contains an invalid character")


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _datetime(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid_filter(f"{value!r} is not an ISO 8601 dateTime (for {name!r})") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _compare(operand: _Operand, op: CompareOperator, value: Any) -> Bool:
    """``operand op value`` as a two-valued SQL condition."""
    if value is None:
        if op is CompareOperator.eq:
            return not_(operand.present)
        if op is CompareOperator.ne:
            return operand.present
        raise invalid_filter(f"operator {op.value!r} cannot compare {operand.name!r} with null")
    if op is CompareOperator.ne:
        return not_(_compare(operand, CompareOperator.eq, value))
    _check(operand, op, value)
    expr = operand.expr
    condition: Bool
    if operand.kind == "boolean":
        condition = expr == (("true" if value else "false") if operand.json_bool else value)
    elif operand.kind == "datetime":
        when = _datetime(operand.name, value)
        condition = expr == when if op is CompareOperator.eq else _ORDERING[op](expr, when)
    elif operand.folded or operand.case_exact or operand.kind == "binary":
        text = fold(value) if operand.folded else value
        if op in _LIKE:
            condition = expr.like(_LIKE[op].format(_escape_like(text)), escape=_ESCAPE)
        else:
            condition = expr == text if op is CompareOperator.eq else _ORDERING[op](expr, text)
    else:
        lowered = func.lower(expr)
        if op in _LIKE:
            pattern = func.lower(literal(_LIKE[op].format(_escape_like(value)), Text))
            condition = lowered.like(pattern, escape=_ESCAPE)
        else:
            bound = func.lower(literal(value, Text))
            condition = (
                lowered == bound if op is CompareOperator.eq else _ORDERING[op](lowered, bound)
            )
    if not operand.nullable:
        return condition
    if isinstance(expr, Column):  # keeps the condition sargable for the column's index
        return and_(expr.is_not(None), condition)
    return func.coalesce(condition, false())  # evaluates a JSON extraction once


# --------------------------------------------------------------------------- scopes


class _Scope(ABC):
    """Where attribute names are resolved: a resource, or one element of a collection."""

    @abstractmethod
    def compare(self, node: Comparison) -> Bool: ...

    @abstractmethod
    def present(self, node: Present) -> Bool: ...

    @abstractmethod
    def select(self, node: ValuePath) -> Bool: ...


class _Compiler(FilterVisitor[Bool]):
    """Walks the filter tree, delegating attribute look-ups to a scope."""

    def __init__(self, scope: _Scope) -> None:
        self.scope = scope

    def visit_comparison(self, node: Comparison) -> Bool:
        return self.scope.compare(node)

    def visit_present(self, node: Present) -> Bool:
        return self.scope.present(node)

    def visit_not(self, node: Not) -> Bool:
        return not_(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> Bool:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op is LogicalOperator.and_ else or_(*terms)

    def visit_value_path(self, node: ValuePath) -> Bool:
        if node.sub_attr is not None:
            raise invalid_filter(f"{str(node)!r} is a PATCH path, not a filter")
        return self.scope.select(node)


class _ItemScope(_Scope):
    """One element of a multi-valued attribute: the inside of ``emails[...]``."""

    def __init__(self, owner: AttributeBinding, label: str) -> None:
        item = owner.field_type
        self.item_model = item if isclass(item) and issubclass(item, BaseModel) else None
        self.owner = owner
        self.label = label  # e.g. "emails", for messages

    @abstractmethod
    def operand(self, name: str | None, kind: Kind, case_exact: bool) -> _Operand:
        """The element's sub-attribute ``name`` (None: the element itself, for scalars)."""

    def _operand_for(self, attr_path: AttrPath) -> _Operand:
        if self.item_model is None:  # a list of scalars: "value" is the element itself
            if attr_path.attr.lower() != "value" or attr_path.sub_attr or attr_path.uri:
                raise invalid_filter(
                    f"unknown attribute {str(attr_path)!r} in {self.label}[...]: "
                    "its elements are plain values, named 'value'"
                )
            return self.operand(None, _kind(self.owner.target_type), self.owner.case_exact)
        try:
            binding = _resolve(self.item_model, attr_path, comparison=False)
        except ScimError as exc:
            raise invalid_filter(f"{exc.detail} in {self.label}[...]") from exc
        return self.operand(binding.urn, _kind(binding.target_type), binding.case_exact)

    def compare(self, node: Comparison) -> Bool:
        return _compare(self._operand_for(node.attr_path), node.op, node.value)

    def present(self, node: Present) -> Bool:
        return self._operand_for(node.attr_path).present

    def select(self, node: ValuePath) -> Bool:
        raise invalid_filter(f"value selections cannot nest: {str(node)!r}")


class _JsonItem(_ItemScope):
    def __init__(self, owner: AttributeBinding, label: str, item: _Json) -> None:
        super().__init__(owner, label)
        self.item = item

    def operand(self, name: str | None, kind: Kind, case_exact: bool) -> _Operand:
        path: JsonPath = (name,) if name else ()
        label = f"{self.label}.{name or 'value'}"
        if kind in {"datetime", "number"}:  # none in the SCIM core schemas
            raise invalid_filter(f"filtering on {label!r} is not supported")
        if kind == "boolean":
            expr, json_bool = self.item.boolean(path), True
        else:
            expr, json_bool = self.item.text(path), False
        return _Operand(label, expr, kind, case_exact, self.item.present(path), json_bool=json_bool)


class _MembershipItem(_ItemScope):
    """A ``group_members`` row seen as a Group's ``members`` or a User's ``groups`` element."""

    def __init__(self, owner: AttributeBinding, label: str, columns: dict[str, _Operand]):
        super().__init__(owner, label)
        self.columns = columns

    def operand(self, name: str | None, kind: Kind, case_exact: bool) -> _Operand:
        found = self.columns.get(name or "value")
        if found is None:
            raise invalid_filter(f"'{self.label}.{name}' cannot be filtered on")
        return found


@dataclass(frozen=True)
class _Collection:
    """A multi-valued attribute: its element scope and the rows to EXISTS over."""

    item: _ItemScope
    rows: FromClause
    table: Table  # the resource table the rows are correlated with
    link: Bool  # ties the rows to the outer resource row (true() for JSON arrays)
    nonempty: Bool | None = None  # a cheaper ``pr`` than EXISTS, when there is one

    def exists(self, condition: Bool) -> Bool:
        query = select(literal(1)).select_from(self.rows).where(and_(self.link, condition))
        return exists(query.correlate(self.table))

    def present(self) -> Bool:
        return self.nonempty if self.nonempty is not None else self.exists(true())


@functools.cache
def _membership_sql(
    resource_type: ResourceType,
) -> tuple[FromClause, dict[str, _Operand], Bool]:
    """The rows, element columns and link of a membership filter, built once per resource
    type: aliasing a table copies its columns, foreign keys and their event hooks, which
    was a fifth of a membership check's CPU when done per request. SQLAlchemy constructs
    are immutable, and sharing one alias is sound because each clause of a filter puts it
    in an EXISTS of its own (siblings in SQL, never nested: a value filter cannot hold
    another membership)."""
    rows = tables.group_members.alias("memberships")
    if resource_type == "Group":
        member_type = case((rows.c.user_id.is_not(None), "User"), else_="Group")
        columns = {
            "value": _Operand(
                "members.value", rows.c.member_id, "string", True, true(), nullable=False
            ),
            "type": _Operand("members.type", member_type, "string", False, true(), nullable=False),
        }
        return rows, columns, rows.c.group_id == tables.groups.c.id
    group = tables.groups.alias("member_of")
    display = (
        select(group.c.display_name_key).where(group.c.id == rows.c.group_id)
    ).scalar_subquery()
    columns = {
        "value": _Operand("groups.value", rows.c.group_id, "string", True, true(), nullable=False),
        "display": _Operand("groups.display", display, "string", False, true(), folded=True),
        # Only direct memberships are stored (no nested-group expansion).
        "type": _Operand(
            "groups.type", literal("direct", Text), "string", False, true(), nullable=False
        ),
    }
    return rows, columns, rows.c.user_id == tables.users.c.id


class _ResourceScope(_Scope):
    """Attributes of a User or a Group row."""

    def __init__(self, resource_type: ResourceType, json: type[_Json]) -> None:
        if resource_type not in _MODELS:
            raise ValueError(f"unknown resource type {resource_type!r}")
        self.resource_type = resource_type
        self.model = _MODELS[resource_type]
        self.table = tables.users if resource_type == "User" else tables.groups
        self.doc = json(self.table.c.data)

    # -- single-valued attributes

    def _column(self, name: str) -> _Operand | None:
        """The indexed columns that stand in for attributes, and server-owned ``meta``."""
        t = self.table
        is_user = self.resource_type == "User"
        if name == "id":
            return _Operand(name, t.c.id, "string", True, true(), nullable=False)
        if name == "externalId":
            return _Operand(name, t.c.external_id, "string", True, _non_empty(t.c.external_id))
        if name == "userName" and is_user:
            present = t.c.user_name != ""
            return _Operand(
                name, t.c.user_name_key, "string", False, present, nullable=False, folded=True
            )
        if name == "displayName" and is_user:
            return _Operand(name, t.c.display_name, "string", False, _non_empty(t.c.display_name))
        if name == "displayName":
            present = t.c.display_name != ""
            return _Operand(
                name, t.c.display_name_key, "string", False, present, nullable=False, folded=True
            )
        if name == "active" and is_user:
            # NULL when the resource has no `active`: then neither `eq true` nor `eq false`
            # matches, as for any absent attribute, and resource and filter agree.
            return _Operand(name, t.c.active, "boolean", False, t.c.active.is_not(None))
        if name == "meta.created":
            return _Operand(name, t.c.created_at, "datetime", False, true(), nullable=False)
        if name == "meta.lastModified":
            return _Operand(name, t.c.updated_at, "datetime", False, true(), nullable=False)
        if name == "meta.resourceType":
            const = literal(self.resource_type, Text)
            return _Operand(name, const, "string", True, true(), nullable=False)
        if name == "meta":
            return _Operand(name, t.c.id, "complex", False, true(), nullable=False)
        if name.startswith("meta.") or name == "password":
            raise invalid_filter(f"{name!r} cannot be filtered on")
        return None

    def _operand(self, binding: AttributeBinding) -> _Operand:
        schema, head, sub = _names(binding)
        name = f"{head}.{sub}" if sub else head
        if schema is None and (column := self._column(name)) is not None:
            return column
        path: JsonPath = tuple(p for p in (schema, head, sub) if p is not None)
        label = binding.urn if schema else name
        kind = _kind(binding.target_type)
        present = self.doc.present(path)
        if kind == "boolean":
            return _Operand(label, self.doc.boolean(path), kind, False, present, json_bool=True)
        if kind in {"datetime", "number"}:
            raise invalid_filter(f"filtering on {label!r} is not supported")
        return _Operand(label, self.doc.text(path), kind, binding.case_exact, present)

    # -- multi-valued attributes

    def _collection(self, binding: AttributeBinding) -> _Collection:
        schema, head, _ = _names(binding)
        if schema is None and head in {"members", "groups"}:
            return self._membership(binding, head)
        path: JsonPath = (schema, head) if schema else (head,)
        item_model = binding.field_type
        scalar = not (isclass(item_model) and issubclass(item_model, BaseModel))
        rows, item = self.doc.elements(path, scalar=scalar)
        item_scope = _JsonItem(binding, head, item)
        return _Collection(item_scope, rows, self.table, true(), self.doc.present(path))

    def _membership(self, binding: AttributeBinding, head: str) -> _Collection:
        """``members`` of a Group, ``groups`` of a User: rows of ``group_members``."""
        rows, columns, link = _membership_sql(self.resource_type)
        return _Collection(_MembershipItem(binding, head, columns), rows, self.table, link)

    # -- the scope interface

    def compare(self, node: Comparison) -> Bool:
        binding = _resolve(self.model, node.attr_path, comparison=True)
        if not binding.is_multivalued:
            return _compare(self._operand(binding), node.op, node.value)
        collection = self._collection(binding)
        element = _element(collection, binding)
        op, value = node.op, node.value
        if value is None and op in {CompareOperator.eq, CompareOperator.ne}:
            found = collection.exists(element.present)
            return not_(found) if op is CompareOperator.eq else found
        if op is CompareOperator.ne:  # no element equals the value
            return not_(collection.exists(_compare(element, CompareOperator.eq, value)))
        return collection.exists(_compare(element, op, value))

    def present(self, node: Present) -> Bool:
        binding = _resolve(self.model, node.attr_path, comparison=False)
        if not binding.is_multivalued:
            return self._operand(binding).present
        collection = self._collection(binding)
        if binding.sub_field_name is None:
            return collection.present()
        return collection.exists(_element(collection, binding).present)

    def select(self, node: ValuePath) -> Bool:
        binding = _resolve(self.model, node.attr_path, comparison=False)
        if not binding.is_multivalued:
            raise invalid_filter(
                f"{str(node.attr_path)!r} is not multi-valued: it has no values to select"
            )
        collection = self._collection(binding)
        return collection.exists(_Compiler(collection.item).visit(node.val_filter))

    # -- sorting

    def sort_key(self, attr_path: AttrPath) -> ColumnElement[Any]:
        binding = _resolve(self.model, attr_path, comparison=True)
        if not binding.is_multivalued:
            operand = self._operand(binding)
            if operand.kind == "complex":
                raise invalid_filter(f"{operand.name!r} is complex: sort by a sub-attribute")
            return _sort_form(operand)
        schema, head, sub = _names(binding)
        if schema is None and head in {"members", "groups"}:
            raise invalid_filter(f"{head!r} is not sortable")
        collection = self._collection(binding)
        element = _element(collection, binding)
        if element.kind == "complex":
            raise invalid_filter(f"{head!r} is complex: sort by a sub-attribute")
        array: JsonPath = (schema, head) if schema else (head,)
        first = self.doc.text((*array, 0, sub) if sub else (*array, 0))
        item_model = collection.item.item_model
        if item_model is None or "primary" not in item_model.model_fields:
            return _sort_form(_with_expr(element, first))
        primary = collection.item.operand("primary", "boolean", False)
        chosen = (
            select(element.expr)
            .select_from(collection.rows)
            .where(_compare(primary, CompareOperator.eq, True))
            .limit(1)
            .correlate(self.table)
            .scalar_subquery()
        )
        return _sort_form(_with_expr(element, func.coalesce(chosen, first)))


def _element(collection: _Collection, binding: AttributeBinding) -> _Operand:
    """The operand a comparison on a multi-valued attribute reads from each element."""
    _, _, sub = _names(binding)
    kind = _kind(binding.target_type)
    return collection.item.operand(sub, kind, binding.case_exact)


def _with_expr(operand: _Operand, expr: ColumnElement[Any]) -> _Operand:
    return _Operand(operand.name, expr, operand.kind, operand.case_exact, operand.present)


def _sort_form(operand: _Operand) -> ColumnElement[Any]:
    if operand.kind == "string" and not (operand.case_exact or operand.folded):
        return func.lower(operand.expr)
    return operand.expr


def _non_empty(column: ColumnElement[Any]) -> Bool:
    return and_(column.is_not(None), column != "")
