"""Replay a Microsoft Entra ID provisioning cycle against any SCIM 2.0 base URL.

A benchmark, not a test: it measures how fast a SCIM server absorbs what Entra sends,
per operation, and counts every unexpected answer as an error (exit code 1).

    python bench/loadgen.py --base-url http://127.0.0.1:8000/scim/v2/DIR --token scimgate_… \\
        --users 2000 --groups 20 --members-per-group 100 --concurrency 16 --cycle both

Initial cycle (what Entra does on first provisioning):
  users   for every user: ``GET /Users?filter=userName eq "…"`` (match), then ``POST /Users``
  groups  for every group: ``GET /Groups?excludedAttributes=members&filter=displayName eq "…"``
          (match), ``POST /Groups`` (empty), then ``PATCH /Groups/{id}`` adding members in
          chunks of ``--member-chunk``
Incremental cycle (a later delta cycle): attribute PATCHes on 20 % of the users,
``active`` = false on 5 %, one-member removals (``--remove-fraction`` of each group's
members, one PATCH each), and ``DELETE /Users/{id}`` on 2 %. The user sets are disjoint, and
removed members are never deleted users, so every request has one right answer.

Both Entra PATCH dialects: ``--dialect legacy`` (``Replace``/``Add``/``Remove``, ``"False"``
as a string, members removed by value list) and ``--dialect compliant`` (what Entra sends
with ``?aadOptscim062020`` in the Tenant URL, which then rides on every request: lower-case
ops, real booleans, path-less replace with a value object, ``members[value eq "…"]``).

Output: a table (requests, errors, p50/p95/p99/max per operation), then one JSON line.
The client's own CPU time is reported, so a saturated client is visible; with
``--server-pid`` also the server's peak RSS (``VmHWM`` from ``/proc``, summed over its
worker processes) and its CPU time during the run.

Only standard library plus one HTTP client: ``raw`` (the default: ``bench/rawhttp.py``,
asyncio plus httptools' parser, ~4x less client CPU per request than aiohttp, so that the
client takes less of the machine it shares with the server), aiohttp (``--client
aiohttp``) or httpx (``--client httpx``, ~3x more than aiohttp).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MS_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
COMPLIANT_FLAG = "aadOptscim062020"

OPERATIONS = (
    "match_user",
    "create_user",
    "match_group",
    "create_group",
    "add_members",
    "patch_user",
    "deactivate_user",
    "remove_member",
    "delete_user",
)

FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Frances", "Linus", "Radia", "Tim")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Allen", "Torvalds")
DEPARTMENTS = ("Sales", "Engineering", "Finance", "Legal", "Support", "Marketing", "HR")
TITLES = ("Engineer", "Manager", "Analyst", "Director", "Consultant", "Specialist")
CITIES = ("Seattle", "Dublin", "Munich", "Singapore", "Toronto", "Sydney")


# -- /proc helpers (Linux), also used by run.py ---------------------------------------------


def _proc_status_number(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants (uvicorn workers, multiprocessing helpers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def peak_rss_mb(pid: int) -> float:
    """Peak resident set (``VmHWM``) of a process tree in MiB: for one process its true
    peak; for several, the sum of their peaks (an upper bound on the tree's peak)."""
    return sum(_proc_status_number(p, "VmHWM") for p in process_tree(pid)) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed so far by a live process tree."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return total / tick


def preemptions(pid: int) -> int:
    """Involuntary context switches so far of every thread of a live process tree: how
    often the scheduler took a core from the server while it had work (on a host with
    fewer cores than busy processes, each one also costs the caches it warmed)."""
    total = 0
    for p in process_tree(pid):
        for task in Path(f"/proc/{p}/task").glob("*"):
            total += _proc_status_number(int(task.name), "nonvoluntary_ctxt_switches")
    return total


# -- HTTP clients ----------------------------------------------------------------------------


Send = Callable[[str, str, bytes | None], Awaitable[tuple[int, bytes]]]
"""(method, url-with-query, body) → (status, body); raises on transport errors."""


class Client:
    """A keep-alive connection pool of ``concurrency`` connections: the lean ``raw``
    client (``bench/rawhttp.py``), aiohttp or httpx."""

    def __init__(self, kind: str, concurrency: int, token: str) -> None:
        self.kind = kind
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": SCIM_JSON,
            "Accept": SCIM_JSON,
        }
        self._session: Any = None
        self.concurrency = concurrency

    async def __aenter__(self) -> Client:
        if self.kind == "raw":
            from rawhttp import RawClient

            self._session = RawClient(self.concurrency, self.headers)
        elif self.kind == "aiohttp":
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=None),
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=60),
                skip_auto_headers=("User-Agent",),
            )
        else:
            import httpx

            self._session = httpx.AsyncClient(
                headers=self.headers,
                timeout=60,
                limits=httpx.Limits(
                    max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                ),
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.kind in ("raw", "aiohttp"):
            await self._session.close()
        else:
            await self._session.aclose()

    async def send(self, method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.kind == "raw":
            result: tuple[int, bytes] = await self._session.send(method, url, body)
            return result
        if self.kind == "aiohttp":
            import yarl

            async with self._session.request(
                method, yarl.URL(url, encoded=True), data=body
            ) as resp:
                return resp.status, await resp.read()
        r = await self._session.request(method, url, content=body)
        return r.status_code, r.content


def default_client() -> str:
    """``raw`` when httptools is installed (it comes with uvicorn), else aiohttp, else httpx."""
    for kind, module in (("raw", "httptools"), ("aiohttp", "aiohttp")):
        try:
            __import__(module)
        except ImportError:
            continue
        return kind
    return "httpx"


# -- measurements ------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Latency statistics in milliseconds."""
    s = sorted(values)
    return {
        "p50_ms": round(percentile(s, 50) * 1000, 2),
        "p95_ms": round(percentile(s, 95) * 1000, 2),
        "p99_ms": round(percentile(s, 99) * 1000, 2),
        "max_ms": round((s[-1] if s else 0) * 1000, 2),
        "mean_ms": round((sum(s) / len(s) if s else 0) * 1000, 2),
    }


@dataclass
class Recorder:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)

    def error(self, op: str, detail: str) -> None:
        self.errors[op] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{op}: {detail}"[:400])

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


# -- Entra bodies ---------------------------------------------------------------------------


@dataclass
class FakeUser:
    index: int
    user_name: str
    external_id: str
    given: str
    family: str
    department: str
    id: str | None = None


@dataclass
class FakeGroup:
    index: int
    display_name: str
    external_id: str
    members: list[FakeUser]
    id: str | None = None


def make_population(
    rng: random.Random, users: int, groups: int, per_group: int, run_tag: str
) -> tuple[list[FakeUser], list[FakeGroup]]:
    people = []
    for i in range(users):
        given, family = rng.choice(FIRST), rng.choice(LAST)
        people.append(
            FakeUser(
                index=i,
                user_name=f"{given}.{family}.{i}.{run_tag}@contoso.com",
                external_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                given=given,
                family=family,
                department=rng.choice(DEPARTMENTS),
            )
        )
    teams = []
    for g in range(groups):
        members = rng.sample(people, min(per_group, len(people)))
        teams.append(
            FakeGroup(
                index=g,
                display_name=f"{rng.choice(DEPARTMENTS)} team {g} {run_tag}",
                external_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                members=members,
            )
        )
    return people, teams


def user_body(u: FakeUser) -> dict[str, Any]:
    """A ``POST /Users`` as Entra sends it with the default attribute mappings."""
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": u.external_id,
        "userName": u.user_name,
        "active": True,
        "displayName": f"{u.given} {u.family}",
        "emails": [{"primary": True, "type": "work", "value": u.user_name}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": f"{u.given} {u.family}",
            "familyName": u.family,
            "givenName": u.given,
        },
        "title": TITLES[u.index % len(TITLES)],
        "phoneNumbers": [{"type": "work", "value": f"+1 425 555 {u.index % 10000:04d}"}],
        "addresses": [{"type": "work", "locality": CITIES[u.index % len(CITIES)], "country": "US"}],
        "roles": [],
        ENTERPRISE: {"department": u.department, "employeeNumber": f"E-{u.index}"},
    }


