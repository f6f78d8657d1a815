"""``scimgate api-key create|list|revoke``: keys for the management API.

The key is printed once, at creation; only its hash is stored. Wired into
``cli.main`` by :func:`add_parser` and :data:`COMMANDS`."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from scimgate.directory.api_keys import ApiKey, ApiKeys
from scimgate.directory.tenancy import Tenancy
from scimgate.settings import Settings

from .output import print_json

Command = Callable[[argparse.Namespace, Settings, Tenancy], Awaitable[int]]


def add_parser(
    subparsers: Any,
    common: argparse.ArgumentParser,
) -> None:
    """Add ``api-key`` and its actions to the top-level subparsers (``dest="action"``,
    like the other command groups)."""
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON for scripts")
    actions = subparsers.add_parser(
        "api-key", help="keys for the management API (/api/v1)"
    ).add_subparsers(dest="action", required=True)
    create = actions.add_parser(
        "create", parents=[common, json_flag], help="create a key (shown only once)"
    )
    create.add_argument("--name", default="default", help="what the key is for")
    actions.add_parser("list", parents=[common, json_flag], help="list keys (never the secrets)")
    revoke = actions.add_parser(
        "revoke", parents=[common, json_flag], help="revoke a key: it stops working at once"
    )
    revoke.add_argument("key_id")


def _describe(key: ApiKey) -> str:
    state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
    used = f"last used {key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used"
    return f"{key.id}  {key.name}  {key.key_hint}  [{state}, {used}]"


async def _create(args: argparse.Namespace, settings: Settings, tenancy: Tenancy) -> int:
    key, secret = await ApiKeys(tenancy.db).create(args.name)
    if args.json:
        print_json({**key.to_json(), "key": secret})
    else:
        print(f"API key     {key.name}")
        print(f"  id        {key.id}")
        print(f"  key       {secret}")
        print("  (The key is shown only this once: store it in your app's secret store now.)")
        print(f"  Use it as: Authorization: Bearer <key>  on {settings.base_url}/api/v1/…")
    return 0


async def _list(args: argparse.Namespace, settings: Settings, tenancy: Tenancy) -> int:
    keys = await ApiKeys(tenancy.db).list()
    if args.json:
        print_json([k.to_json() for k in keys])
    elif not keys:
        print("No API keys yet: scimgate api-key create --name my-backend")
    else:
        for k in keys:
            print(_describe(k))
    return 0


async def _revoke(args: argparse.Namespace, settings: Settings, tenancy: Tenancy) -> int:
    key = await ApiKeys(tenancy.db).revoke(args.key_id)
    if args.json:
        print_json(key.to_json())
    else:
        print(f"Revoked: {_describe(key)}")
    return 0


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("api-key", "create"): _create,
    ("api-key", "list"): _list,
    ("api-key", "revoke"): _revoke,
}
