"""Serve the full app (scimgate + management API) with uvicorn, for tests that need a
real server: ``python -m tests.api.serve DATABASE_URL PORT``.

Webhook URLs are never resolved through DNS here (every host "resolves" to 127.0.0.1)
and no webhook worker runs, so fuzzed webhook endpoints cause no network traffic."""

from __future__ import annotations

import sys

import uvicorn

from scimgate import Settings
from scimgate.events import ssrf
from tests.api.stack import build_app


async def _no_dns(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def main() -> None:
    database_url, port = sys.argv[1], int(sys.argv[2])
    ssrf.resolve = _no_dns
    settings = Settings(database_url=database_url, public_url=f"http://127.0.0.1:{port}")
    uvicorn.run(build_app(settings), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
