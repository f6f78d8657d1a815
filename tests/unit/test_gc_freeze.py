"""``gc_freeze``: the server's startup objects leave the garbage collector's reach (a
full collection over them took ~80 ms); an embedding app's process is left alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from scimgate.app import create_app
from scimgate.settings import Settings


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("freeze", [True, False])
def test_startup_freezes_the_heap_only_when_asked(tmp_path: Path, freeze: bool) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'gc.db'}", webhook_worker=False, gc_freeze=freeze
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        frozen = gc.get_freeze_count()
    if freeze:
        assert frozen > 10_000, frozen  # the loaded app: modules, SQLAlchemy, models
    else:
        assert frozen == 0


def test_the_environment_turns_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCIMGATE_GC_FREEZE", raising=False)
    assert Settings.from_env().gc_freeze is False
    monkeypatch.setenv("SCIMGATE_GC_FREEZE", "true")
    assert Settings.from_env().gc_freeze is True
