"""Parameters written into SQL text as literals, for PostgreSQL's simple-query messages.

A request's statements go to PostgreSQL as one simple-query message (several statements,
one round trip), so their parameters are bound on the client. psycopg's ``mogrify`` does
that correctly but slowly: a new ``Transformer`` and a parsed query per call, and ~5 µs per
``datetime``; it was ~13 % of the server's CPU in the mixed cycle. :class:`Literals` keeps
one ``Transformer`` per connection, splits each statement's SQL once, and writes the common
values itself:

- ASCII ``str`` without NUL: ``'…'`` with quotes doubled, which is exact only while the
  server has ``standard_conforming_strings`` on (a backslash is then an ordinary
  character); checked once per connection, and with it off every string goes to psycopg;
- ``None``, ``bool``, ``int`` in ``[0, 2**31)`` (a negative one would need psycopg's
  leading space: ``1-%s`` with ``-1`` must not become a ``--`` comment);
- ``datetime``: ``'<isoformat>'::timestamptz`` (aware) or ``::timestamp`` (naive).

Everything else (non-ASCII text, NUL, arrays, floats, large or negative ints, …) goes to
psycopg's own ``as_literal``, so its escaping and its errors (``DataError`` for NUL,
``UnicodeEncodeError`` for a lone surrogate) are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, adapt

__all__ = ["Literals"]

_PLACEHOLDER = re.compile(r"%\(([^()]+)\)s|%%")
_MAX_INT = 2**31
_TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {}
_TEMPLATES_MAX = 2048
"""Statements are a fixed set (compiled once each), so the cache stays small; the bound
only guards against a caller that builds SQL text per call."""


def _template(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with each ``%(name)s`` as ``{}`` (for ``str.format``) and ``%%`` as ``%``,
    and the names in order (a name used twice appears twice)."""
    found = _TEMPLATES.get(sql)
    if found is not None:
        return found
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "%"
        names.append(match.group(1))
        return "{}"

    braced = sql.replace("{", "{{").replace("}", "}}")
    found = (_PLACEHOLDER.sub(placeholder, braced), tuple(names))
    if len(_TEMPLATES) < _TEMPLATES_MAX:
        _TEMPLATES[sql] = found
    return found


class Literals:
    """Client-side binding for one psycopg connection (see the module docstring)."""

    def __init__(self, driver: AsyncConnection[Any]) -> None:
        self._as_literal: Callable[[Any], bytes] = adapt.Transformer(driver).as_literal
        self._encoding = driver.info.encoding
        conforming = driver.info.parameter_status("standard_conforming_strings") == "on"
        self._plain_strings = conforming and self._encoding == "utf-8"

    def bind(self, sql: str, args: Mapping[str, Any]) -> str:
        """``sql`` (named ``%(name)s`` placeholders, psycopg's style) with ``args``
        written in as literals."""
        text, names = _template(sql)
        literal = self.literal
        return str(text.format(*[literal(args[name]) for name in names]))

    def literal(self, value: Any) -> str:
        kind = type(value)
        if kind is str:
            if self._plain_strings and value.isascii() and "\x00" not in value:
                quoted = value.replace("'", "''")
                return f"'{quoted}'"
        elif value is None:
            return "NULL"
        elif kind is datetime:
            cast = "'::timestamptz" if value.utcoffset() is not None else "'::timestamp"
            return f"'{value.isoformat(' ')}{cast}"
        elif kind is bool:
            return "true" if value else "false"
        elif kind is int and 0 <= value < _MAX_INT:
            return str(value)
        return bytes(self._as_literal(value)).decode(self._encoding)
