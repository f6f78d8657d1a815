"""``scimgate api-key create|list|revoke``: the key printed once works on the API, the
listing never shows it, and a revoked key stops working."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
from typing import Any

from scimgate.cli import api_keys as api_keys_cli
from scimgate.cli import main as cli_main
from scimgate.directory.tenancy import Tenancy
from scimgate.errors import DomainError
from scimgate.settings import Settings
from scimgate.store.engine import Database
from tests.api.stack import Stack


def _wired() -> bool:
    return ("api-key", "create") in cli_main.COMMANDS


async def _run(database_url: str, *argv: str) -> tuple[int, str]:
    """Run an ``api-key`` command: through ``scimgate``'s own entry point once it is
    wired in, else through this module's parser exactly as ``cli.main`` will build it."""
    args = [*argv, "--database-url", database_url]
    out = io.StringIO()
    if _wired():
        with contextlib.redirect_stdout(out):
            code = await asyncio.to_thread(cli_main.main, args)
        return code, out.getvalue()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url")
    common.add_argument("--public-url")
    parser = argparse.ArgumentParser(prog="scimgate")
    api_keys_cli.add_parser(parser.add_subparsers(dest="command", required=True), common)
    ns = parser.parse_args(args)
    settings = Settings.from_env(database_url=ns.database_url, public_url=ns.public_url)
    db = Database(settings.database_url, pool_size=2)
    try:
        with contextlib.redirect_stdout(out):
            code = await api_keys_cli.COMMANDS[(ns.command, ns.action)](ns, settings, Tenancy(db))
    except DomainError:  # as cli.main reports it
        code = 1
    finally:
        await db.dispose()
    return code, out.getvalue()


async def _json(database_url: str, *argv: str) -> Any:
    code, out = await _run(database_url, *argv, "--json")
    assert code == 0, out
    return json.loads(out)


async def test_create_list_revoke(stack: Stack, database_url: str) -> None:
    created = await _json(database_url, "api-key", "create", "--name", "hr-backend")
    assert {"id", "name", "key"} <= set(created)
    assert created["name"] == "hr-backend" and created["key"].startswith("scimgate_key_")
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert (await stack.client.get("/api/v1/organizations", headers=headers)).status_code == 200

    listed = await _json(database_url, "api-key", "list")
    mine = [k for k in listed if k["id"] == created["id"]]
    assert len(mine) == 1 and mine[0]["last_used_at"] is not None
    assert created["key"] not in json.dumps(listed)

    revoked = await _json(database_url, "api-key", "revoke", created["id"])
    assert revoked["revoked_at"] is not None
    assert (await stack.client.get("/api/v1/organizations", headers=headers)).status_code == 401

    code, text = await _run(database_url, "api-key", "create", "--name", "people")
    assert code == 0 and "shown only this once" in text and "scimgate_key_" in text
    code, text = await _run(database_url, "api-key", "list")
    assert code == 0 and "hr-backend" in text and "revoked" in text


async def test_unknown_key_id_is_an_error(database_url: str) -> None:
    code, _ = await _run(database_url, "api-key", "revoke", "no-such-key")
    assert code == 1
