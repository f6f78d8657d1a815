"""Server CPU per SCIM operation, in-process: no HTTP, no client, no other load.

    python bench/cpu.py [--backend sqlite|postgresql|both] [--users 300] [--dialect legacy]

Builds the whole app with ``create_app`` (middleware included, webhook worker off) on a
fresh database and drives it with ASGI calls one at a time, with the bodies of
``bench/loadgen.py``. Prints the CPU time (``time.process_time``) per request for each
operation, the mean over all its requests, and on PostgreSQL the round trips to the
database per request (psycopg's waits for an answer: one per simple-query message, one
or more per pipeline; a connection's one-time ``PREPARE`` of a statement counts too, which
adds a few tenths to operations run only a few dozen times, such as create_group), and
PostgreSQL's own CPU per request in µs ("PG CPU": the time every ``postgres`` process of
the machine spent on a CPU meanwhile, from ``/proc/PID/schedstat``; a statement planned
on every execution shows here first). It is the quickest way to see what a change to the
request path saves; the figures move less than throughput on a shared machine. The HTTP
server's own cost (uvicorn, httptools, sockets) is not included; ``bench/run.py`` measures
everything together.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import loadgen

harness.use_src()

from scimgate.app import create_app  # noqa: E402
from scimgate.settings import Settings  # noqa: E402

Asgi = Callable[..., Any]


class Driver:
    """Calls an ASGI app the way uvicorn does, minus the sockets."""

    def __init__(self, app: Asgi, token: str) -> None:
        self.app = app
        self.headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/scim+json"),
        ]

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raw = b"" if body is None else json.dumps(body).encode()
        target, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": target,
            "raw_path": target.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [*self.headers, (b"content-length", str(len(raw)).encode())],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        data = b"".join(chunks)
        return status, json.loads(data) if data else None


async def lifespan(app: Asgi) -> Callable[[], Any]:
    """Run the app's startup (migrations); return a coroutine factory for its shutdown."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    # As `scimgate serve` does: without it, one ~80 ms full collection over the loaded
    # app lands on whichever operation happens to be running (and skews its mean).
    gc.collect()
    gc.freeze()

    async def shutdown() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return shutdown


class Timer:
    def __init__(self, postgres: bool) -> None:
        self.cpu: dict[str, list[float]] = {}
        self.waits: dict[str, list[int]] = {}
        self.postgres = postgres
        self.pg_cpu: dict[str, list[int]] = {}
        """PostgreSQL's CPU per request (ns, every postgres process of this machine)."""

    async def run(
        self,
        driver: Driver,
        op: str,
        method: str,
        path: str,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
    ) -> Any:
        pg_before = harness.postgres_run_ns() if self.postgres else 0
        waited = _WAITS[0]
        start = time.process_time()
        status, data = await driver.call(method, path, body)
        self.cpu.setdefault(op, []).append(time.process_time() - start)
        self.waits.setdefault(op, []).append(_WAITS[0] - waited)
        if self.postgres:
            self.pg_cpu.setdefault(op, []).append(harness.postgres_run_ns() - pg_before)
        if status not in expect:
            raise SystemExit(f"{op}: {method} {path} → {status} {data}")
        return data


_WAITS = [0]


def _count_waits() -> None:
    """Count the waits for the server (round trips), for the report: psycopg's, and the
    simple-query messages scimgate sends on the libpq handle itself."""
    import psycopg

    wait = psycopg.AsyncConnection.wait

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _WAITS[0] += 1
        return await wait(self, *args, **kwargs)

    psycopg.AsyncConnection.wait = counted  # type: ignore[method-assign]
    try:
        from scimgate.store import simple_query
    except ImportError:  # a checkout from before store/simple_query.py
        return
    run = simple_query.run

    async def counted_run(*args: Any, **kwargs: Any) -> Any:
        _WAITS[0] += 1
        return await run(*args, **kwargs)

    simple_query.run = counted_run  # type: ignore[assignment]


