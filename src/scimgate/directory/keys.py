"""Comparison keys for case-insensitive SCIM attributes (userName, group displayName).

RFC 7643 makes userName case-insensitive, so ``Alice@x`` and ``alice@x`` are the same user
and the database's unique index must see them as equal. We store NFC-normalised,
casefolded copies in indexed ``*_key`` columns; lookups fold the filter value the same way
and hit the index. NFC first, so composed and decomposed accents agree; casefold rather
than lower, so "STRASSE" and "straße" agree; NFC again because casefolding can denormalise.
"""

from __future__ import annotations

import unicodedata


def fold(value: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).casefold())
