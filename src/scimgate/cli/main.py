"""``scimgate`` entry point. The command contract (names, options, JSON keys) is public:
scripts depend on it, so change it only compatibly."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from scimgate.directory.tenancy import PROVIDERS, Tenancy
from scimgate.errors import DomainError, InvalidInput
from scimgate.logs import configure_server_logging
from scimgate.settings import DEFAULT_PUBLIC_URL, Settings, default_db_pool_size
from scimgate.store.engine import Database, sync_url
from scimgate.store.migrate import upgrade

from . import api_keys as api_keys_cli
from . import worker as worker_cli
from .output import (
    directory_json,
    fail,
    organization_json,
    print_directory,
    print_json,
)

DEMO_ORG_EXTERNAL_ID = "scimgate-demo"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", help="SQLAlchemy URL (env SCIMGATE_DATABASE_URL)")
    common.add_argument("--public-url", help="external base URL (env SCIMGATE_PUBLIC_URL)")
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON for scripts")

    parser = argparse.ArgumentParser(prog="scimgate", description="SCIM 2.0 provisioning server")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--no-demo",
        action="store_true",
        help="do not create a demo organization and directory on first run",
    )

    sub.add_parser("migrate", parents=[common], help="bring the database schema up to date")
    worker_cli.add_parser(sub, common)

    org = sub.add_parser("org", help="organizations").add_subparsers(dest="action", required=True)
    org_create = org.add_parser("create", parents=[common, json_flag])
    org_create.add_argument("name")
    org_create.add_argument("--external-id")
    org.add_parser("list", parents=[common, json_flag])

    directory = sub.add_parser("directory", help="SCIM directories").add_subparsers(
        dest="action", required=True
    )
    d_create = directory.add_parser("create", parents=[common, json_flag])
    d_create.add_argument("--org", required=True, help="organization id or external id")
    d_create.add_argument("--name")
    d_create.add_argument("--provider", default="generic", choices=PROVIDERS)
    d_rotate = directory.add_parser("rotate-token", parents=[common, json_flag])
    d_rotate.add_argument("directory_id")
    d_list = directory.add_parser("list", parents=[common, json_flag])
    d_list.add_argument("--org", help="only this organization's directories")
    d_rules = directory.add_parser(
        "rules",
        parents=[common, json_flag],
        help="show or set the acceptance rules for incoming users (see docs/rules.md)",
    )
    d_rules.add_argument("directory_id")
    rules_action = d_rules.add_mutually_exclusive_group()
    rules_action.add_argument("--set", metavar="JSON", help="rules document, or @file.json")
    rules_action.add_argument("--clear", action="store_true", help="remove all rules")
    for action in ("disable", "enable"):
        p = directory.add_parser(action, parents=[common, json_flag])
        p.add_argument("directory_id")
    api_keys_cli.add_parser(sub, common)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    public_url = args.public_url
    port = getattr(args, "port", None)
    settings = Settings.from_env(database_url=args.database_url, public_url=public_url)
    if public_url is None and port is not None and settings.public_url == DEFAULT_PUBLIC_URL:
        # Serving on another port: the default public URL should say so.
        settings = settings.with_overrides(public_url=f"http://127.0.0.1:{port}")
    return settings


Command = Callable[[argparse.Namespace, Settings, Tenancy], Awaitable[int]]


async def _org_create(args: argparse.Namespace, settings: Settings, tenancy: Tenancy) -> int:
    org = await tenancy.create_organization(args.name, args.external_id)
    if args.json:
        print_json(organization_json(org))
    else:
        print(f"Organization  {org.name}\n  id            {org.id}")
        if org.external_id:
            print(f"  external id   {org.external_id}")
    return 0


async def _org_list(args: argparse.Namespace, settings: Settings, tenancy: Tenancy) -> int:
    orgs = await tenancy.list_organizations()
    if args.json:
        print_json([organization_json(o) for o in orgs])
    else:
        for o in orgs:
            print(
                f"{o.id}  {o.name}" + (f"  (external id {o.external_id})" if o.external_id else "")
            )
    return 0


async def _directory_create(args: argparse.Namespace, settings: Settings, tenancy: Tenancy) -> int:
    directory, token = await tenancy.create_directory(args.org, args.name, args.provider)
    if args.json:
        print_json(directory_json(settings, directory, token))
    else:
        print_directory(settings, directory, token)
    return 0


async def _directory_rotate(args: argparse.Namespace, settings: Settings, tenancy: Tenancy) -> int:
    directory, token = await tenancy.rotate_token(args.directory_id)
    if args.json:
        print_json({**directory_json(settings, directory, token), "token": token})
    else:
        print_directory(settings, directory, token)
        print("  The previous token no longer works: update the IdP's Secret Token now.")
    return 0


async def _directory_list(args: argparse.Namespace, settings: Settings, tenancy: Tenancy) -> int:
    org_id = (await tenancy.get_organization(args.org)).id if args.org else None
    directories = await tenancy.list_directories(org_id)
    if args.json:
        print_json([directory_json(settings, d) for d in directories])
    else:
        if not directories:
            print("No directories yet: scimgate directory create --org ORG --provider entra")
        for d in directories:
            print_directory(settings, d)
    return 0


async def _directory_toggle(args: argparse.Namespace, settings: Settings, tenancy: Tenancy) -> int:
    directory = await tenancy.set_enabled(args.directory_id, args.action == "enable")
    if args.json:
        print_json(directory_json(settings, directory))
    else:
        print_directory(settings, directory)
    return 0


async def _directory_rules(args: argparse.Namespace, settings: Settings, tenancy: Tenancy) -> int:
    if args.clear:
        directory = await tenancy.set_rules(args.directory_id, None)
    elif args.set is not None:
        text = args.set
        if text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")  # noqa: ASYNC240
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--set is not valid JSON: {exc}") from exc
        directory = await tenancy.set_rules(args.directory_id, document)
    else:
        directory = await tenancy.get_directory(args.directory_id)
    if args.json:
        print_json({"id": directory.id, "rules": directory.rules})
    elif directory.rules:
        print(json.dumps(directory.rules, indent=2))
    else:
        print("No rules: every valid SCIM user is accepted.")
    return 0


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("org", "create"): _org_create,
    ("org", "list"): _org_list,
    ("directory", "create"): _directory_create,
    ("directory", "rotate-token"): _directory_rotate,
    ("directory", "list"): _directory_list,
    ("directory", "rules"): _directory_rules,
    ("directory", "disable"): _directory_toggle,
    ("directory", "enable"): _directory_toggle,
}
COMMANDS.update(api_keys_cli.COMMANDS)


async def _with_tenancy(command: Command, args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database_url, **settings.database_options(pool_size=2))
    try:
        return await command(args, settings, Tenancy(db))
    finally:
        await db.dispose()


async def _first_run(settings: Settings, tenancy: Tenancy, demo: bool) -> None:
    """Print how to connect an IdP; on the very first run create a demo directory."""
    directories = await tenancy.list_directories()
    if not directories and demo:
        org = await tenancy.create_organization("Demo organization", DEMO_ORG_EXTERNAL_ID)
        directory, token = await tenancy.create_directory(org.id, "Demo directory", "entra")
        print("First run: created a demo organization and an Entra directory.\n")
        print(
            "Paste these into Entra ID → Enterprise application → Provisioning → Admin "
            "Credentials:\n"
        )
        print_directory(settings, directory, token)
    elif directories:
        print("SCIM directories:\n")
        for d in directories:
            print_directory(settings, d)
        print("\nLost a Secret Token? Issue a new one with: scimgate directory rotate-token ID")
    print(f"\nServing on {settings.base_url} (health: {settings.base_url}/healthz)\n", flush=True)


_HTTP_PROTOCOL = "scimgate.http_protocol:OneWriteHttpToolsProtocol"
_SUPERVISOR = (
    "import sys, uvicorn; "
    "uvicorn.run('scimgate.app:create_worker_app', factory=True, host=sys.argv[1], "
    "port=int(sys.argv[2]), workers=int(sys.argv[3]), "
    f"http={_HTTP_PROTOCOL!r}, access_log=False, proxy_headers=False, log_level='info')"
)
"""``serve --workers N`` becomes this: uvicorn's supervisor, importing uvicorn alone
(``python -m uvicorn`` would do, but its ``--http`` takes no protocol class of ours)."""


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if args.workers > 1 and sync_url(settings.database_url).get_backend_name() == "sqlite":
        # SQLite statements run inline on each process's event loop: a second process
        # waiting for the file's write lock would stall its loop.
        raise InvalidInput("--workers > 1 needs PostgreSQL; SQLite serves from one process")

    from scimgate.app import create_app

    if not os.environ.get("SCIMGATE_GC_FREEZE"):
        settings = settings.with_overrides(gc_freeze=True)  # a server process of our own

    async def announce() -> None:
        db = Database(settings.database_url, **settings.database_options(pool_size=2))
        try:
            await _first_run(settings, Tenancy(db), demo=not args.no_demo)
        finally:
            await db.dispose()

    asyncio.run(announce())
    if args.workers > 1:
        # Workers import the app factory; settings travel through the environment. This
        # process becomes uvicorn's supervisor, which never loads the app: exec'ing it
        # fresh frees the ~95 MiB this process took to import scimgate (same pid, so a
        # process manager's signals still reach the supervisor).
        os.environ["SCIMGATE_DATABASE_URL"] = settings.database_url
        os.environ["SCIMGATE_PUBLIC_URL"] = settings.public_url
        os.environ["SCIMGATE_GC_FREEZE"] = str(settings.gc_freeze).lower()
        if not os.environ.get("SCIMGATE_DB_POOL_SIZE"):
            # The default pool is per machine: the workers share it.
            os.environ["SCIMGATE_DB_POOL_SIZE"] = str(default_db_pool_size(args.workers))
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()  # writes out the buffered log: exec runs no exit handlers
        os.execv(
            sys.executable,
            [sys.executable, "-c", _SUPERVISOR, args.host, str(args.port), str(args.workers)],
        )
    else:
        uvicorn.run(
            create_app(settings, migrate=False),
            host=args.host,
            port=args.port,
            http=_HTTP_PROTOCOL,
            access_log=False,
            # Every URL scimgate writes comes from its public URL, never from the request:
            # X-Forwarded-* rewriting would cost each request a middleware for nothing.
            proxy_headers=False,
            log_level="info",
            log_config=None,  # its messages go through our handler (scimgate.logs)
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        configure_server_logging()  # buffered: the access log writes a line per request
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = _settings(args)
        upgrade(settings.database_url)
        if args.command == "migrate":
            print("database schema is up to date")
            return 0
        if args.command == "serve":
            return _serve(args, settings)
        if args.command == "worker":
            return asyncio.run(worker_cli.run(args, settings))
        command = COMMANDS[(args.command, getattr(args, "action", None))]
        return asyncio.run(_with_tenancy(command, args, settings))
    except DomainError as exc:
        return fail(str(exc))
    except ValueError as exc:
        return fail(str(exc))
    except Exception as exc:  # the CLI must say what failed, not dump a traceback
        logging.getLogger("scimgate").debug("command failed", exc_info=True)
        return fail(f"{type(exc).__name__}: {exc}")


def run() -> Any:
    sys.exit(main())
