"""Log output of a ``scimgate serve`` process: lines to stderr, written in blocks.

The access log writes one line per request. Written and flushed one by one, that is a
``write`` system call per request: 7 to 10 µs of CPU per line to a pipe, against 4.5 µs
buffered (20,000 lines logged from a coroutine 30 frames deep).
:class:`BufferedStderrHandler` keeps lines in a 64 KiB buffer and writes it out at least
every half second, at once for warnings and errors, and when the process exits
(``logging.shutdown``). A process killed outright loses at most the last half second of
info lines. An app that embeds scimgate configures logging itself.

Building and routing a ``LogRecord`` still cost the access log ~50,000 instructions a
line, 4 % of a SCIM request (``bench/instructions.py``), for a line that is its message
alone. :func:`line_writer` finds where such a line would end up; when that is this
handler alone, the access log writes the line to it directly (~4,000 instructions).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

FLUSH_INTERVAL_S = 0.5
_BUFFER_BYTES = 1 << 16
PLAIN = logging.Formatter("%(message)s")
"""The server's format: the message alone (the access log's message is a JSON line)."""


class BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler on a block-buffered duplicate of stderr, flushed on a timer."""

    def __init__(self, interval_s: float = FLUSH_INTERVAL_S, stream: TextIO | None = None) -> None:
        if stream is None:
            stream = open(  # noqa: SIM115 - closed by close()
                os.dup(sys.stderr.fileno()),
                "w",
                buffering=_BUFFER_BYTES,
                encoding="utf-8",
                errors="backslashreplace",
            )
        super().__init__(stream)
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_periodically, name="scimgate-log-flush", daemon=True
        )
        self._flusher.start()

    def flush(self) -> None:
        """Called by ``emit`` after every line: left to the timer (see :meth:`flush_now`)."""

    def flush_now(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if not self.stream.closed:
                self.stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        # After close() (``logging.config.dictConfig`` closes the handlers it finds, and
        # this one may stay attached), no timer runs: write each line, as StreamHandler.
        if record.levelno >= logging.WARNING or self._stopped.is_set():
            self.flush_now()

    def write_line(self, text: str) -> None:
        """Write ``text`` as :meth:`emit` writes a record whose message it is (the format
        being :data:`PLAIN`), without building the record."""
        with self.lock:  # type: ignore[union-attr]
            self.stream.write(text + self.terminator)
        if self._stopped.is_set():
            self.flush_now()

    def close(self) -> None:
        self._stopped.set()
        self.flush_now()
        super().close()

    def _flush_periodically(self) -> None:
        while not self._stopped.wait(self._interval_s):
            self.flush_now()


def line_writer(logger: logging.Logger) -> Callable[[str], None] | None:
    """Where ``logger.info(text)`` would write ``text`` and nothing else, a function that
    writes it there directly; None where logging must route the record itself.

    That is when the record would reach one handler, a :class:`BufferedStderrHandler` of
    the :data:`PLAIN` format, through no filter (the logger's or the handler's) and no
    level that stops it. The caller checks ``logger.isEnabledFor(INFO)`` first. Walked
    at each call (a few attribute reads per logger up to the root), so a logging
    configuration changed while the server runs is followed from its next line."""
    if logger.filters:
        return None
    found: BufferedStderrHandler | None = None
    node: logging.Logger | None = logger
    while node is not None:
        for handler in node.handlers:
            if (
                found is not None
                or type(handler) is not BufferedStderrHandler
                or handler.formatter is not PLAIN
                or handler.filters
                or handler.level > logging.INFO
            ):
                return None
            found = handler
        node = node.parent if node.propagate else None
    return found.write_line if found is not None else None


def configure_server_logging() -> None:
    """Root logging of a server process: INFO and up, the message alone, buffered."""
    handler = BufferedStderrHandler()
    handler.setFormatter(PLAIN)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # What a record would carry that the message format never shows (the Logging HOWTO's
    # "Optimization"): the caller's file and line (a walk up the stack), thread, process.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.getLogger("alembic").setLevel(logging.WARNING)
