"""The retry schedule: about a day in total, jittered, then failed."""

from __future__ import annotations

import random

from scimgate.events.worker import DEFAULT_SCHEDULE, JITTER, retry_delay


def test_default_schedule_spans_about_a_day() -> None:
    assert 20 * 3600 <= sum(DEFAULT_SCHEDULE) <= 28 * 3600
    assert list(DEFAULT_SCHEDULE) == sorted(DEFAULT_SCHEDULE)  # backs off, never speeds up
    assert DEFAULT_SCHEDULE[0] <= 10


def test_delays_are_jittered_within_bounds_then_exhausted() -> None:
    rng = random.Random(1)
    for attempts, base in enumerate(DEFAULT_SCHEDULE, start=1):
        seen = [retry_delay(DEFAULT_SCHEDULE, attempts, rng) for _ in range(200)]
        assert all(d is not None for d in seen)
        values = [d for d in seen if d is not None]
        assert min(values) >= base * (1 - JITTER)
        assert max(values) <= base * (1 + JITTER)
        assert len(set(values)) > 100  # really random, so failures spread out
    assert retry_delay(DEFAULT_SCHEDULE, len(DEFAULT_SCHEDULE) + 1) is None
    assert retry_delay((), 1) is None
