"""The server's log handler writes lines in blocks: info lines wait for the timer (or the
buffer, or exit), warnings and errors go out at once, nothing is lost or reordered."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from scimgate.logs import BufferedStderrHandler


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"scimgate.test.{name}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_info_lines_wait_and_a_warning_writes_them_all_in_order(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    handler = BufferedStderrHandler(interval_s=3600, stream=path.open("w", buffering=1 << 16))
    log = _logger("order", handler)
    log.info("one")
    log.info("two")
    assert path.read_text() == ""  # still in the buffer: no write per line
    log.warning("three")
    assert path.read_text() == "one\ntwo\nthree\n"
    log.info("four")
    handler.close()  # logging.shutdown() does this at exit
    assert path.read_text() == "one\ntwo\nthree\nfour\n"


def test_the_timer_writes_info_lines_out(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    handler = BufferedStderrHandler(interval_s=0.05, stream=path.open("w", buffering=1 << 16))
    log = _logger("timer", handler)
    log.info("request")
    deadline = time.monotonic() + 5
    while path.read_text() != "request\n" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.read_text() == "request\n"
    handler.close()


def test_a_closed_handler_still_attached_writes_each_line(tmp_path: Path) -> None:
    """``logging.config.dictConfig`` closes the handlers it finds without detaching them
    from the root logger: lines must not wait for a timer that no longer runs."""
    path = tmp_path / "log.txt"
    handler = BufferedStderrHandler(interval_s=3600, stream=path.open("w", buffering=1 << 16))
    log = _logger("closed", handler)
    handler.close()
    log.info("after")
    assert path.read_text() == "after\n"
