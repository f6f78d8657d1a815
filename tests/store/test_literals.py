"""Client-side literals (``store/literals.py``) read back from PostgreSQL as the very values
bound: whatever a value holds (quotes, backslashes, comment markers, placeholders, braces),
it stays one value. PostgreSQL only: SQLite binds every parameter on the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from scimgate.store.literals import Literals

from ..conftest import PG_ADMIN_URL

TRICKY_TEXT = [
    "",
    "plain",
    "O'Brien",
    "''",
    "'; DROP TABLE users; --",
    "a\\b",
    "\\'",
    "ends with a backslash\\",
    "$$dollar$$",
    "-- not a comment",
    "/* not a comment */",
    "%s %(name)s %% {} {0} {name}",
    "line\nbreak\ttab\r",
    "Zoë Ångström 名前 🚀",
    "x" * 10_000,
]
TIMES = [
    datetime(2026, 11, 26, 3, 4, 5, 678901, tzinfo=UTC),
    datetime(2026, 11, 26, 3, 4, 5, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 6, 1, 12, 0, 0, 1),
]
OTHERS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    2**31 - 1,
    2**31,
    2**63 - 1,
    -1,
    -(2**63),
    1.5,
    ["a", "b'c", "d\\e"],
]


@pytest.fixture()
async def driver() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    url = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    yield conn
    await conn.close()


async def _read_back(driver: psycopg.AsyncConnection[Any], sql: str) -> Any:
    cursor = await driver.execute(sql.encode())
    row = await cursor.fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("value", TRICKY_TEXT + TIMES + OTHERS)
async def test_a_literal_reads_back_as_the_value(
    driver: psycopg.AsyncConnection[Any], value: Any
) -> None:
    literals = Literals(driver)
    cast = "::text[]" if isinstance(value, list) else ""  # psycopg leaves arrays untyped
    sql = literals.bind("SELECT %(v)s" + cast, {"v": value})
    got = await _read_back(driver, sql)
    if isinstance(value, datetime) and value.tzinfo is not None:
        assert got == value and got.utcoffset() is not None
    elif isinstance(value, float):
        assert got == value  # psycopg writes a bare number: PostgreSQL reads numeric
    else:
        assert got == value and type(got) is type(value)


async def test_text_is_one_literal_in_a_statement_with_placeholders_and_braces(
    driver: psycopg.AsyncConnection[Any],
) -> None:
    literals = Literals(driver)
    sql = literals.bind(
        "SELECT %(a)s || '{}%%' || %(b)s || %(a)s",
        {"a": "x'); SELECT 1; --", "b": "%(a)s{}"},
    )
    assert await _read_back(driver, sql) == "x'); SELECT 1; --{}%%(a)s{}x'); SELECT 1; --"


async def test_a_negative_number_never_starts_a_comment(
    driver: psycopg.AsyncConnection[Any],
) -> None:
    literals = Literals(driver)
    assert await _read_back(driver, literals.bind("SELECT 1-%(n)s", {"n": -1})) == 2


async def test_literals_match_psycopg_where_psycopg_writes_plain_quotes(
    driver: psycopg.AsyncConnection[Any],
) -> None:
    """Same SQL text as ``mogrify`` for what the server's statements bind most."""
    literals = Literals(driver)
    mogrify = psycopg.AsyncClientCursor(driver).mogrify
    sql = "INSERT INTO t VALUES (%(a)s, %(b)s, %(c)s, %(d)s, %(e)s, %(f)s)"
    args = {"a": "O'Brien", "b": None, "c": True, "d": 7, "e": TIMES[0], "f": "Zoë"}
    assert literals.bind(sql, args) == mogrify(sql, args)


async def test_nul_and_lone_surrogates_fail_as_with_psycopg(
    driver: psycopg.AsyncConnection[Any],
) -> None:
    literals = Literals(driver)
    with pytest.raises(psycopg.DataError, match="NUL"):
        literals.bind("SELECT %(v)s", {"v": "a\x00b"})
    with pytest.raises(UnicodeEncodeError):
        literals.bind("SELECT %(v)s", {"v": "a\ud800b"})


async def test_without_standard_conforming_strings_text_goes_to_psycopg(
    driver: psycopg.AsyncConnection[Any],
) -> None:
    """With the setting off, a backslash in ``'…'`` is an escape: plain quoting would be
    wrong (and unsafe), so every string is psycopg's ``E'…'`` literal."""
    await driver.execute("SET standard_conforming_strings = off")
    literals = Literals(driver)
    for value in TRICKY_TEXT:
        sql = literals.bind("SELECT %(v)s", {"v": value})
        assert await _read_back(driver, sql) == value
    assert literals.bind("SELECT %(v)s", {"v": "a\\b"}) != "SELECT 'a\\b'"
