"""JSON text for documents stored and sent: orjson's speed, the standard library's range.

orjson serialises a SCIM user about ten times faster than ``json.dumps``, and every write
serialises one several times (the row, the event, the response). It refuses what
``json`` accepts and SCIM may carry, integers beyond 64 bits, so those documents take
the standard library's path, with the same output. Parsing stays with ``json.loads``:
orjson reads big integers as floats, silently.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# scim2-models keys extension attributes by URN, a str subclass, which orjson refuses as a
# key by default (every enterprise user would silently take the slow path).
_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: a >64-bit integer, a lone surrogate…
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def dumps(value: Any) -> str:
    """Compact JSON text, for the database's JSON columns."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode("utf-8")
    except TypeError:
        # ensure_ascii keeps a lone surrogate storable, as SQLAlchemy's default does.
        return json.dumps(value, separators=(",", ":"))
