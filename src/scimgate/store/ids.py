"""Time-ordered ids for the rows written in bulk: users, groups, events.

A random (version 4) UUID lands each new row's key at a random place in its index, so a
commit dirties one more page per index per row: adding ten members to a group wrote ten
random leaves of the events index alone. A version 7 UUID (RFC 9562) starts with the
Unix time in milliseconds, so new keys go to the right edge of the index, where the
previous commit already left the page in cache. The remaining 74 bits are random: ids
stay unguessable, and they reveal no more than ``meta.created``. Organization and
directory ids (in Tenant URLs) stay version 4.
"""

from __future__ import annotations

import os
import time
import uuid

_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def uuid7() -> uuid.UUID:
    """A version 7 UUID: 48 bits of Unix milliseconds, version, 12 + 62 random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (millis & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | ((rand >> 62) & _RAND_A) << 64
        | 0b10 << 62
        | (rand & _RAND_B)
    )
    return uuid.UUID(int=value)


def ordered_id() -> str:
    """A row id in UUID text form, time-ordered (version 7)."""
    return str(uuid7())
