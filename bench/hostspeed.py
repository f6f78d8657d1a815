"""How fast this host runs the server's kind of work at this moment, in one figure.

    python bench/hostspeed.py [--seconds 60]

The 2-core test host's speed drifts by up to 2x within an hour (docs/performance.md), so a
run's requests/s says as much about the host at that moment as about the code.
:func:`calibrate` times a fixed piece of single-threaded work shaped like a request's
(building and serialising SCIM-like documents in the interpreter, then SQLite inserts and
a query) and keeps the fastest of a few rounds, in ms: the lower, the faster the host.
It depends on nothing in ``src``, so the figure compares across checkouts and days.
``bench/run.py`` prints it before and after each run; ``--seconds`` here prints it every
few seconds, to watch the drift.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time

ROUNDS = 5
_DOCUMENTS = 1500


def _work() -> int:
    rows = []
    for i in range(_DOCUMENTS):
        doc = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": f"{i:08d}",
            "userName": f"user.{i}@contoso.com",
            "name": {"givenName": "Ada", "familyName": f"Lovelace-{i}"},
            "active": i % 2 == 0,
            "emails": [{"value": f"user.{i}@contoso.com", "type": "work", "primary": True}],
        }
        text = json.dumps(doc, separators=(",", ":"))
        rows.append((doc["id"], doc["userName"].casefold(), text, len(text)))
    rows.sort(key=lambda row: row[1])
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, k TEXT UNIQUE, doc TEXT, n INTEGER)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
        (total,) = db.execute("SELECT sum(n) FROM t WHERE k LIKE 'user.1%'").fetchone()
    finally:
        db.close()
    return int(total)


def calibrate(rounds: int = ROUNDS) -> float:
    """The fastest of ``rounds`` runs of the fixed work, in ms of wall time (10 to 25 ms
    each on the test host)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        _work()
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=0.0, help="keep measuring this long")
    args = p.parse_args()
    deadline = time.monotonic() + args.seconds
    while True:
        print(f"host: {calibrate():.2f} ms", flush=True)
        if time.monotonic() >= deadline:
            return 0
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