async def measure(
    backend: str, users: int, dialect: str
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    with harness.fresh_database(backend) as url:
        settings = Settings.from_env(database_url=url, webhook_worker=False)
        app = create_app(settings)
        shutdown = await lifespan(app)
        tenancy = app.state.tenancy
        org = await tenancy.create_organization("Bench")
        directory, token = await tenancy.create_directory(org.id, "entra", "entra")
        d = Driver(app, token)
        base = f"/scim/v2/{directory.id}"
        q = "?aadOptscim062020" if dialect == "compliant" else ""
        sep = "&" if q else "?"
        rng = random.Random(7)
        people, teams = loadgen.make_population(rng, users, 2, min(100, users), "cpu")
        t = Timer(postgres=backend == "postgresql")
        for u in people:
            flt = loadgen.eq_filter("userName", u.user_name)
            await t.run(d, "match_user (miss)", "GET", f"{base}/Users{q}{sep}filter={flt}")
            created = await t.run(
                d, "create_user", "POST", f"{base}/Users{q}", loadgen.user_body(u), (201,)
            )
            u.id = created["id"]
        for u in people:
            flt = loadgen.eq_filter("userName", u.user_name)
            await t.run(d, "match_user (hit)", "GET", f"{base}/Users{q}{sep}filter={flt}")
            await t.run(d, "get_user", "GET", f"{base}/Users/{u.id}{q}")
        for g in teams:
            created = await t.run(
                d, "create_group", "POST", f"{base}/Groups{q}", loadgen.group_body(g), (201,)
            )
            g.id = created["id"]
            ids = [m.id for m in g.members if m.id]
            for i in range(0, len(ids), 10):
                await t.run(
                    d,
                    "add_members (10)",
                    "PATCH",
                    f"{base}/Groups/{g.id}{q}",
                    loadgen.add_members_patch(ids[i : i + 10], dialect),
                    (200, 204),
                )
            for member_id in ids[20:40]:  # Entra's membership check, members it has
                check = f'id eq "{g.id}" and members[value eq "{member_id}"]'
                await t.run(
                    d,
                    "member_check",
                    "GET",
                    f"{base}/Groups{q}{sep}filter={quote(check, safe='')}&attributes=id",
                )
            for member_id in ids[:20]:
                await t.run(
                    d,
                    "remove_member",
                    "PATCH",
                    f"{base}/Groups/{g.id}{q}",
                    loadgen.remove_member_patch(member_id, dialect),
                    (200, 204),
                )
        for n, u in enumerate(people):
            await t.run(
                d,
                "patch_user",
                "PATCH",
                f"{base}/Users/{u.id}{q}",
                loadgen.attribute_patch(u, dialect, n),
            )
        for u in people:
            await t.run(
                d,
                "deactivate_user",
                "PATCH",
                f"{base}/Users/{u.id}{q}",
                loadgen.deactivate_patch(dialect),
            )
        for u in people:
            await t.run(d, "delete_user", "DELETE", f"{base}/Users/{u.id}{q}", None, (204,))
        await shutdown()
    # The mean, not the median: the kernel may account CPU time in ticks, so single
    # requests read as 0 or a whole tick; the mean over hundreds of them is exact.
    return (
        {op: 1e6 * sum(v) / len(v) for op, v in t.cpu.items()},
        {op: sum(v) / len(v) for op, v in t.waits.items()},
        {op: sum(v) / len(v) / 1000 for op, v in t.pg_cpu.items()},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--dialect", choices=["legacy", "compliant"], default="legacy")
    args = parser.parse_args()
    backends = harness.BACKENDS if args.backend == "both" else (args.backend,)
    _count_waits()
    measured = {b: loadgen.run_async(measure(b, args.users, args.dialect)) for b in backends}
    print(f"mean server CPU per request, µs ({args.dialect} dialect, in-process, no HTTP)")
    pg = "postgresql" in backends
    print(
        f"{'operation':<20}"
        + "".join(f"{b:>12}" for b in backends)
        + (f"{'PG round trips':>16}{'PG CPU':>10}" if pg else "")
    )
    for op in measured[backends[0]][0]:
        print(
            f"{op:<20}"
            + "".join(f"{measured[b][0][op]:>12.0f}" for b in backends)
            + (
                f"{measured['postgresql'][1][op]:>16.1f}{measured['postgresql'][2][op]:>10.0f}"
                if pg
                else ""
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