def group_body(g: FakeGroup) -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA, MS_GROUP_SCHEMA],
        "externalId": g.external_id,
        "displayName": g.display_name,
        "meta": {"resourceType": "Group"},
    }


def patch(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": ops}


def attribute_patch(u: FakeUser, dialect: str, n: int) -> dict[str, Any]:
    """An attribute change on a user: new mail, surname, mobile, title, employee number."""
    family = f"{u.family}-{n}"
    mail = f"{u.given}.{family}.{u.index}@contoso.com".lower()
    mobile = f"+1 206 555 {(u.index + n) % 10000:04d}"
    if dialect == "legacy":
        return patch(
            [
                {"op": "Replace", "path": 'emails[type eq "work"].value', "value": mail},
                {"op": "Replace", "path": "name.familyName", "value": family},
                {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": mobile},
                {"op": "Replace", "path": "title", "value": "Senior Engineer"},
                {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": f"E-{n}"},
            ]
        )
    return patch(
        [
            {
                "op": "replace",
                "value": {
                    "name.familyName": family,
                    "title": "Senior Engineer",
                    f"{ENTERPRISE}:employeeNumber": f"E-{n}",
                },
            },
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": mail},
            {"op": "add", "path": 'phoneNumbers[type eq "mobile"].value', "value": mobile},
        ]
    )


def deactivate_patch(dialect: str) -> dict[str, Any]:
    if dialect == "legacy":
        return patch([{"op": "Replace", "path": "active", "value": "False"}])
    return patch([{"op": "replace", "path": "active", "value": False}])


def add_members_patch(ids: Sequence[str], dialect: str) -> dict[str, Any]:
    if dialect == "legacy":
        value = [{"$ref": None, "value": i} for i in ids]
        return patch([{"op": "Add", "path": "members", "value": value}])
    return patch([{"op": "add", "path": "members", "value": [{"value": i} for i in ids]}])


def remove_member_patch(member_id: str, dialect: str) -> dict[str, Any]:
    if dialect == "legacy":
        return patch([{"op": "Remove", "path": "members", "value": [{"value": member_id}]}])
    return patch([{"op": "remove", "path": f'members[value eq "{member_id}"]'}])


def eq_filter(attribute: str, value: str) -> str:
    return quote(f'{attribute} eq "{value}"', safe="")


# -- the cycle -------------------------------------------------------------------------------


class Cycle:
    """One provisioning run: its population, client, URLs and recorder."""

    def __init__(self, args: argparse.Namespace, client: Client) -> None:
        self.args = args
        self.client = client
        self.base = args.base_url.rstrip("/")
        self.flag = COMPLIANT_FLAG if args.dialect == "compliant" else ""
        self.rec = Recorder()
        self.measuring = True
        rng = random.Random(args.seed)
        tag = args.run_tag or f"{rng.getrandbits(32):08x}"
        self.users, self.groups = make_population(
            rng, args.users, args.groups, args.members_per_group, tag
        )
        self.rng = rng

    def url(self, path: str, query: str = "") -> str:
        parts = [p for p in (self.flag, query) if p]
        return f"{self.base}{path}" + ("?" + "&".join(parts) if parts else "")

    async def call(
        self,
        op: str,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        expect: tuple[int, ...],
    ) -> Any:
        """One request; returns the parsed JSON body (or None), records latency/errors."""
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        start = time.perf_counter()
        try:
            status, raw = await self.client.send(method, url, data)
        except Exception as exc:
            self.rec.error(op, f"{method} {url}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - start
        if self.measuring:
            self.rec.latencies[op].append(elapsed)
        if status not in expect:
            self.rec.error(op, f"{method} {url} → {status} {raw[:200]!r}")
            return None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            self.rec.error(op, f"{method} {url} → {status} with a body that is not JSON")
            return None

    async def run_jobs(self, jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
        """Run jobs (each a short sequence of requests) on ``concurrency`` workers."""
        queue = iter(jobs)

        async def worker() -> None:
            for job in queue:
                await job()

        await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))

    # initial cycle

    async def provision_user(self, u: FakeUser) -> None:
        found = await self.call(
            "match_user",
            "GET",
            self.url("/Users", "filter=" + eq_filter("userName", u.user_name)),
            None,
            (200,),
        )
        if found is None:
            return
        if found.get("totalResults"):
            self.rec.error("match_user", f"{u.user_name} already exists (reused database?)")
            u.id = found["Resources"][0]["id"]
            return
        created = await self.call("create_user", "POST", self.url("/Users"), user_body(u), (201,))
        if created is not None:
            u.id = created.get("id")

    async def provision_group(self, g: FakeGroup) -> None:
        found = await self.call(
            "match_group",
            "GET",
            self.url(
                "/Groups",
                "excludedAttributes=members&filter=" + eq_filter("displayName", g.display_name),
            ),
            None,
            (200,),
        )
        if found is None:
            return
        if found.get("totalResults"):
            self.rec.error("match_group", f"{g.display_name} already exists (reused database?)")
            return
        created = await self.call(
            "create_group", "POST", self.url("/Groups"), group_body(g), (201,)
        )
        if created is not None:
            g.id = created.get("id")

    async def add_members(self, g: FakeGroup, ids: list[str]) -> None:
        await self.call(
            "add_members",
            "PATCH",
            self.url(f"/Groups/{g.id}"),
            add_members_patch(ids, self.args.dialect),
            (200, 204),
        )

    async def initial(self) -> None:
        await self.run_jobs([lambda u=u: self.provision_user(u) for u in self.users])
        await self.run_jobs([lambda g=g: self.provision_group(g) for g in self.groups])
        # Member chunks, round-robin over the groups (Entra works through many groups at once).
        size = self.args.member_chunk
        per_group = [
            [
                [m.id for m in g.members[i : i + size] if m.id]
                for i in range(0, len(g.members), size)
            ]
            for g in self.groups
            if g.id
        ]
        live = [g for g in self.groups if g.id]
        jobs: list[Callable[[], Awaitable[None]]] = []
        for round_ in range(max((len(c) for c in per_group), default=0)):
            for g, chunks in zip(live, per_group, strict=True):
                if round_ < len(chunks) and chunks[round_]:
                    jobs.append(lambda g=g, ids=chunks[round_]: self.add_members(g, ids))
        await self.run_jobs(jobs)

    # incremental cycle

    async def incremental(self) -> None:
        a = self.args
        live = [u for u in self.users if u.id]
        order = live[:]
        self.rng.shuffle(order)
        n_patch = round(len(live) * a.patch_fraction)
        n_off = round(len(live) * a.deactivate_fraction)
        n_del = round(len(live) * a.delete_fraction)
        to_patch = order[:n_patch]
        to_deactivate = order[n_patch : n_patch + n_off]
        to_delete = order[n_patch + n_off : n_patch + n_off + n_del]
        deleted = {u.index for u in to_delete}
        jobs: list[Callable[[], Awaitable[None]]] = []
        for n, u in enumerate(to_patch):
            jobs.append(
                lambda u=u, n=n: self.call(
                    "patch_user",
                    "PATCH",
                    self.url(f"/Users/{u.id}"),
                    attribute_patch(u, a.dialect, n),
                    (200, 204),
                )
            )
        for u in to_deactivate:
            jobs.append(
                lambda u=u: self.call(
                    "deactivate_user",
                    "PATCH",
                    self.url(f"/Users/{u.id}"),
                    deactivate_patch(a.dialect),
                    (200, 204),
                )
            )
        for g in self.groups:
            if not g.id:
                continue
            candidates = [m for m in g.members if m.id and m.index not in deleted]
            k = min(len(candidates), max(1, round(len(g.members) * a.remove_fraction)))
            for m in self.rng.sample(candidates, k):
                jobs.append(
                    lambda g=g, m=m: self.call(
                        "remove_member",
                        "PATCH",
                        self.url(f"/Groups/{g.id}"),
                        remove_member_patch(m.id or "", a.dialect),
                        (200, 204),
                    )
                )
        for u in to_delete:
            jobs.append(
                lambda u=u: self.call(
                    "delete_user", "DELETE", self.url(f"/Users/{u.id}"), None, (204,)
                )
            )
        self.rng.shuffle(jobs)  # a delta cycle interleaves all kinds of change
        await self.run_jobs(jobs)
        self.expected_users = len(live) - len(to_delete)

    async def verify(self) -> None:
        """Unmeasured read-back: user count and the first group's member count."""
        self.measuring = False
        got = await self.call("verify", "GET", self.url("/Users", "count=0"), None, (200,))
        expected = getattr(self, "expected_users", sum(1 for u in self.users if u.id))
        if got is not None and got.get("totalResults") != expected:
            self.rec.error("verify", f"{got.get('totalResults')} users, expected {expected}")


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base-url", required=True, help="SCIM base URL (…/scim/v2/DIRECTORY_ID)")
    p.add_argument("--token", required=True, help="bearer token")
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--groups", type=int, default=20)
    p.add_argument("--members-per-group", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--dialect", choices=("legacy", "compliant"), default="legacy")
    p.add_argument("--cycle", choices=("initial", "incremental", "both"), default="both")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--member-chunk", type=int, default=10, help="members per add PATCH")
    p.add_argument("--patch-fraction", type=float, default=0.20)
    p.add_argument("--deactivate-fraction", type=float, default=0.05)
    p.add_argument("--delete-fraction", type=float, default=0.02)
    p.add_argument(
        "--remove-fraction",
        type=float,
        default=0.10,
        help="share of each group's members removed, one PATCH per member",
    )
    p.add_argument("--client", choices=("raw", "aiohttp", "httpx"), default=default_client())
    p.add_argument("--server-pid", type=int, help="report this process tree's peak RSS and CPU")
    p.add_argument("--run-tag", help="suffix making names unique (default: from --seed)")
    p.add_argument("--verify", action="store_true", help="read back the user count afterwards")
    p.add_argument("--quiet", action="store_true", help="only the JSON summary line")
    return p.parse_args(argv)


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"{'operation':<16}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}"
    ]
    for op, s in summary["operations"].items():
        lines.append(
            f"{op:<16}{s['requests']:>9}{s['errors']:>8}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}"
            f"{s['p99_ms']:>9.2f}{s['max_ms']:>9.2f}"
        )
    t = summary
    lines.append(
        f"{'total':<16}{t['requests']:>9}{t['errors']:>8}   wall {t['wall_s']:.2f} s   "
        f"{t['requests_per_s']:.0f} req/s"
    )
    lines.append(
        f"client: {t['client']}, CPU {t['client_cpu_s']:.2f} s "
        f"({t['client_cpu_us_per_req']:.0f} µs/request, {t['client_cpu_pct']:.0f} % of one core)"
    )
    if t.get("server_peak_rss_mb") is not None:
        lines.append(
            f"server: peak RSS {t['server_peak_rss_mb']:.1f} MiB, CPU {t['server_cpu_s']:.2f} s "
            f"({t['server_cpu_us_per_req']:.0f} µs/request), "
            f"preempted {t.get('server_preemptions', 0):,} times"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with Client(args.client, args.concurrency, args.token) as client:
        cycle = Cycle(args, client)
        if args.cycle == "incremental":  # set-up, not measured
            cycle.measuring = False
            await cycle.initial()
            cycle.measuring = True
            setup_errors = cycle.rec.error_count
            if setup_errors:
                raise SystemExit(f"set-up failed: {cycle.rec.samples}")
        server_cpu0 = cpu_seconds(args.server_pid) if args.server_pid else 0.0
        preempted0 = preemptions(args.server_pid) if args.server_pid else 0
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        if args.cycle in ("initial", "both"):
            await cycle.initial()
        if args.cycle in ("incremental", "both"):
            await cycle.incremental()
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = cpu_seconds(args.server_pid) - server_cpu0 if args.server_pid else None
        preempted = preemptions(args.server_pid) - preempted0 if args.server_pid else 0
        if args.verify:
            await cycle.verify()
    rec = cycle.rec
    client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    requests = rec.requests
    ops = {}
    for op in (*OPERATIONS, "verify"):
        if rec.latencies.get(op) or rec.errors.get(op):
            ops[op] = {
                "requests": len(rec.latencies.get(op, [])),
                "errors": rec.errors.get(op, 0),
                **summarize(rec.latencies.get(op, [])),
            }
    summary: dict[str, Any] = {
        "users": args.users,
        "groups": args.groups,
        "members_per_group": args.members_per_group,
        "concurrency": args.concurrency,
        "dialect": args.dialect,
        "cycle": args.cycle,
        "client": args.client,
        "requests": requests,
        "errors": rec.error_count,
        "wall_s": round(wall, 3),
        "requests_per_s": round(requests / wall, 1) if wall else 0.0,
        "client_cpu_s": round(client_cpu, 3),
        "client_cpu_pct": round(100 * client_cpu / wall, 1) if wall else 0.0,
        "client_cpu_us_per_req": round(1e6 * client_cpu / requests, 1) if requests else 0.0,
        "operations": ops,
        "error_samples": rec.samples,
    }
    if args.server_pid:
        summary["server_peak_rss_mb"] = round(peak_rss_mb(args.server_pid), 1)
        summary["server_cpu_s"] = round(server_cpu or 0.0, 3)
        summary["server_cpu_us_per_req"] = (
            round(1e6 * (server_cpu or 0.0) / requests, 1) if requests else 0.0
        )
        summary["server_preemptions"] = preempted
    return summary


def run_async(coro: Awaitable[Any]) -> Any:
    """Run a coroutine on uvloop when installed (less client CPU per request)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    summary = run_async(run(args))
    if not args.quiet:
        print(table(summary))
        for sample in summary["error_samples"]:
            print("error:", sample, file=sys.stderr)
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
