"""Two checkouts against each other, run after run, alternating: the A/B this project's
benchmark figures rest on.

    python bench/ab.py /tmp/base/src [--pairs 3] [run.py options…]
    python bench/ab.py /tmp/base/src /tmp/other/src --pairs 4 --size standard --backend postgresql

A is the first ``src`` directory (``git archive COMMIT src | tar -x -C /tmp/base``), B the
second, or this checkout when there is none. Each pair runs ``bench/run.py`` once for A
and once for B (the order alternates from pair to pair), with the options that follow,
and one backend and dialect per run (default PostgreSQL, legacy). It prints every run and
then the medians: requests/s, server CPU per request, the p99 of the worst operation, and
on PostgreSQL the database's CPU per request and its ratio to the server's.

Why alternate: the hosts this is measured on drift by tens of per cent within minutes
(CPU steal), so only runs made at the same moment compare, and a figure that moves with
the host (req/s) is less telling than one that divides it out (PostgreSQL's CPU next to
the server's in the same run). Exit code 1 if any run failed or had errors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("a", type=Path, help="the src directory of A")
    p.add_argument(
        "b", type=Path, nargs="?", help="the src directory of B (default: this checkout)"
    )
    p.add_argument("--pairs", type=int, default=3)
    args, rest = p.parse_known_args()
    if not any(r == "--backend" or r.startswith("--backend=") for r in rest):
        rest += ["--backend", "postgresql"]
    if not any(r == "--dialect" or r.startswith("--dialect=") for r in rest):
        rest += ["--dialect", "legacy"]
    if not any(r == "--size" or r.startswith("--size=") for r in rest):
        rest += ["--size", "standard"]
    return args, rest


def run(src: Path | None, options: list[str]) -> dict[str, Any] | None:
    """One ``bench/run.py`` with ``src`` (None: this checkout); its summary, or None."""
    env = dict(os.environ)
    env.pop("SCIMGATE_BENCH_SRC", None)
    if src is not None:
        env["SCIMGATE_BENCH_SRC"] = str(src)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        done = subprocess.run(
            [sys.executable, str(HERE / "run.py"), *options, "--json-out", out.name],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(done.stdout[-2000:] + done.stderr[-2000:], file=sys.stderr)
            return None
        summaries: list[dict[str, Any]] = json.loads(Path(out.name).read_text())
    if len(summaries) != 1:
        raise SystemExit("bench/ab.py compares one backend and one dialect at a time")
    return summaries[0]


def figures(summary: dict[str, Any]) -> dict[str, float]:
    found = {
        "req/s": float(summary["requests_per_s"]),
        "server µs/req": float(summary["server_cpu_us_per_req"]),
        # The latency target: the p99 of every operation (the worst one's).
        "worst p99 ms": max(float(op["p99_ms"]) for op in summary["operations"].values()),
    }
    if "postgres_cpu_s" in summary:
        pg = summary["postgres_cpu_s"] / max(summary["requests"], 1) * 1e6
        found["PG µs/req"] = pg
        found["PG/server"] = pg / max(found["server µs/req"], 1e-9)
    return found


def main() -> int:
    args, options = parse_args()
    sides = {"A": args.a, "B": args.b}
    seen: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    failed = False
    for pair in range(args.pairs):
        for side in ("A", "B") if pair % 2 == 0 else ("B", "A"):
            summary = run(sides[side], options)
            if summary is None or summary["errors"]:
                failed = True
                print(f"pair {pair + 1} {side}: FAILED", flush=True)
                continue
            found = figures(summary)
            seen[side].append(found)
            shown = "  ".join(
                f"{k} {v:,.0f}" if v >= 100 else f"{k} {v:,.2f}" for k, v in found.items()
            )
            print(f"pair {pair + 1} {side}: {shown}", flush=True)
    print(f"\nmedians over {args.pairs} pairs ({' '.join(options)})")
    print(f"A = {args.a}\nB = {args.b or 'this checkout'}")
    keys = list(seen["A"][0]) if seen["A"] else list(seen["B"][0]) if seen["B"] else []
    for key in keys:
        a = statistics.median(r[key] for r in seen["A"]) if seen["A"] else float("nan")
        b = statistics.median(r[key] for r in seen["B"]) if seen["B"] else float("nan")
        change = (b - a) / a * 100 if a else float("nan")
        fmt = "{:,.0f}" if max(a, b) >= 100 else "{:,.2f}"
        print(f"{key:<15} A {fmt.format(a):>8}   B {fmt.format(b):>8}   {change:+.1f} %")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
