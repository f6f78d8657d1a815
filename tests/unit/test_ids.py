"""Row ids for users, groups and events are RFC 9562 version 7 UUIDs: valid UUIDs,
unique, and ordered by creation time (so new keys append to their indexes)."""

from __future__ import annotations

import time
import uuid

from scimgate.store.ids import ordered_id, uuid7


def test_version_7_layout() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after, "the first 48 bits are Unix milliseconds"


def test_ids_are_unique_and_ordered_across_milliseconds() -> None:
    ids = []
    for _ in range(5):
        ids += [ordered_id() for _ in range(20_000)]
        time.sleep(0.002)
    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(i)) == i for i in ids[:100]), "canonical UUID text"
    millis = [uuid.UUID(i).int >> 80 for i in ids]
    assert millis == sorted(millis), "later ids never sort before earlier milliseconds"
    assert ids[-1] > ids[0], "ordered as text, as the indexes compare them"
