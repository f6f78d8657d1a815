"""The CLI contract scripts depend on: commands, --json keys, exit codes, stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scimgate.cli.main import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_directory_commands_json_contract(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--database-url", database_url, "--public-url", "https://scim.example.com"]
    code, out, _ = _run(
        capsys, "org", "create", "Contoso", "--external-id", "contoso-cli", "--json", *db
    )
    assert code == 0
    org = json.loads(out)
    code, out, _ = _run(
        capsys, "directory", "create", "--org", "contoso-cli", "--provider", "entra", "--json", *db
    )
    assert code == 0
    created = json.loads(out)
    assert {
        "id",
        "organization_id",
        "name",
        "provider",
        "scim_base_url",
        "tenant_url",
        "token",
    } <= set(created)
    assert created["organization_id"] == org["id"]
    assert created["scim_base_url"] == f"https://scim.example.com/scim/v2/{created['id']}"
    assert created["tenant_url"] == created["scim_base_url"] + "?aadOptscim062020"
    assert created["token"].startswith("scimgate_") and len(created["token"]) >= 9 + 43
    code, out, _ = _run(capsys, "directory", "rotate-token", created["id"], "--json", *db)
    rotated = json.loads(out)
    assert code == 0 and rotated["id"] == created["id"] and rotated["token"] != created["token"]
    code, out, _ = _run(capsys, "directory", "list", "--json", *db)
    listed = json.loads(out)
    assert [d["id"] for d in listed if d["id"] == created["id"]] == [created["id"]]
    assert all("token" not in d for d in listed), "a listing must never show a token"
    code, out, _ = _run(capsys, "directory", "disable", created["id"], *db)
    assert code == 0 and "DISABLED" in out
    code, out, _ = _run(capsys, "directory", "create", "--org", "contoso-cli", *db)
    assert code == 0
    assert "Secret Token" in out and "shown only this once" in out


def test_errors_go_to_stderr_with_a_non_zero_exit(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--database-url", database_url]
    code, out, err = _run(capsys, "directory", "create", "--org", "no-such-org", *db)
    assert code != 0 and out == "" and "no organization" in err
    code, out, err = _run(capsys, "directory", "rotate-token", "no-such-directory", *db)
    assert code != 0 and out == "" and "no directory" in err


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    """SQLite statements run inline on the event loop: a second process waiting for the
    write lock would stall it, so --workers > 1 needs PostgreSQL."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scimgate",
            "serve",
            "--workers",
            "2",
            "--database-url",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "needs PostgreSQL" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        # Every request would wait forever for a connection.
        ("SCIMGATE_DB_POOL_SIZE", "0", "SCIMGATE_DB_POOL_SIZE must be at least 1, got 0"),
        (
            "SCIMGATE_DB_LOCK_TIMEOUT",
            "-1",
            "SCIMGATE_DB_LOCK_TIMEOUT must be 0 (no bound) or a positive number of seconds, "
            "got -1.0",
        ),
        ("SCIMGATE_DB_STATEMENT_TIMEOUT", "nan", "SCIMGATE_DB_STATEMENT_TIMEOUT must be 0"),
        (
            "SCIMGATE_DB_POOL_TIMEOUT",
            "soon",
            "SCIMGATE_DB_POOL_TIMEOUT must be a number of seconds, got 'soon'",
        ),
    ],
)
def test_serve_refuses_database_settings_it_cannot_honour(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    """Say so before serving, in one line, and touch no database."""
    result = subprocess.run(
        [sys.executable, "-m", "scimgate", "serve", "--database-url", f"sqlite:///{tmp_path}/x.db"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, name: value},
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()
