"""Restart benchmark: how a server just started on a populated PostgreSQL database answers
the first waves of an Entra member phase, with its sessions warmed or not.

    python bench/restart.py [--users 20000] [--groups 16] [--members 500] [--restarts 3]
                            [--waves 4] [--dialect legacy|compliant]

A fresh PostgreSQL database and an Entra directory made with the CLI; users, groups and
their memberships are written straight into the tables (SEEDING ONLY, see
``bench/seed.py``), then analysed. Then ``--restarts`` times each, alternating: a new
``scimgate serve`` with ``SCIMGATE_PG_WARM_SESSIONS=true``, then one with ``false``, each
sent ``--waves`` waves of 16 simultaneous add-10-members PATCHes (one per group, users
not yet in it). Prints each wave's median and slowest PATCH. The first wave is where a
new session's costs show (catalog caches, PostgreSQL's first plans); later waves are the
steady state to compare it with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import harness
import loadgen
import seed

WAVE = 16
CHUNK = 10


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--groups", type=int, default=WAVE)
    p.add_argument("--members", type=int, default=500, help="members of each group at first")
    p.add_argument("--restarts", type=int, default=3, help="servers of each kind")
    p.add_argument("--waves", type=int, default=4)
    p.add_argument("--dialect", choices=("legacy", "compliant"), default="legacy")
    return p.parse_args()


async def waves(
    base: str, token: str, groups: list[str], pool: list[str], a: argparse.Namespace
) -> list[tuple[float, float]]:
    """``(median, max)`` ms of each wave; takes its users from the front of ``pool``."""
    flag = "?" + loadgen.COMPLIANT_FLAG if a.dialect == "compliant" else ""
    out: list[tuple[float, float]] = []
    async with loadgen.Client("aiohttp", WAVE, token) as scim:

        async def one(group: str, ids: list[str]) -> float:
            body = json.dumps(loadgen.add_members_patch(ids, a.dialect)).encode()
            start = time.perf_counter()
            status, raw = await scim.send("PATCH", f"{base}/Groups/{group}{flag}", body)
            if status not in (200, 204):
                raise RuntimeError(f"PATCH → {status} {raw[:200]!r}")
            return 1000 * (time.perf_counter() - start)

        for _ in range(a.waves):
            batch = [
                (groups[n % len(groups)], [pool.pop(0) for _ in range(CHUNK)]) for n in range(WAVE)
            ]
            took = await asyncio.gather(*(one(g, ids) for g, ids in batch))
            out.append((round(statistics.median(took), 1), round(max(took), 1)))
    return out


def main() -> int:
    a = parse_args()
    needed = a.members + 2 * a.restarts * a.waves * WAVE * CHUNK
    if a.users < needed:
        print(f"--users must be at least {needed:,} for these settings", file=sys.stderr)
        return 2
    results: dict[str, list[Any]] = {"warm": [], "cold": []}
    with harness.fresh_database("postgresql") as url:
        directory = harness.new_directory(url, "http://127.0.0.1:9")
        eng = seed.engine(url)
        ids = seed.seed_users(eng, directory.id, a.users)
        groups = [seed.seed_group(eng, directory.id, f"group {n}") for n in range(a.groups)]
        for group in groups:
            seed.seed_members(eng, directory.id, group, ids[: a.members])
        seed.analyze(eng)
        eng.dispose()
        pool = ids[a.members :]
        for _ in range(a.restarts):
            for kind in ("warm", "cold"):
                env = {"SCIMGATE_PG_WARM_SESSIONS": "true" if kind == "warm" else "false"}
                with harness.server(url, env=env) as srv:
                    base = f"{srv.base_url}/scim/v2/{directory.id}"
                    took = loadgen.run_async(waves(base, directory.token, groups, pool, a))
                results[kind].append(took)
                print(f"{kind}: waves of {WAVE} add-10 PATCHes (median, max ms): {took}")
    for kind, runs in results.items():
        firsts = [run[0][0] for run in runs]
        later = [m for run in runs for m, _ in run[1:]]
        print(
            f"{kind}: first wave median {min(firsts)} to {max(firsts)} ms; "
            f"later waves {min(later)} to {max(later)} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
