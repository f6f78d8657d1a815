"""The PostgreSQL pool's default size follows the machine's cores, shared among the
server's processes, and a pool of no connections is refused up front."""

from __future__ import annotations

import pytest

from scimgate import settings
from scimgate.settings import Settings, default_db_pool_size


@pytest.mark.parametrize(
    ("cores", "processes", "expected"),
    [
        (1, 1, 4),  # at least 4
        (2, 1, 6),
        (2, 2, 4),  # --workers N shares the machine's connections
        (4, 1, 12),
        (8, 1, 16),
        (8, 8, 4),
        (16, 2, 16),
        (64, 1, 16),  # at most 16: about what one process can keep busy
        (64, 4, 16),
        (64, 16, 12),
    ],
)
def test_default_pool_is_three_connections_per_core_shared_by_the_processes(
    monkeypatch: pytest.MonkeyPatch, cores: int, processes: int, expected: int
) -> None:
    monkeypatch.setattr(settings, "usable_cores", lambda: cores)
    assert default_db_pool_size(processes) == expected


def test_the_environment_sets_the_pool_and_the_default_applies_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "usable_cores", lambda: 3)
    monkeypatch.delenv("SCIMGATE_DB_POOL_SIZE", raising=False)
    assert Settings.from_env().db_pool_size == 9
    assert Settings().db_pool_size == 9
    monkeypatch.setenv("SCIMGATE_DB_POOL_SIZE", "11")
    assert Settings.from_env().db_pool_size == 11


@pytest.mark.parametrize("size", ["0", "-3"])
def test_a_pool_of_no_connections_is_refused(monkeypatch: pytest.MonkeyPatch, size: str) -> None:
    monkeypatch.setenv("SCIMGATE_DB_POOL_SIZE", size)
    with pytest.raises(ValueError, match="SCIMGATE_DB_POOL_SIZE must be at least 1"):
        Settings.from_env()


def test_the_bounded_waits_default_to_10_s_for_locks_30_s_for_a_connection_and_no_statement_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("LOCK", "STATEMENT", "POOL"):
        monkeypatch.delenv(f"SCIMGATE_DB_{name}_TIMEOUT", raising=False)
    options = Settings.from_env().database_options()
    assert (options["lock_timeout"], options["statement_timeout"], options["pool_timeout"]) == (
        10.0,
        0.0,
        30.0,
    )
    monkeypatch.setenv("SCIMGATE_DB_LOCK_TIMEOUT", "2.5")
    monkeypatch.setenv("SCIMGATE_DB_STATEMENT_TIMEOUT", "45")
    monkeypatch.setenv("SCIMGATE_DB_POOL_TIMEOUT", "0")
    options = Settings.from_env().database_options(pool_size=2)
    assert options["pool_size"] == 2  # a caller's own value wins
    assert (options["lock_timeout"], options["statement_timeout"], options["pool_timeout"]) == (
        2.5,
        45.0,
        0.0,
    )


@pytest.mark.parametrize("value", [-0.5, float("inf"), float("nan")])
def test_a_wait_that_is_not_0_or_a_positive_number_of_seconds_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match=r"SCIMGATE_DB_POOL_TIMEOUT must be 0 \(no bound\) or"):
        Settings(db_pool_timeout=value)
