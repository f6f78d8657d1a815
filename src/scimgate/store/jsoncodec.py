"""JSON text for documents stored and sent: orjson's speed, the standard library's range.

orjson serialises a SCIM user about ten times faster than ``json.dumps``, and every write
serialises one several times (the row, the event, the response). It refuses what
``json`` accepts and SCIM may carry, integers beyond 64 bits, so those documents take
the standard library's path, with the same output.

Parsing (request bodies, stored documents) is orjson's too, 1.3 µs against 4 to 6 µs for a
600-byte user, with the same result as ``json.loads`` in every case: orjson reads an
integer beyond 64 bits as a float, silently, so text with a run of 19 digits or more goes
to ``json.loads`` (a 0.7 µs check); so does text orjson refuses (a lone surrogate, NaN,
UTF-16, a syntax error), which ``json.loads`` then reads or explains as it always did.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# scim2-models keys extension attributes by URN, a str subclass, which orjson refuses as a
# key by default (every enterprise user would silently take the slow path).
_OPTIONS = orjson.OPT_NON_STR_KEYS


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19
"""19 digits in a row: an integer orjson may not hold (2**63 has 19)."""


def loads(text: str | bytes, **fallback: Any) -> Any:
    """``json.loads(text, **fallback)``'s result, by orjson when it gives the same."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _LONG_NUMBER not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text, **fallback)


def dumps_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON. ``value`` may hold ``orjson.Fragment`` values: JSON text passed
    on as it is."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: a >64-bit integer, a lone surrogate…
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), default=_unfragment
        ).encode("utf-8")


def _unfragment(value: Any) -> Any:
    """For ``json.dumps``, which cannot write JSON text as it is: its parsed value."""
    if isinstance(value, orjson.Fragment):
        return loads(orjson.dumps(value))  # a Fragment alone dumps as its text
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Compact JSON text, for the database's JSON columns."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode("utf-8")
    except TypeError:
        # ensure_ascii keeps a lone surrogate storable, as SQLAlchemy's default does.
        return json.dumps(value, separators=(",", ":"))
