"""Hot statements, compiled once per dialect by SQLAlchemy and run straight on the driver.

``conn.execute(statement)`` costs ~30 µs of CPU per statement on SQLite and ~100 µs on
PostgreSQL before the driver is even called (execution context, compiled-cache lookup,
parameter and result processing set up anew, events): 40 % of a ``GET /Users/{id}``. The
few statements every SCIM request runs are wrapped in :class:`Prepared` instead: SQLAlchemy
still writes the SQL and supplies every type conversion (its own bind and result
processors, our ``UTCDateTime`` and JSON types), but only once; each execution is then a
driver call and a loop over the row. Errors come back as SQLAlchemy's own exception types
(``IntegrityError``, ``DBAPIError`` with the driver's ``sqlstate``), so callers cannot tell
the difference.

Only plain statements qualify: named bind parameters (``bindparam("x")``), no expanding
``IN`` lists, no literal values needing render-time processing.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from scimgate.store.literals import replan_often

__all__ = ["Prepared", "Rows", "keep_warm", "warm_statements"]

Processor = Callable[[Any], Any] | None
_WARM: list[Prepared] = []
_SAMPLES: dict[type, Any] = {
    str: "scimgate-warm",
    int: 1,
    bool: False,
    datetime: datetime(2000, 1, 1, tzinfo=UTC),
    dict: {},
}
"""A value per Python type for :meth:`Prepared.sample_parameters`: what the planner sees
when a new session is warmed (nothing is executed). A text bind of no declared type takes
the ``str`` one."""


def keep_warm(*statements: Prepared) -> None:
    """Declare statements every provisioning cycle runs on PostgreSQL: a new session
    there prepares and plans them before it serves a request (see
    :meth:`~scimgate.store.connections.PostgresConnection.warm`). Only statements valid
    on PostgreSQL."""
    _WARM.extend(s for s in statements if s not in _WARM)


def warm_statements() -> tuple[Prepared, ...]:
    """The statements declared with :func:`keep_warm`, in declaration order."""
    return tuple(_WARM)


class Rows:
    """The subset of SQLAlchemy's ``Result`` the repositories use, over fetched rows."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if not self._rows:
            raise sa_exc.NoResultFound("expected exactly one row, got none")
        if len(self._rows) > 1:
            raise sa_exc.MultipleResultsFound("expected exactly one row, got several")
        return self._rows[0][0]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    """Bind parameter names, in the order the driver takes them (positional dialects)."""
    positional: bool
    row: Any
    """A namedtuple class for result rows, or None for statements returning none."""
    results: tuple[Processor, ...]
    reads_only: bool
    """A plain ``SELECT`` (locking ones included): it changes no data, so it may share a
    round trip with a precondition that could still fail (see ``Conn.precede``)."""
    values: tuple[str, str] | None
    """For a plain ``INSERT … VALUES (…)``: the SQL up to ``VALUES`` and the row
    template, so that a batch can be sent as one multi-row statement."""
    slots: tuple[tuple[str, Any, Processor], ...]
    """``(name, default, bind processor)`` per driver argument, in ``names`` order (the
    default: the value of a bind the statement itself fixes, ``literal(0)``): one pass per
    row with nothing else to look up (a batch of ten events binds 60 values)."""


