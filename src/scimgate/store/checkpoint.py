"""SQLite WAL checkpoints on a background thread.

By default SQLite checkpoints inside the ``COMMIT`` that pushes the write-ahead log past
1,000 pages: that commit copies the log into the database file and fsyncs both, on the
event loop, stalling every request behind it (in the standard benchmark about a quarter of
a create's CPU, and the tail of its latency). The server turns automatic checkpoints off
on its own connections and runs ``PRAGMA wal_checkpoint(PASSIVE)`` here instead, on a
connection of its own, a few times a second: sqlite3 releases the GIL while it copies, so
the work lands on another core, and a page rewritten many times between two checkpoints is
copied once. PASSIVE never waits for, nor blocks, readers or the writer. On stop, a
``TRUNCATE`` checkpoint leaves an empty log behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("scimgate.store")

INTERVAL_S = 0.25


class WalCheckpointer:
    def __init__(self, path: str, *, interval_s: float = INTERVAL_S) -> None:
        self._path = path
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scimgate-wal", daemon=True)
        self._started = False

    def start(self) -> None:
        """Start the thread, once; later calls (and calls after stop) do nothing."""
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and leave an empty log, if no other connection holds it."""
        self._started = True
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=1000")
            while not self._stop.wait(self._interval_s):
                self._checkpoint(conn, "PASSIVE")
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> None:
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error:  # e.g. the file was removed under us; try again next time
            log.warning("SQLite WAL checkpoint (%s) failed", mode, exc_info=True)
