"""Many tenants on one deployment: does a request cost the same when the traffic comes
from hundreds of directories, each with its own token, as when it comes from one?

    python bench/tenants.py --backend both                  # 200 tenants x 100 users
    python bench/tenants.py --tenants 500 --users 40 --groups 1 --members-per-group 20

On a fresh server and database (as ``bench/run.py``), the same Entra cycle
(``bench/loadgen.py``: match + create every user, match + create every group, add members
in chunks of 10, then the incremental changes) runs twice, in alternating order, with the
same total size and 16 requests in flight:

- ``one``: one directory holding the whole population, 16 requests at once;
- ``many``: ``--tenants`` directories (an organization each, made through the management
  API), each provisioning its own share one request at a time (an IdP's job per tenant),
  16 tenants at once, the next tenant starting as one finishes; every request carries
  its tenant's token.

Prints each run's per-operation latencies, requests/s and the server's CPU per request,
then the ratio many / one. Every tenant's user count is read back afterwards. A benchmark,
not a test. Exit code 1 on any failed request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from pathlib import Path
from statistics import median
from typing import Any

import harness
import loadgen


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=(*harness.BACKENDS, "both"), default="both")
    p.add_argument("--tenants", type=int, default=200)
    p.add_argument("--users", type=int, default=100, help="users per tenant")
    p.add_argument("--groups", type=int, default=2, help="groups per tenant")
    p.add_argument("--members-per-group", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=16, help="requests (tenants) in flight")
    p.add_argument("--dialect", choices=("legacy", "compliant"), default="legacy")
    p.add_argument("--pairs", type=int, default=1, help="one/many runs, alternating")
    p.add_argument("--json-out", type=Path)
    return p.parse_args()


def _api(base: str, key: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def make_tenants(srv: harness.Server, key: str, n: int, tag: str) -> list[harness.Directory]:
    """``n`` organizations with an Entra directory each, through the management API."""
    out = []
    for i in range(n):
        org = _api(srv.base_url, key, "/organizations", {"name": f"Tenant {tag}-{i}"})
        info = _api(
            srv.base_url,
            key,
            "/directories",
            {"organization_id": org["id"], "provider": "entra"},
        )
        out.append(harness.Directory(info["id"], info["scim_base_url"], info["token"]))
    return out


def _cycle_args(
    directory: harness.Directory, args: argparse.Namespace, scale: int, concurrency: int, tag: str
) -> argparse.Namespace:
    return loadgen.parse_args(
        [
            "--base-url",
            directory.scim_base_url,
            "--token",
            directory.token,
            "--users",
            str(args.users * scale),
            "--groups",
            str(args.groups * scale),
            "--members-per-group",
            str(args.members_per_group),
            "--concurrency",
            str(concurrency),
            "--dialect",
            args.dialect,
            "--run-tag",
            tag,
        ]
    )


async def _cycle(cycle_args: argparse.Namespace, rec: loadgen.Recorder) -> None:
    """One directory's whole cycle (initial, then incremental), recording into ``rec``;
    then the unmeasured read-back of its user count."""
    async with loadgen.Client("raw", cycle_args.concurrency, cycle_args.token) as client:
        cycle = loadgen.Cycle(cycle_args, client)
        cycle.rec = rec
        await cycle.initial()
        await cycle.incremental()
        await cycle.verify()


async def _run_many(cycles: list[argparse.Namespace], rec: loadgen.Recorder, at_once: int) -> None:
    pending = iter(cycles)

    async def lane() -> None:
        for cycle_args in pending:
            await _cycle(cycle_args, rec)

    await asyncio.gather(*(lane() for _ in range(at_once)))


def measure(
    srv: harness.Server, args: argparse.Namespace, key: str, shape: str, run: int
) -> dict[str, Any]:
    tag = f"{shape}{run}"
    if shape == "one":
        directory = make_tenants(srv, key, 1, tag)[0]
        cycles = [_cycle_args(directory, args, args.tenants, args.concurrency, tag)]
        at_once = 1
    else:
        tenants = make_tenants(srv, key, args.tenants, tag)
        cycles = [_cycle_args(d, args, 1, 1, f"{tag}t{i}") for i, d in enumerate(tenants)]
        at_once = args.concurrency
    rec = loadgen.Recorder()
    cpu0 = loadgen.cpu_seconds(srv.pid)
    started = time.perf_counter()
    loadgen.run_async(_run_many(cycles, rec, at_once))
    wall = time.perf_counter() - started
    cpu = loadgen.cpu_seconds(srv.pid) - cpu0
    requests = rec.requests
    ops = {
        op: {"requests": len(rec.latencies[op]), "errors": rec.errors.get(op, 0)}
        | loadgen.summarize(rec.latencies[op])
        for op in loadgen.OPERATIONS
        if rec.latencies.get(op)
    }
    return {
        "shape": shape,
        "directories": len(cycles),
        "requests": requests,
        "errors": rec.error_count,
        "error_samples": rec.samples[:5],
        "wall_s": round(wall, 2),
        "requests_per_s": round(requests / wall, 1),
        "server_cpu_us_per_req": round(1e6 * cpu / max(requests, 1), 1),
        "server_peak_rss_mb": round(loadgen.peak_rss_mb(srv.pid), 1),
        "operations": ops,
    }


def _print(backend: str, s: dict[str, Any]) -> None:
    print(
        f"\n== {backend}, {s['shape']}: {s['directories']} directories, "
        f"{s['requests']} requests, {s['errors']} errors"
    )
    print(f"{'operation':<16}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for op, o in s["operations"].items():
        print(
            f"{op:<16}{o['requests']:>9}{o['p50_ms']:>9.2f}{o['p95_ms']:>9.2f}{o['p99_ms']:>9.2f}"
        )
    print(
        f"{s['requests_per_s']:.0f} req/s, server CPU {s['server_cpu_us_per_req']:.0f} µs/request, "
        f"peak RSS {s['server_peak_rss_mb']:.1f} MiB"
    )
    for sample in s["error_samples"]:
        print("error:", sample, file=sys.stderr)


def main() -> int:
    args = parse_args()
    backends = harness.BACKENDS if args.backend == "both" else (args.backend,)
    results: list[dict[str, Any]] = []
    for backend in backends:
        with harness.fresh_database(backend) as url, harness.server(url) as srv:
            key = harness.cli(url, srv.base_url, "api-key", "create", "--name", "bench")["key"]
            runs: dict[str, list[dict[str, Any]]] = {"one": [], "many": []}
            for pair in range(args.pairs):
                order = ("one", "many") if pair % 2 == 0 else ("many", "one")
                for shape in order:
                    s = measure(srv, args, key, shape, pair)
                    _print(backend, s)
                    runs[shape].append(s | {"backend": backend})
            for shape in ("one", "many"):
                results += runs[shape]
            one, many = (median(r["requests_per_s"] for r in runs[k]) for k in ("one", "many"))
            cpu_one, cpu_many = (
                median(r["server_cpu_us_per_req"] for r in runs[k]) for k in ("one", "many")
            )
            print(
                f"\n{backend}: many / one = {many / one:.2f} in req/s ({many:.0f} / {one:.0f}), "
                f"{cpu_many / cpu_one:.2f} in server CPU per request "
                f"({cpu_many:.0f} / {cpu_one:.0f} µs)"
            )
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
