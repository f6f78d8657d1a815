"""Match latency at scale: ``GET /Users?filter=userName eq "…"`` in a directory of N users.

    python bench/million.py [--backend sqlite|postgresql|both] [--users 1000000]
                            [--lookups 1000] [--concurrency 1]

Per backend: a fresh database and ``scimgate serve``, an Entra directory made with the CLI,
N users written straight into the ``users`` table (SEEDING ONLY, see ``bench/seed.py``;
followed by ANALYZE, as autovacuum would do after a bulk load), then ``--lookups`` matches
of random existing users (``hit``: Entra's match on an already-provisioned user) and of
absent ones (``miss``: the match before every create, and Test Connection), each one
request at a time by default. Target (issue 4): p50 ≤ 3 ms with 1,000,000 users.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any

import harness
import loadgen
import seed

TARGET_P50_MS = 3.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--lookups", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json-out", help="also write the results to this file")
    return p.parse_args()


async def lookups(base: str, token: str, names: dict[str, list[str]], concurrency: int) -> Any:
    out: dict[str, Any] = {}
    async with loadgen.Client("aiohttp", concurrency, token) as client:
        for kind, wanted in names.items():
            expected = 1 if kind == "hit" else 0
            lat: list[float] = []
            errors: list[str] = []
            todo = iter(wanted)

            async def worker(
                expected: int = expected, lat: Any = lat, errors: Any = errors, todo: Any = todo
            ) -> None:
                for name in todo:
                    url = f"{base}/Users?filter={loadgen.eq_filter('userName', name)}"
                    start = time.perf_counter()
                    status, raw = await client.send("GET", url)
                    lat.append(time.perf_counter() - start)
                    body = json.loads(raw) if status == 200 else {}
                    if status != 200 or body.get("totalResults") != expected:
                        errors.append(f"{name}: {status} {raw[:200]!r}")

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            wall = time.perf_counter() - t0
            if errors:
                raise RuntimeError(f"{len(errors)} lookups failed: {errors[:3]}")
            out[f"match_user/{kind}"] = {
                "requests": len(lat),
                "requests_per_s": round(len(lat) / wall, 1),
                **loadgen.summarize(lat),
            }
    return out


def run_backend(backend: str, a: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(a.seed)
    with harness.fresh_database(backend) as url, harness.server(url) as srv:
        directory = harness.new_directory(url, srv.base_url)
        eng = seed.engine(url)
        print(f"{backend}: seeding {a.users:,} users …", flush=True)
        began = time.monotonic()
        seed.seed_users(eng, directory.id, a.users, prefix="million", keep_ids=False, progress=True)
        seed.analyze(eng)
        eng.dispose()
        seeded_s = time.monotonic() - began
        print(f"{backend}: seeded {a.users:,} users in {seeded_s:.0f} s", flush=True)
        names = {
            "hit": [seed.user_name("million", rng.randrange(a.users)) for _ in range(a.lookups)],
            "miss": [f"absent.{rng.getrandbits(64):x}@contoso.com" for _ in range(a.lookups)],
        }
        results = loadgen.run_async(
            lookups(directory.scim_base_url, directory.token, names, a.concurrency)
        )
        rss = loadgen.peak_rss_mb(srv.pid)
    return {
        "backend": backend,
        "users": a.users,
        "concurrency": a.concurrency,
        "seed_s": round(seeded_s, 1),
        "server_peak_rss_mb": round(rss, 1),
        "operations": results,
    }


def main() -> int:
    a = parse_args()
    backends = harness.BACKENDS if a.backend == "both" else (a.backend,)
    results = []
    for backend in backends:
        r = run_backend(backend, a)
        results.append(r)
        print(f"\n== {backend}: userName eq lookups among {a.users:,} users")
        print(
            f"{'operation':<18}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        )
        for key, s in r["operations"].items():
            print(
                f"{key:<18}{s['requests']:>9}{s['requests_per_s']:>8.0f}{s['p50_ms']:>9.2f}"
                f"{s['p95_ms']:>9.2f}{s['p99_ms']:>9.2f}"
            )
        for key, s in r["operations"].items():
            met = s["p50_ms"] <= TARGET_P50_MS
            print(
                f"{'met   ' if met else 'MISSED'} {key} p50 ≤ {TARGET_P50_MS:.0f} ms: {s['p50_ms']}"
            )
        print(f"server peak RSS {r['server_peak_rss_mb']:.1f} MiB")
    print(json.dumps(results, separators=(",", ":")))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
