"""Where does the server's time go? The mixed cycle under py-spy, summarised by layer.

    .venv/bin/pip install py-spy
    python bench/profile.py [--backend sqlite|postgresql] [--svg profile.svg] [loadgen args…]

Starts a fresh server as ``bench/run.py`` does, samples it with ``py-spy record`` (without
pausing it) while ``bench/loadgen.py`` runs (default: the standard size, legacy dialect),
then prints the share of the samples per layer (HTTP, access log, SQLAlchemy, database
driver, scim2-models/pydantic, scimgate's own code, the event loop in C) and the functions
with the largest inclusive share. By default only the thread holding the GIL is sampled: for
a server that saturates one core with Python, that is where its time goes. ``--svg`` also
writes a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

# First match wins, looking from the innermost frame outwards.
LAYERS = (
    ("/aiosqlite/", "database driver (aiosqlite: thread hand-offs)"),
    ("/sqlite3/", "database driver (aiosqlite: thread hand-offs)"),
    ("/psycopg/", "database driver (psycopg)"),
    ("/sqlalchemy/", "SQLAlchemy Core (compile, execute, results, async adaptation)"),
    ("/scim2_models/", "scim2-models + pydantic (parse, PATCH, validation)"),
    ("/pydantic/", "scim2-models + pydantic (parse, PATCH, validation)"),
    ("/pydantic_core/", "scim2-models + pydantic (parse, PATCH, validation)"),
    ("/logging/", "access log (logging + json)"),
    ("/starlette/", "HTTP framework (starlette)"),
    ("/uvicorn/", "HTTP server (uvicorn, httptools)"),
    ("/scimgate/", "scimgate's own code"),
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _parse(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame)
    return (m.group("func"), m.group("file")) if m else (frame, "")


def layer_of(frames: list[str]) -> str:
    if not frames:
        return "unknown"
    func, file = _parse(frames[-1])
    if func in {"Runner.run", "run_until_complete"} or file.endswith("runners.py"):
        return "event loop (uvloop, in C: sockets, epoll, callbacks)"
    for frame in reversed(frames):
        func, file = _parse(frame)
        path = "/" + file
        if "scimgate/middleware.py" in path and func.startswith("AccessLog"):
            return "access log (logging + json)"
        for key, name in LAYERS:
            if key in path:
                return name
    return f"other ({file or func})"


def summarise(raw: Path, top: int) -> str:
    layers: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue  # a frame name with a line break in it (py-spy writes it verbatim)
        n = int(count)
        frames = stack.split(";")[1:]  # the first entry names the thread
        total += n
        layers[layer_of(frames)] += n
        seen = set()
        for frame in frames:
            func, file = _parse(frame)
            key = f"{func} ({file})"
            if key not in seen:
                seen.add(key)
                inclusive[key] += n
    if not total:
        return "no samples"
    out = [f"{total} samples of the server process", "", "share  layer (innermost frame)"]
    rest = 0
    for name, n in layers.most_common():
        if n / total < 0.005:
            rest += n
        else:
            out.append(f"{100 * n / total:5.1f}% {name}")
    out.append(f"{100 * rest / total:5.1f}% everything else")
    out += ["", "share  function (inclusive)"]
    skip = ("runpy", "threading.py", "scimgate/__main__", "scimgate/cli/", "uvicorn/main.py")
    shown = 0
    for key, n in inclusive.most_common():
        if any(s in key for s in skip) or "asyncio/runners.py" in key:
            continue
        out.append(f"{100 * n / total:5.1f}% {key}")
        shown += 1
        if shown >= top:
            break
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=harness.BACKENDS, default="sqlite")
    p.add_argument("--svg", type=Path, help="also write a flame graph here")
    p.add_argument("--raw", type=Path, help="keep the collapsed stacks here")
    p.add_argument("--top", type=int, default=45)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every busy thread, not only the one holding the GIL",
    )
    args, loadgen_args = p.parse_known_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="scimgate-profile-"))
    raw = args.raw or tmp / "profile.raw"
    with harness.fresh_database(args.backend) as url, harness.server(url) as srv:
        directory = harness.new_directory(url, srv.base_url)
        recorders = []
        for fmt, out in (("raw", raw), ("flamegraph", args.svg)):
            if out is None:
                continue
            command = [spy, "record", "--pid", str(srv.pid), "--nonblocking", "--threads"]
            if not args.all_threads:
                command.append("--gil")
            command += ["--rate", str(args.rate), "--format", fmt, "-o", str(out)]
            recorders.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        time.sleep(1.0)
        load = subprocess.run(
            harness.loadgen_command(directory, srv.pid, *loadgen_args),
            capture_output=True,
            text=True,
            check=False,
        )
        for rec in recorders:
            rec.send_signal(signal.SIGINT)
            rec.wait(timeout=60)
    print("\n".join(load.stdout.strip().splitlines()[:-1]))
    print()
    print(summarise(raw, args.top))
    shutil.rmtree(tmp, ignore_errors=True)
    return load.returncode


if __name__ == "__main__":
    sys.exit(main())