class Prepared:
    """A statement run on the driver, with SQLAlchemy's SQL text and type processing."""

    def __init__(
        self,
        statement: ClauseElement,
        *,
        column_keys: tuple[str, ...] | None = None,
        deferrable: bool = False,
        replan: bool = False,
    ) -> None:
        """``column_keys``: for an ``insert()`` without ``.values()``, the columns every
        execution supplies (binds named after the columns, as ``conn.execute`` does).

        ``deferrable``: inside a transaction, the statement may be sent with the next one
        (or with COMMIT) on PostgreSQL; only for statements whose caller reads no result,
        not even ``rowcount``, and handles its errors through ``execute(on_error=…)``
        rather than ``try`` around the call (a batch executed with a list of parameters
        is always deferrable).

        ``replan``: on PostgreSQL, prepare the statement anew on a connection now and then
        (:func:`scimgate.store.literals.replan_often`), for one whose best index depends on
        how big a table has grown."""
        self.statement = statement
        self.column_keys = column_keys
        self.deferrable = deferrable
        self.replan = replan
        self._by_dialect: dict[str, _Compiled] = {}
        self._samples: dict[str, dict[str, Any]] = {}

    def sample_parameters(self, dialect: Dialect) -> dict[str, Any]:
        """A value of the right type for every bind the statement leaves to its caller,
        for planning it without real data (an ``ARRAY`` takes a one-element list). Built
        once per dialect: every new session plans with them."""
        found = self._samples.get(dialect.name)
        if found is None:
            compiled = self._sqlalchemy_compiled(dialect)
            found = self._samples[dialect.name] = {
                name: _sample(bind.type)
                for bind, name in compiled.bind_names.items()
                # a bind the statement fixes itself (``literal(0)``) needs none
                if bind.value is None or bind.required
            }
        return found

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            found = self._by_dialect[dialect.name] = self._compile(dialect)
        return found

    def _sqlalchemy_compiled(self, dialect: Dialect) -> Any:
        keys = list(self.column_keys) if self.column_keys is not None else None
        # for_executemany: no implicit RETURNING of a generated key (callers never read
        # inserted_primary_key), so an INSERT returns rows only when it says RETURNING.
        return self.statement.compile(dialect=dialect, column_keys=keys, for_executemany=True)

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._sqlalchemy_compiled(dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("Prepared statements take no expanding or literal-execute binds")
        positional = bool(dialect.positional)
        names = tuple(compiled.positiontup) if positional else tuple(compiled.bind_names.values())
        defaults = {
            compiled.bind_names[bind]: bind.value
            for bind in compiled.binds.values()
            if bind in compiled.bind_names and bind.value is not None and not bind.required
        }
        bind = {
            key: proc
            for key, proc in (
                (compiled.bind_names[b], b.type._cached_bind_processor(dialect))
                for b in compiled.binds.values()
                if b in compiled.bind_names
            )
            if proc is not None
        }
        columns = compiled._result_columns
        row: Any = None
        results: tuple[Processor, ...] = ()
        if columns:
            row = _row_class([c[0] for c in columns])
            results = tuple(c[3]._cached_result_processor(dialect, None) for c in columns)
        sql = compiled.string
        if self.replan and dialect.name == "postgresql":
            replan_often(sql)
        reads_only = sql.lstrip()[:6].upper() == "SELECT"
        slots = tuple((name, defaults.get(name), bind.get(name)) for name in names)
        return _Compiled(sql, names, positional, row, results, reads_only, _values(sql), slots)

    def arguments(self, compiled: _Compiled, params: Any) -> Any:
        """Driver arguments for a parameter dict, or a list of them for executemany."""
        if isinstance(params, list):
            return [self.parameters(compiled, p) for p in params]
        return self.parameters(compiled, params or {})

    def parameters(self, compiled: _Compiled, params: Mapping[str, Any]) -> Any:
        get = params.get  # a bind the caller leaves out takes the statement's own value
        values = [
            get(name, default) if proc is None else proc(get(name, default))
            for name, default, proc in compiled.slots
        ]
        if compiled.positional:
            return tuple(values)
        return dict(zip(compiled.names, values, strict=True))

    @staticmethod
    def rows(compiled: _Compiled, raw: list[Any], rowcount: int) -> Rows:
        if compiled.row is None:
            return Rows([], rowcount)
        make, procs = compiled.row._make, compiled.results
        if not any(procs):
            return Rows([make(r) for r in raw], rowcount)
        return Rows(
            [
                make([p(v) if p is not None else v for p, v in zip(procs, r, strict=True)])
                for r in raw
            ],
            rowcount,
        )


def _values(sql: str) -> tuple[str, str] | None:
    """``(head, row)`` of ``INSERT INTO t (…) VALUES (row)`` with nothing after the row
    (no ``RETURNING``, no ``ON CONFLICT``), else None."""
    if not sql.startswith("INSERT INTO "):
        return None
    at = sql.find(") VALUES (")
    if at < 0:
        return None
    head, row = sql[: at + len(") VALUES ")], sql[at + len(") VALUES ") :]
    depth = 0
    for n, char in enumerate(row):
        depth += (char == "(") - (char == ")")
        if depth == 0:
            return (head, row) if n == len(row) - 1 else None
    return None


def _sample(kind: Any) -> Any:
    kind = getattr(kind, "impl_instance", kind)  # a TypeDecorator: what it stores
    item = getattr(kind, "item_type", None)
    if item is not None:
        return [_sample(item)]
    try:
        python = kind.python_type
    except NotImplementedError:  # a text() bind of no declared type
        python = str
    return _SAMPLES.get(python, _SAMPLES[str])


def _row_class(names: list[str]) -> Any:
    """Rows read like SQLAlchemy's: by attribute, by index, or unpacked."""
    return namedtuple("Row", names, rename=True)


def translate(error: Exception, compiled: _Compiled, params: Any, dialect: Dialect) -> Exception:
    """The driver's exception as SQLAlchemy would raise it (``IntegrityError`` etc.)."""
    dbapi: Any = dialect.loaded_dbapi
    return sa_exc.DBAPIError.instance(
        compiled.sql, params, error, dbapi.Error, dialect=dialect, ismulti=False
    )
