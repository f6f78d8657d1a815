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

**Server-side prepared statements.** PostgreSQL parses, analyses and plans every statement
of a simple-query message anew: ~60 % of its CPU in the mixed cycle. :meth:`Literals.statement`
sends ``EXECUTE name(literal, …)`` instead, after a one-time ``PREPARE name AS …`` on that
connection (a round trip of its own, just before). The name is a hash of the SQL text, so a name
means the same statement on any connection, from any process or version. SQL-level
prepared statements belong to a server session: behind PgBouncer in transaction or
statement mode they are missing or already there on the server connection a transaction
lands on. Turn them off there (``SCIMGATE_PG_PREPARED_STATEMENTS=false``); if they are left
on, the first such error (``26000``, ``42P05``) turns them off for the whole process with a
warning (:func:`lost`), and the transaction is replayed (see ``store.engine``).

**Plans that follow a growing table.** PostgreSQL keeps a prepared statement's generic plan
until the statistics or the definition of a table it reads change. Made while a table is
nearly empty, where its indexes tie, it can be the wrong one once the table has grown,
until autovacuum's next ``ANALYZE``: the match before every create walked a whole directory
that way (docs/performance.md, round of 2026-12-04). A statement registered with
:func:`replan_often` is prepared anew on a connection after 16, 32, 64 … executions (at most
every 4,096), so a stale plan lives a bounded number of executions while the table grows
fast, and costs a re-``PREPARE`` (and five custom plans) a few thousand executions apart
later on.
"""

from __future__ import annotations

import hashlib
import logging
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, adapt

__all__ = [
    "LOST_SQLSTATES",
    "REPLAN_FIRST",
    "REPLAN_MAX",
    "Literals",
    "lost",
    "prepare_anew",
    "replan_often",
    "stale_plan",
]

log = logging.getLogger("scimgate.store")

LOST_SQLSTATES = frozenset({"26000", "42P05"})
"""``invalid_sql_statement_name`` (no such prepared statement on this server session) and
``duplicate_prepared_statement``: what sharing one server session between clients causes."""

_PLACEHOLDER = re.compile(r"%\(([^()]+)\)s|%%")
_MAX_INT = 2**31
_TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {}
_TEMPLATES_MAX = 2048
"""Statements are a fixed set (compiled once each), so the cache stays small; the bound
only guards against a caller that builds SQL text per call."""
_PREPARED_FORMS: dict[str, tuple[str, tuple[str, ...], str]] = {}
_BY_DRIVER: weakref.WeakKeyDictionary[Any, Literals] = weakref.WeakKeyDictionary()
_lost = False
_STALE_PLAN = "cached plan must not change result type"
_schema_epoch = 0
"""Bumped when PostgreSQL refuses a prepared statement because a column it returns changed
type (see :func:`stale_plan`): every connection then prepares its statements anew."""
_REPLANNED: set[str] = set()
REPLAN_FIRST = 16
"""Executions of a :func:`replan_often` statement before its first re-``PREPARE``; the
interval doubles each time, up to :data:`REPLAN_MAX`."""
REPLAN_MAX = 4096


def replan_often(sql: str) -> None:
    """Prepare ``sql`` anew now and then on each connection (see the module docstring):
    for statements whose best index depends on how big a table has grown. Keyed by the SQL
    text: every statement with that text is prepared anew alike."""
    _REPLANNED.add(sql)


def lost(sqlstate: str) -> None:
    """Prepared statements went missing on a server session (a connection pooler shares
    sessions): stop using them in this process."""
    global _lost
    if not _lost:
        _lost = True
        log.warning(
            "PostgreSQL prepared statements failed (SQLSTATE %s): a connection pooler in "
            "transaction or statement mode shares server sessions; this process no longer "
            "prepares statements. Set SCIMGATE_PG_PREPARED_STATEMENTS=false for it.",
            sqlstate,
        )


def stale_plan(error: object) -> bool:
    """Whether ``error`` is PostgreSQL refusing a prepared statement whose result columns
    changed type since it was prepared (``ALTER TABLE … TYPE`` by a migration of another
    process: a newer version rolling out). Nothing of the unit that met it was
    committed: it can be replayed, once :func:`prepare_anew` has run."""
    return getattr(error, "sqlstate", None) == "0A000" and _STALE_PLAN in str(error)


def prepare_anew() -> None:
    """Every connection of this process prepares its statements anew (``DEALLOCATE`` and
    ``PREPARE``) before it runs them again (see :func:`stale_plan`)."""
    global _schema_epoch
    _schema_epoch += 1
    log.info("a column changed type under prepared statements: preparing them anew")


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


def _prepared_form(sql: str) -> tuple[str, tuple[str, ...], str]:
    """``(name, parameter names in $-order, the SQL with $1…$n)`` for ``PREPARE``."""
    found = _PREPARED_FORMS.get(sql)
    if found is None:
        text, names = _template(sql)
        order = tuple(dict.fromkeys(names))
        position = {name: f"${n}" for n, name in enumerate(order, start=1)}
        digest = hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()
        found = (f"scimgate_{digest}", order, text.format(*[position[n] for n in names]))
        if len(_PREPARED_FORMS) < _TEMPLATES_MAX:
            _PREPARED_FORMS[sql] = found
    return found


class Literals:
    """Client-side binding for one psycopg connection (see the module docstring)."""

    def __init__(self, driver: AsyncConnection[Any], *, prepare: bool = False) -> None:
        self._as_literal: Callable[[Any], bytes] = adapt.Transformer(driver).as_literal
        self._encoding = driver.info.encoding
        conforming = driver.info.parameter_status("standard_conforming_strings") == "on"
        self._plain_strings = conforming and self._encoding == "utf-8"
        self._prepare = prepare
        self._prepared: dict[str, int] = {}
        """Names prepared on this connection's server session, and how many more times
        each runs before it is prepared anew (-1: never)."""
        self._interval: dict[str, int] = {}
        """Executions from one ``PREPARE`` of a :func:`replan_often` statement to the
        next (0 until its first ``PREPARE`` has run)."""
        self._epoch = _schema_epoch

    @classmethod
    def of(cls, driver: AsyncConnection[Any], *, prepare: bool) -> Literals:
        """The one instance of a psycopg connection: what it prepared lives as long as
        the connection (a ``PostgresConnection`` wraps it for one loan at a time)."""
        found = _BY_DRIVER.get(driver)
        if found is None:
            found = _BY_DRIVER[driver] = cls(driver, prepare=prepare)
        return found

    @property
    def prepares(self) -> bool:
        """Whether :meth:`statement` uses prepared statements now."""
        return self._prepare and not _lost

    def statement(self, sql: str, args: Mapping[str, Any], prepares: dict[str, str]) -> str:
        """A whole statement for a simple-query message: ``EXECUTE`` of the statement
        prepared on this connection, or ``sql`` with its literals. A statement not
        prepared yet adds its ``PREPARE`` to ``prepares`` (name → SQL): the caller sends
        those before the message, and records them with :meth:`prepared` once they ran."""
        if not self.prepares:
            return self.bind(sql, args)
        if self._epoch != _schema_epoch:  # see prepare_anew
            self._epoch = _schema_epoch
            self._prepared = dict.fromkeys(self._prepared, 0)
        name, order, dollar = _prepared_form(sql)
        left = self._prepared.get(name)
        if left is None:
            prepares[name] = f"PREPARE {name} AS {dollar}"
            if sql in _REPLANNED:
                self._interval.setdefault(name, 0)
        elif left == 0:
            prepares[name] = f"DEALLOCATE {name};PREPARE {name} AS {dollar}"
        elif left > 0:
            self._prepared[name] = left - 1
        if not order:
            return f"EXECUTE {name}"
        literal = self.literal
        return f"EXECUTE {name}({', '.join([literal(args[n]) for n in order])})"

    def prepared(self, names: Iterable[str]) -> None:
        """These statements now exist (were prepared anew) on the connection's server
        session; each runs once in the message that needed it."""
        for name in names:
            interval = self._interval.get(name)
            if interval is None:
                self._prepared[name] = -1
                continue
            interval = min(2 * interval, REPLAN_MAX) if interval else REPLAN_FIRST
            self._interval[name] = interval
            self._prepared[name] = interval - 1

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
