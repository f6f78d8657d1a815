"""The server's log handler writes lines in blocks: info lines wait for the timer (or the
buffer, or exit), warnings and errors go out at once, nothing is lost or reordered. The
access log writes its lines to it directly, only where logging would write the same."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scimgate.logs import PLAIN, BufferedStderrHandler, line_writer
from scimgate.middleware import AccessLog


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


# -- the access log's direct write (line_writer) ------------------------------------------


def _plain(path: Path) -> BufferedStderrHandler:
    handler = BufferedStderrHandler(interval_s=3600, stream=path.open("w", buffering=1 << 16))
    handler.setFormatter(PLAIN)
    return handler


def test_a_line_written_directly_reads_as_one_logged_through_logging(tmp_path: Path) -> None:
    direct, logged = _plain(tmp_path / "direct.txt"), _plain(tmp_path / "logged.txt")
    log = _logger("direct", direct)
    write = line_writer(log)
    assert write is not None
    lines = ['{"event":"request","path":"/scim/v2/d/Users","status":201}', "naïve 100% {x}"]
    for line in lines:
        write(line)
    for line in lines:
        _logger("logged", logged).info(line)
    direct.close()
    logged.close()
    assert (tmp_path / "direct.txt").read_text() == (tmp_path / "logged.txt").read_text()
    assert (tmp_path / "direct.txt").read_text() == "".join(f"{line}\n" for line in lines)


def test_a_line_written_directly_keeps_its_place_among_logged_ones(tmp_path: Path) -> None:
    handler = _plain(tmp_path / "log.txt")
    log = _logger("mixed", handler)
    write = line_writer(log)
    assert write is not None
    log.info("one")
    write("two")
    log.warning("three")  # a warning writes everything out at once, in order
    assert (tmp_path / "log.txt").read_text() == "one\ntwo\nthree\n"
    handler.close()
    write("four")  # closed but still attached: written at once, as emit does
    assert (tmp_path / "log.txt").read_text() == "one\ntwo\nthree\nfour\n"


def _refuses(
    tmp_path: Path, name: str, change: Callable[[logging.Logger, logging.Handler], None]
) -> None:
    handler = _plain(tmp_path / f"{name}.txt")
    log = _logger(name, handler)
    assert line_writer(log) is not None
    change(log, handler)
    assert line_writer(log) is None, name
    handler.close()


def test_logging_routes_the_line_itself_wherever_it_could_differ(tmp_path: Path) -> None:
    """Any filter, another handler, another format, a level that stops INFO: the record
    goes through logging, so an operator's configuration (or pytest's caplog) sees it."""
    other = logging.StreamHandler(io.StringIO())
    _refuses(tmp_path, "logger-filter", lambda log, _: log.addFilter(lambda r: True))
    _refuses(tmp_path, "handler-filter", lambda _, h: h.addFilter(lambda r: True))
    _refuses(tmp_path, "format", lambda _, h: h.setFormatter(logging.Formatter("%(message)s")))
    _refuses(tmp_path, "level", lambda _, h: h.setLevel(logging.WARNING))
    _refuses(tmp_path, "second-handler", lambda log, _: log.addHandler(other))
    _refuses(tmp_path, "plain-stream", lambda log, _: setattr(log, "handlers", [other]))

    parent = logging.getLogger("scimgate.test")

    def parent_handler(log: logging.Logger, _: logging.Handler) -> None:
        parent.addHandler(other)
        log.propagate = True  # the record also reaches the parent's handler

    try:
        _refuses(tmp_path, "propagates", parent_handler)
    finally:
        parent.removeHandler(other)


def test_with_no_handler_at_all_there_is_nothing_to_write_directly() -> None:
    log = logging.getLogger("scimgate.test.none")
    log.handlers[:] = []
    log.propagate = False
    assert line_writer(log) is None


def test_the_access_log_reaches_an_embedding_apps_logging(caplog: pytest.LogCaptureFixture) -> None:
    """Mounted in a host app, the access log is an ordinary ``scimgate.access`` record."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def ignore(message: Any) -> None:
        return None

    scope = {"type": "http", "method": "DELETE", "path": "/scim/v2/dir-1/Users/u-1"}
    with caplog.at_level(logging.INFO, logger="scimgate.access"):
        asyncio.run(AccessLog(app)(scope, ignore, ignore))
    [record] = [r for r in caplog.records if r.name == "scimgate.access"]
    line = json.loads(record.getMessage())
    assert (line["method"], line["status"], line["directory_id"]) == ("DELETE", 204, "dir-1")
