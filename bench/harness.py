"""Shared plumbing for the benchmarks: a fresh database, a ``scimgate serve`` process on a
free local port, and a SCIM directory on it made with the ``scimgate`` CLI.

Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PG_ADMIN_URL = os.environ.get("SCIMGATE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
"""Where the PostgreSQL benchmarks create (and drop) their own databases."""

BACKENDS = ("sqlite", "postgresql")

SRC_ENV = "SCIMGATE_BENCH_SRC"
"""Optional: a ``src`` directory of another scimgate checkout to benchmark (e.g. an
exported commit, ``git archive HEAD src | tar -x -C /tmp/x``) instead of the installed one."""


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for scimgate subprocesses: ``$SCIMGATE_BENCH_SRC`` first on the path."""
    env = {**os.environ, **(extra or {})}
    src = env.get(SRC_ENV)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def use_src() -> None:
    """Make ``import scimgate`` in this process follow ``$SCIMGATE_BENCH_SRC`` too."""
    src = os.environ.get(SRC_ENV)
    if src and src not in sys.path:
        sys.path.insert(0, src)


def _postgres_read(name: str) -> Iterator[str]:
    """The ``/proc/PID/<name>`` file of each running ``postgres`` process of this machine
    (none where there is no ``/proc``); processes gone meanwhile are skipped."""
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                yield (entry / name).read_text()
        except OSError:
            continue  # gone meanwhile


def postgres_cpu_s() -> float | None:
    """CPU seconds used so far by this machine's ``postgres`` processes (user + system,
    exited backends included through the postmaster's reaped-children counters), or
    None where ``/proc`` does not tell. Only meaningful with PostgreSQL on this machine,
    and it counts everything the cluster does, not only the benchmark's database."""
    total = 0
    found = False
    for stat in _postgres_read("stat"):
        found = True
        fields = stat.rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK") if found else None


def postgres_run_ns() -> int:
    """Nanoseconds this machine's running ``postgres`` processes have spent on a CPU
    (``/proc/PID/schedstat``, exact where ``/proc/PID/stat`` counts 10 ms ticks), for
    telling what one request cost PostgreSQL. Exited processes do not count: compare
    readings taken while the same connections stay open."""
    fields = (schedstat.split() for schedstat in _postgres_read("schedstat"))
    return sum(int(f[0]) for f in fields if f)  # an empty file: no scheduler statistics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A brand-new empty database (SQLite file in a temp dir, or a new PostgreSQL
    database), dropped afterwards. Yields its SQLAlchemy URL."""
    if backend == "sqlite":
        tmp = tempfile.mkdtemp(prefix="scimgate-bench-")
        try:
            yield f"sqlite:///{tmp}/bench.db"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}")
    import psycopg

    name = f"scimgate_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(f"{PG_ADMIN_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL}/{name}"
    finally:
        with psycopg.connect(f"{PG_ADMIN_URL}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cli(database_url: str, public_url: str, *args: str) -> Any:
    """Run ``scimgate ARGS --json`` in a subprocess and return its JSON output."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "scimgate",
            *args,
            "--json",
            "--database-url",
            database_url,
            "--public-url",
            public_url,
        ],
        capture_output=True,
        text=True,
        check=False,
        env=subprocess_env(),
    )
    if out.returncode != 0:
        raise RuntimeError(f"scimgate {' '.join(args)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


@dataclass
class Directory:
    id: str
    scim_base_url: str
    token: str


def new_directory(database_url: str, public_url: str) -> Directory:
    """An organization and an Entra directory, made with the CLI (which also migrates)."""
    org = cli(database_url, public_url, "org", "create", f"Bench {time.time_ns()}")
    info = cli(
        database_url, public_url, "directory", "create", "--org", org["id"], "--provider", "entra"
    )
    return Directory(info["id"], info["scim_base_url"], info["token"])


def size_args(size: dict[str, int]) -> list[str]:
    """loadgen's population and concurrency options for one of ``bench/run.py``'s sizes."""
    return [
        "--users",
        str(size["users"]),
        "--groups",
        str(size["groups"]),
        "--members-per-group",
        str(size["members_per_group"]),
        "--concurrency",
        str(size["concurrency"]),
    ]


def loadgen_command(directory: Directory, server_pid: int, *args: str) -> list[str]:
    """``bench/loadgen.py`` against this directory, reporting the server's RSS and CPU."""
    return [
        sys.executable,
        str(Path(__file__).resolve().parent / "loadgen.py"),
        "--base-url",
        directory.scim_base_url,
        "--token",
        directory.token,
        "--server-pid",
        str(server_pid),
        *args,
    ]


@dataclass
class Server:
    base_url: str
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def server(
    database_url: str,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    wrap: list[str] | None = None,
    start_timeout_s: float = 60,
) -> Iterator[Server]:
    """``scimgate serve --no-demo`` on a free port, until it answers ``/healthz``.

    Its output (one JSON access-log line per request, as in production) goes to a file.
    ``wrap``: a command the server runs under (``valgrind …``), with ``start_timeout_s``
    to match.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_dir = Path(tempfile.mkdtemp(prefix="scimgate-bench-log-"))
    log_path = log_dir / "server.log"
    command = [
        *(wrap or []),
        sys.executable,
        "-m",
        "scimgate",
        "serve",
        "--no-demo",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--public-url",
        base,
        "--workers",
        str(workers),
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(env)
        )
        srv = Server(base, database_url, proc, log_path)
        try:
            deadline = time.monotonic() + start_timeout_s
            while not _healthy(f"{base}/healthz"):
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{srv.log()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{srv.log()}")
                time.sleep(0.05)
            yield srv
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    shutil.rmtree(log_dir, ignore_errors=True)
