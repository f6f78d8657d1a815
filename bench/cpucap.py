"""Each server worker held to a fixed share of one core, with the kernel's CPU controller.

On the 2-core test host one worker, PostgreSQL and the load generator already keep ~1.7
cores busy, so a second worker has no core of its own: the processes only take turns,
and each request costs more (docs/performance.md, "Several processes"). Whether the
server scales with its processes — no lock, pool or row that serialises them — is a
different question, and this answers it on the same host: give every worker the same
slice of CPU (``bench/run.py --cpu-per-worker 0.4``) and compare one worker with two.
With the slices small enough that PostgreSQL and the load generator keep cores free,
a server that scales serves about twice as much with two.

Needs root and the ``cpu`` controller: cgroup v2 (``cpu.max``) or v1
(``cpu.cfs_quota_us``), mounted under ``/sys/fs/cgroup``; ``python bench/cpucap.py`` says
whether this machine has them (exit 1 if not).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadgen import process_tree

PERIOD_US = 100_000
_V2 = Path("/sys/fs/cgroup")
_V1 = Path("/sys/fs/cgroup/cpu")


@dataclass
class _Group:
    path: Path
    v2: bool

    def limit(self, cores: float) -> None:
        quota = max(1_000, int(cores * PERIOD_US))
        if self.v2:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))

    def throttled(self) -> tuple[int, int]:
        """``(periods, periods throttled)`` so far."""
        stat = dict(
            line.split() for line in (self.path / "cpu.stat").read_text().splitlines() if line
        )
        return int(stat.get("nr_periods", 0)), int(stat.get("nr_throttled", 0))


def _root() -> tuple[Path, bool]:
    controllers = _V2 / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return _V2, True
    if (_V1 / "cpu.cfs_quota_us").exists():
        return _V1, False
    raise RuntimeError("no cgroup cpu controller under /sys/fs/cgroup (needs root)")


def worker_pids(server_pid: int, workers: int) -> list[int]:
    """The processes that serve requests: the server itself when it has one worker,
    else the worker processes uvicorn's supervisor spawned (not its resource tracker)."""
    if workers <= 1:
        return [server_pid]
    pids = [
        pid
        for pid in process_tree(server_pid)[1:]
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    if len(pids) != workers:
        raise RuntimeError(f"expected {workers} worker processes, found {pids}")
    return pids


@contextlib.contextmanager
def capped(pids: list[int], cores: float) -> Iterator[list[_Group]]:
    """Each of ``pids`` (every thread of it) in a cgroup of its own, limited to ``cores``
    of CPU time per period; they go back to the root group afterwards."""
    root, v2 = _root()
    if v2:
        with contextlib.suppress(OSError):
            (root / "cgroup.subtree_control").write_text("+cpu")
    groups: list[_Group] = []
    try:
        for pid in pids:
            group = _Group(root / f"scimgate-bench-{os.getpid()}-{pid}", v2)
            group.path.mkdir()
            groups.append(group)
            group.limit(cores)
            (group.path / "cgroup.procs").write_text(str(pid))
        yield groups
    finally:
        for group in groups:
            with contextlib.suppress(OSError):
                for member in (group.path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        (root / "cgroup.procs").write_text(member)
            with contextlib.suppress(OSError):
                group.path.rmdir()


def missing() -> str | None:
    """Why capping cannot work here, or None when it can."""
    try:
        root, _ = _root()
    except RuntimeError as exc:
        return str(exc)
    if not os.access(root / "cgroup.procs", os.W_OK):
        return f"{root} is not writable (needs root)"
    return None


if __name__ == "__main__":
    reason = missing()
    print(reason or "the cgroup cpu controller is usable: bench/run.py --cpu-per-worker works")
    sys.exit(1 if reason else 0)
