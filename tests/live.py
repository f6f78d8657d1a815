"""A real scimgate server in a subprocess, and SCIM directories on it, for tests that talk
HTTP as an IdP would."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scimgate.cli.main import main as cli_main

SCIM_JSON = "application/scim+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(database_url: str, public_url: str, *args: str) -> Any:
    """Run a ``scimgate`` command in-process and return its parsed ``--json`` output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(
            [*args, "--json", "--database-url", database_url, "--public-url", public_url]
        )
    assert code == 0, f"scimgate {' '.join(args)} failed with exit code {code}"
    return json.loads(out.getvalue())


@dataclass
class Directory:
    """One SCIM directory on the live server, with a client that carries its token."""

    id: str
    organization_id: str
    scim_base: str
    tenant_url: str
    token: str
    client: httpx.Client = field(repr=False)

    def url(self, path: str) -> str:
        return f"{self.scim_base}{path}"


@dataclass
class LiveServer:
    base_url: str
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def cli(self, *args: str) -> Any:
        return run_cli(self.database_url, self.base_url, *args)

    def new_directory(self, provider: str = "entra") -> Directory:
        org = self.cli("org", "create", f"Org {time.monotonic_ns()}")
        info = self.cli("directory", "create", "--org", org["id"], "--provider", provider)
        client = httpx.Client(
            headers={"Authorization": f"Bearer {info['token']}", "Content-Type": SCIM_JSON},
            timeout=30,
        )
        self.clients.append(client)
        return Directory(
            info["id"], org["id"], info["scim_base_url"], info["tenant_url"], info["token"], client
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    database_url: str,
    tmp: Path,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> Generator[LiveServer, None, None]:
    """Start ``scimgate serve`` (with ``args`` added) on a free port and wait until it
    answers /healthz."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp / f"server-{port}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scimgate",
            "serve",
            "--no-demo",
            "--port",
            str(port),
            "--database-url",
            database_url,
            "--public-url",
            base,
            *args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    server = LiveServer(base, database_url, proc, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.log()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        for c in server.clients:
            c.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def worker_pids(supervisor: int) -> list[int]:
    """The pids of the worker processes of ``scimgate serve --workers N`` (children of
    the supervisor that run the app, not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == supervisor and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
