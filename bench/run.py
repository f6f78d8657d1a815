"""One command for the provisioning-cycle benchmark, end to end.

    python bench/run.py [--backend sqlite|postgresql|both] [--size smoke|standard|large]
                        [--workers N] [--dialect legacy|compliant|both]

For each backend and dialect: a fresh database (SQLite file in a temp dir, or a new
PostgreSQL database on ``$SCIMGATE_BENCH_PG``, default postgresql://postgres@127.0.0.1:5432),
a fresh ``scimgate serve`` on a free port of 127.0.0.1, an organization and Entra directory
made with the ``scimgate`` CLI, then ``bench/loadgen.py`` replays an Entra initial +
incremental cycle and reports latency per operation, the server's peak RSS and CPU.
Everything is torn down afterwards. Before and after the replay it times
``bench/hostspeed.py``'s fixed work, to say how fast the host was at that moment.

``--size smoke`` is what CI runs (a few seconds per backend); ``--size standard`` is the
issue's benchmark (2,000 users, 20 groups x 100 members, concurrency 16) and prints which
targets are met; ``--size large --cycle initial`` is the issue's initial cycle at scale
(100,000 users, 100 groups x 1,000 members). ``--warm-server`` measures a server that
has served a cycle already (one unmeasured cycle of the same size against another
directory first): the first cycle of a fresh server on a fresh database is slower (new
PostgreSQL sessions, tables and indexes that start empty). ``--cpu-per-worker 0.4`` holds
each worker to 0.4 of a core during the replay (``bench/cpucap.py``, root), to compare one
worker with two on a host that has no core to spare. Exit code: 1 if any request
failed (or the set-up did); missed targets only fail with ``--strict``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cpucap
import harness
import hostspeed

SIZES: dict[str, dict[str, int]] = {
    "smoke": {"users": 200, "groups": 4, "members_per_group": 25, "concurrency": 8},
    "standard": {"users": 2000, "groups": 20, "members_per_group": 100, "concurrency": 16},
    # The initial cycle at scale (run with --cycle initial): 100,000 users and
    # 100 groups of 1,000 members, about 210,000 requests.
    "large": {"users": 100_000, "groups": 100, "members_per_group": 1000, "concurrency": 16},
}

TARGET_RPS = 2000.0
TARGET_P99_MS = 25.0
TARGET_RSS_MB = 250.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--size", choices=tuple(SIZES), default="smoke")
    p.add_argument("--workers", type=int, default=1, help="scimgate serve --workers")
    p.add_argument("--dialect", choices=("legacy", "compliant", "both"), default="both")
    p.add_argument("--concurrency", type=int, help="override the size's concurrency")
    p.add_argument("--cycle", choices=("initial", "incremental", "both"), default="both")
    p.add_argument(
        "--client", choices=("raw", "aiohttp", "httpx"), help="loadgen HTTP client (default raw)"
    )
    p.add_argument(
        "--warm-server",
        action="store_true",
        help="first run one unmeasured cycle of the same size against another directory",
    )
    p.add_argument(
        "--cpu-per-worker",
        type=float,
        metavar="CORES",
        help="hold each worker to this share of one core during the replay (bench/cpucap.py; "
        "root): 1 against 2 workers at 0.4 shows whether the server scales with its processes",
    )
    p.add_argument("--json-out", type=Path, help="also write all summaries to this file")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return p.parse_args()


def _cycle_command(
    url: str, srv: harness.Server, size: dict[str, int], dialect: str, cycle: str, *extra: str
) -> list[str]:
    """The loadgen command for one cycle against a new directory of ``srv``."""
    directory = harness.new_directory(url, srv.base_url)
    return harness.loadgen_command(
        directory,
        srv.pid,
        *harness.size_args(size),
        "--dialect",
        dialect,
        "--cycle",
        cycle,
        *extra,
    )


def _warm_server(
    url: str, srv: harness.Server, size: dict[str, int], dialect: str, cycle: str
) -> None:
    """One unmeasured cycle of the same size against another directory of the same
    server, as a long-running server has served before the cycle measured next."""
    command = _cycle_command(url, srv, size, dialect, cycle, "--run-tag", "warm-up", "--quiet")
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the warm-up cycle failed ({out.returncode}):\n{out.stdout}")


def run_one(args: argparse.Namespace, backend: str, dialect: str) -> dict[str, Any]:
    size = dict(SIZES[args.size])
    if args.concurrency:
        size["concurrency"] = args.concurrency
    started = time.monotonic()
    with (
        harness.fresh_database(backend) as url,
        harness.server(url, workers=args.workers) as srv,
    ):
        if args.warm_server:
            _warm_server(url, srv, size, dialect, args.cycle)
        command = _cycle_command(url, srv, size, dialect, args.cycle, "--verify")
        if args.client:
            command += ["--client", args.client]
        host_before = hostspeed.calibrate()
        cap = (
            cpucap.capped(cpucap.worker_pids(srv.pid, args.workers), args.cpu_per_worker)
            if args.cpu_per_worker
            else contextlib.nullcontext([])
        )
        with cap as groups:
            pg_before = harness.postgres_cpu_s() if backend == "postgresql" else None
            out = subprocess.run(command, capture_output=True, text=True, check=False)
            pg_after = harness.postgres_cpu_s() if pg_before is not None else None
            throttled = [group.throttled() for group in groups]
        host_after = hostspeed.calibrate()
        if out.stderr.strip():
            print(out.stderr.rstrip(), file=sys.stderr)
        lines = out.stdout.strip().splitlines()
        if not lines or not lines[-1].startswith("{"):
            raise RuntimeError(f"loadgen failed ({out.returncode}):\n{out.stdout}")
        print("\n".join(lines[:-1]))
        summary: dict[str, Any] = json.loads(lines[-1])
        if pg_before is not None and pg_after is not None:
            used = pg_after - pg_before
            summary["postgres_cpu_s"] = round(used, 2)
            per_request = used / max(summary["requests"], 1) * 1e6
            print(
                f"postgresql: CPU {used:.2f} s ({per_request:.0f} µs/request; every postgres "
                "process of this machine)"
            )
        if args.cpu_per_worker:
            periods = sum(p for p, _ in throttled)
            held = sum(t for _, t in throttled)
            summary["cpu_per_worker"] = args.cpu_per_worker
            print(
                f"capped: {len(throttled)} worker(s) at {args.cpu_per_worker:.2f} core each, "
                f"held back in {held:,} of {periods:,} periods of 100 ms"
            )
        summary["host_ms"] = [host_before, host_after]
        print(
            f"host: {host_before:.1f} ms before, {host_after:.1f} ms after "
            "(bench/hostspeed.py, the same work each time: lower is a faster host)"
        )
        if "Traceback" in srv.log():
            print("server log has a traceback:\n" + srv.log()[-3000:], file=sys.stderr)
            summary["errors"] += 1
    summary.update(backend=backend, workers=args.workers, size=args.size)
    summary["total_s"] = round(time.monotonic() - started, 1)
    return summary


def targets(summary: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """The issue's targets for the mixed cycle, as (name, met, measured)."""
    worst_op, worst = max(
        ((op, s["p99_ms"]) for op, s in summary["operations"].items() if op != "verify"),
        key=lambda item: item[1],
    )
    rss = summary.get("server_peak_rss_mb", 0.0)
    return [
        (
            f"≥ {TARGET_RPS:.0f} requests/s",
            summary["requests_per_s"] >= TARGET_RPS,
            f"{summary['requests_per_s']:.0f}",
        ),
        ("zero errors", summary["errors"] == 0, str(summary["errors"])),
        (
            f"p99 of every operation ≤ {TARGET_P99_MS:.0f} ms",
            worst <= TARGET_P99_MS,
            f"worst {worst_op} {worst:.1f} ms",
        ),
        (f"peak server RSS ≤ {TARGET_RSS_MB:.0f} MB", rss <= TARGET_RSS_MB, f"{rss:.0f} MiB"),
    ]


def main() -> int:
    args = parse_args()
    backends = harness.BACKENDS if args.backend == "both" else (args.backend,)
    dialects = ("legacy", "compliant") if args.dialect == "both" else (args.dialect,)
    summaries = []
    failed = False
    for backend in backends:
        for dialect in dialects:
            print(f"\n== {backend}, {dialect} dialect, size {args.size}, workers {args.workers}")
            try:
                summary = run_one(args, backend, dialect)
            except Exception as exc:
                print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
                failed = True
                continue
            summaries.append(summary)
            failed = failed or summary["errors"] > 0
            print(f"({summary['total_s']} s including start-up and tear-down)")
    missed = False
    if args.size == "standard" and summaries:
        print("\n== targets (mixed cycle, 2,000 users / 20 groups x 100 members, concurrency 16)")
        for s in summaries:
            for name, met, measured in targets(s):
                missed = missed or not met
                mark = "met   " if met else "MISSED"
                print(f"{s['backend']:<11}{s['dialect']:<10}{mark} {name:<34}{measured}")
    if args.json_out:
        args.json_out.write_text(json.dumps(summaries, indent=2) + "\n")
    if failed:
        print("\nbenchmark FAILED: see the errors above", file=sys.stderr)
        return 1
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
