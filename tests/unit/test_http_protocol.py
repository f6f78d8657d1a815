"""``serve``'s HTTP protocol sends a response's head and body in one write, without ever
holding bytes past the current event-loop iteration or reordering them."""

from __future__ import annotations

import asyncio
from typing import Any

from scimgate.http_protocol import _OneWrite


class _Recorder:
    """The transport underneath: records what reaches it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.vectored: list[list[bytes]] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def writelines(self, chunks: list[bytes]) -> None:
        self.vectored.append([bytes(c) for c in chunks])
        self.sent.append(b"".join(chunks))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


async def _one_write() -> tuple[_OneWrite, _Recorder]:
    inner = _Recorder()
    return _OneWrite(inner, asyncio.get_running_loop()), inner  # type: ignore[arg-type]


async def test_head_and_body_go_out_in_one_write() -> None:
    transport, inner = await _one_write()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert inner.sent == []
    assert transport.get_write_buffer_size() > 0  # flow control sees held bytes
    transport.write(b"{}")
    assert inner.sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)
    assert len(inner.sent) == 1  # nothing left over to flush


async def test_a_lone_write_goes_out_by_the_end_of_the_loop_iteration() -> None:
    transport, inner = await _one_write()
    transport.write(b"head")
    await asyncio.sleep(0)
    assert inner.sent == [b"head"]
    transport.write(b"next head")
    transport.write(b"body")
    transport.write(b"third")
    await asyncio.sleep(0)
    assert b"".join(inner.sent) == b"headnext headbodythird"  # in order, nothing lost


async def test_a_large_body_is_sent_with_its_head_without_joining() -> None:
    transport, inner = await _one_write()
    body = b"x" * 200_000
    transport.write(b"head")
    transport.write(body)
    assert inner.vectored == [[b"head", body]]


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    transport, inner = await _one_write()
    transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    transport.close()
    assert inner.sent == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and inner.closed

    transport, inner = await _one_write()
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.sent == [] and inner.aborted


async def test_everything_else_is_the_transport_underneath() -> None:
    transport, _ = await _one_write()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5)
    assert not transport.is_closing()
