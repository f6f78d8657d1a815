"""Instructions the server executes per request, counted by callgrind: an A/B that the
host's speed does not move.

    python bench/instructions.py [--backend sqlite|postgresql|both] [--size smoke|standard]
    SCIMGATE_BENCH_SRC=/tmp/base/src python bench/instructions.py …   # another checkout

On a shared machine the same code's throughput drifted by 1.7x within minutes (CPU steal),
so a 5 % change to the request path cannot be seen in req/s without many pairs. This runs
``scimgate serve`` under ``valgrind --tool=callgrind`` (about 50x slower), drives it with
``bench/loadgen.py`` once to warm it up (every statement compiled and prepared, every lazy
import done), zeroes the counters (``callgrind_control --zero``), replays the cycle against
a fresh directory and dumps them (``--dump``): the server process's instructions (all its
threads, user space only: system calls and PostgreSQL's own work are not counted) divided
by the requests of that replay. The same code, load and database give the same count
within ~1 %; what the loadgen's timing decides (which writes queue behind which) moves it
a little. Counts are not time: a cache miss costs more than an add. Use it to compare two
checkouts, then confirm with ``bench/ab.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import harness
from run import SIZES


def _loadgen(directory: harness.Directory, pid: int, size: dict[str, int], args: Any) -> Any:
    command = harness.loadgen_command(
        directory,
        pid,
        *harness.size_args(size),
        "--dialect",
        args.dialect,
        "--cycle",
        args.cycle,
    )
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines or not lines[-1].startswith("{"):
        raise RuntimeError(f"loadgen failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return json.loads(lines[-1])


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def measure(backend: str, args: Any) -> dict[str, Any]:
    control = shutil.which("callgrind_control")
    if shutil.which("valgrind") is None or control is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    size = dict(SIZES[args.size])
    out_dir = Path(tempfile.mkdtemp(prefix="scimgate-callgrind-"))
    wrap = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out_dir / 'cg.out'}",
        "--dump-line=no",
    ]
    try:
        with (
            harness.fresh_database(backend) as url,
            harness.server(url, wrap=wrap, start_timeout_s=900) as srv,
        ):
            _loadgen(harness.new_directory(url, srv.base_url), srv.pid, size, args)  # warm-up
            directory = harness.new_directory(url, srv.base_url)
            subprocess.run([control, "--zero", str(srv.pid)], check=True, capture_output=True)
            summary = _loadgen(directory, srv.pid, size, args)
            subprocess.run([control, "--dump", str(srv.pid)], check=True, capture_output=True)
            dumps = sorted(out_dir.glob("cg.out*"), key=lambda p: p.stat().st_mtime)
            instructions = _total(dumps[-1])
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    requests = int(summary["requests"])
    return {
        "backend": backend,
        "size": args.size,
        "dialect": args.dialect,
        "cycle": args.cycle,
        "requests": requests,
        "errors": summary["errors"],
        "instructions": instructions,
        "instructions_per_request": round(instructions / max(requests, 1)),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    p.add_argument("--size", choices=("smoke", "standard"), default="smoke")
    p.add_argument("--dialect", choices=("legacy", "compliant"), default="legacy")
    p.add_argument("--cycle", choices=("initial", "incremental", "both"), default="both")
    args = p.parse_args()
    backends = harness.BACKENDS if args.backend == "both" else (args.backend,)
    failed = False
    for backend in backends:
        result = measure(backend, args)
        print(
            f"{backend}: {result['instructions_per_request']:,} instructions per request "
            f"({result['requests']} requests, {result['errors']} errors, "
            f"size {args.size}, {args.dialect} dialect)"
        )
        print(json.dumps(result))
        failed |= bool(result["errors"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
