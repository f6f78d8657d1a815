"""Member-scaling benchmark: does a membership change cost the same in a 100-member group
as in a 100,000-member one, and does ``excludedAttributes=members`` skip the members?

    python bench/members.py [--backend sqlite|postgresql|both] [--small 100]
                            [--large 100000] [--iterations 100] [--dialect legacy|compliant]

Per backend: a fresh database and ``scimgate serve``; an Entra directory made with the CLI;
then users, an empty group, a small and a large group and their memberships are written
straight into the tables (SEEDING ONLY, see ``bench/seed.py``). Measured over HTTP, one
request at a time, as Entra's PATCHes would arrive:

  add_10         PATCH /Groups/{id}  add 10 members (users not yet in the group)
  remove_1       PATCH /Groups/{id}  remove 1 member (each of those 10, one request each)
  get_excl       GET /Groups/{id}?excludedAttributes=members
  member_check   GET /Groups?filter=id eq "…" and members[value eq "…"]&attributes=id
  members_page   GET /api/v1/groups/{id}/members?limit=100: the first page (management API)
  members_walk   the same, following next_cursor through every page of the group, once
  get_full       GET /Groups/{id} with its members, whole (SCIM has no member paging), 5 times

Every iteration adds the same 10 users and removes them again, so group sizes stay put.
Targets (issue 4): add_10 and remove_1 p50 ≤ 5 ms and the same for both sizes; get_excl on
the large group costs the same as on the empty one; a page of a large group's members
costs the same at any depth (members_walk against its first page), and the server's
peak RSS stays ≤ 250 MB.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any
from urllib.parse import quote

import harness
import loadgen
import seed

TARGET_P50_MS = 5.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--small", type=int, default=100, help="members of the small group")
    p.add_argument("--large", type=int, default=100_000, help="members of the large group")
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--dialect", choices=("legacy", "compliant"), default="legacy")
    p.add_argument("--json-out", help="also write the results to this file")
    return p.parse_args()


async def measure(
    base: str,
    token: str,
    groups: dict[str, str],
    pool: list[str],
    member: dict[str, str],
    a: Any,
    api: tuple[str, str],
) -> dict[str, dict[str, float]]:
    flag = "?" + loadgen.COMPLIANT_FLAG if a.dialect == "compliant" else ""
    amp = "&" if flag else "?"
    lat: dict[str, list[float]] = {}
    errors: list[str] = []

    api_base, api_key = api
    async with (
        loadgen.Client("aiohttp", 1, token) as scim,
        loadgen.Client("aiohttp", 1, api_key) as management,
    ):

        async def timed(
            key: str, method: str, url: str, body: Any, ok: tuple[int, ...], via: Any = scim
        ) -> tuple[int, bytes]:
            data = json.dumps(body).encode() if body is not None else None
            start = time.perf_counter()
            status, raw = await via.send(method, url, data)
            lat.setdefault(key, []).append(time.perf_counter() - start)
            if status not in ok:
                errors.append(f"{key}: {method} {url} → {status} {raw[:200]!r}")
            return status, raw

        # Small and large alternate, so that background noise hits both alike.
        for _ in range(a.iterations):
            for size in ("small", "large"):
                url = f"{base}/Groups/{groups[size]}{flag}"
                await timed(
                    f"add_10/{size}",
                    "PATCH",
                    url,
                    loadgen.add_members_patch(pool, a.dialect),
                    (200, 204),
                )
                for uid in pool:
                    await timed(
                        f"remove_1/{size}",
                        "PATCH",
                        url,
                        loadgen.remove_member_patch(uid, a.dialect),
                        (200, 204),
                    )
        for _ in range(a.iterations):
            for size in ("empty", "small", "large"):
                url = f"{base}/Groups/{groups[size]}{flag}{amp}excludedAttributes=members"
                await timed(f"get_excl/{size}", "GET", url, None, (200,))
        for _ in range(a.iterations):
            for size in ("small", "large"):
                filter_ = f'id eq "{groups[size]}" and members[value eq "{member[size]}"]'
                url = f"{base}/Groups{flag}{amp}filter={quote(filter_, safe='')}&attributes=id"
                await timed(f"member_check/{size}", "GET", url, None, (200,))
        for _ in range(a.iterations):
            for size in ("small", "large"):
                url = f"{api_base}/groups/{groups[size]}/members?limit=100"
                await timed(f"members_page/{size}", "GET", url, None, (200,), management)
        after, pages, walked = "", 0, 0
        while after is not None:
            url = f"{api_base}/groups/{groups['large']}/members?limit=100" + (
                f"&after={quote(after, safe='')}" if after else ""
            )
            status, raw = await timed("members_walk/large", "GET", url, None, (200,), management)
            if status != 200:
                break
            page = json.loads(raw)
            walked += len(page["data"])
            pages += 1
            after = page["next_cursor"]
        if walked != a.large:
            errors.append(f"members_walk: {walked:,} members in {pages} pages, not {a.large:,}")
        for _ in range(5):
            await timed(
                "get_full/large", "GET", f"{base}/Groups/{groups['large']}{flag}", None, (200,)
            )
    if errors:
        raise RuntimeError("requests failed:\n" + "\n".join(errors[:10]))
    return {k: {"requests": len(v), **loadgen.summarize(v)} for k, v in lat.items()}


def run_backend(backend: str, a: argparse.Namespace) -> dict[str, Any]:
    with harness.fresh_database(backend) as url, harness.server(url) as srv:
        directory = harness.new_directory(url, srv.base_url)
        eng = seed.engine(url)
        began = time.monotonic()
        ids = seed.seed_users(eng, directory.id, a.large + a.small + 10)
        large_ids, small_ids, pool = ids[: a.large], ids[a.large : a.large + a.small], ids[-10:]
        groups = {
            size: seed.seed_group(eng, directory.id, f"{size} group")
            for size in ("empty", "small", "large")
        }
        seed.seed_members(eng, directory.id, groups["small"], small_ids)
        seed.seed_members(eng, directory.id, groups["large"], large_ids)
        seed.analyze(eng)
        eng.dispose()
        seeded_s = time.monotonic() - began
        print(
            f"{backend}: seeded {len(ids):,} users, groups of 0 / {a.small:,} / {a.large:,} "
            f"members in {seeded_s:.1f} s"
        )
        member = {"small": small_ids[len(small_ids) // 2], "large": large_ids[len(large_ids) // 2]}
        key = harness.cli(url, srv.base_url, "api-key", "create", "--name", "bench")["key"]
        api = (f"{srv.base_url}/api/v1", key)
        results = loadgen.run_async(
            measure(directory.scim_base_url, directory.token, groups, pool, member, a, api)
        )
        rss = loadgen.peak_rss_mb(srv.pid)
    return {
        "backend": backend,
        "small": a.small,
        "large": a.large,
        "dialect": a.dialect,
        "seed_s": round(seeded_s, 1),
        "server_peak_rss_mb": round(rss, 1),
        "operations": results,
    }


def report(r: dict[str, Any]) -> list[str]:
    ops = r["operations"]
    lines = [
        f"\n== {r['backend']}: member scaling ({r['dialect']} dialect; groups of 0, "
        f"{r['small']:,} and {r['large']:,} members)",
        f"{'operation':<22}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}",
    ]
    for key, s in ops.items():
        lines.append(
            f"{key:<22}{s['requests']:>9}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}"
            f"{s['p99_ms']:>9.2f}{s['max_ms']:>9.2f}"
        )
    lines.append(f"server peak RSS {r['server_peak_rss_mb']:.1f} MiB")

    def check(name: str, met: bool, measured: str) -> None:
        lines.append(f"{'met   ' if met else 'MISSED'} {name:<58}{measured}")

    for op in ("add_10", "remove_1"):
        small, large = ops[f"{op}/small"]["p50_ms"], ops[f"{op}/large"]["p50_ms"]
        check(
            f"{op} p50 ≤ {TARGET_P50_MS:.0f} ms at both sizes",
            max(small, large) <= TARGET_P50_MS,
            f"{small:.2f} / {large:.2f} ms",
        )
        check(
            f"{op} large ≈ small (p50 within 1.5x)", large <= 1.5 * small, f"x{large / small:.2f}"
        )
    empty, large = ops["get_excl/empty"]["p50_ms"], ops["get_excl/large"]["p50_ms"]
    check("get_excl large ≈ empty (p50 within 1.5x)", large <= 1.5 * empty, f"x{large / empty:.2f}")
    first, walk = ops["members_page/large"]["p50_ms"], ops["members_walk/large"]["p50_ms"]
    check(
        "member pages at any depth ≈ the first (p50 within 1.5x)",
        walk <= 1.5 * first,
        f"x{walk / first:.2f}",
    )
    rss = r["server_peak_rss_mb"]
    check("server peak RSS ≤ 250 MB (get_full included)", rss * 1.048576 <= 250, f"{rss:.0f} MiB")
    return lines


def main() -> int:
    a = parse_args()
    backends = harness.BACKENDS if a.backend == "both" else (a.backend,)
    results = []
    for backend in backends:
        r = run_backend(backend, a)
        results.append(r)
        print("\n".join(report(r)))
    print(json.dumps(results, separators=(",", ":")))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
