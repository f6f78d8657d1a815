"""The HTTP/1.1 protocol ``scimgate serve`` runs: uvicorn's httptools protocol, with each
response's head and body sent in one socket write.

uvicorn writes the status line and headers as soon as the app starts its response, and
the body when it comes: two ``send`` system calls, two TCP segments and two wake-ups of
the client per response. A SCIM response is one small body sent right after its head, so
:class:`_OneWrite` holds a write back until the next write (then sends both together) or
until the end of the current event-loop iteration, whichever comes first. Nothing waits
longer than that, and bytes go out in the order written. An app that embeds scimgate
keeps its own server; this only changes what ``serve`` runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["OneWriteHttpToolsProtocol"]

_JOIN_BELOW = 64 * 1024
"""Held data and a write shorter than this are joined into one buffer; longer ones go
to ``writelines`` (one vectored write, no copy)."""


class _OneWrite:
    """A transport that sends a held write together with the next one."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
            return
        self._held = None
        if len(held) + len(data) < _JOIN_BELOW:
            self._transport.write(held + data)
        else:
            self._transport.writelines([held, data])

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        self._flush()  # a response written just before closing still goes out
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self._transport.get_write_buffer_size() + (len(held) if held else 0)

    def __getattr__(self, name: str) -> Any:
        # get_extra_info, pause_reading, resume_reading, set_protocol, …
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`_OneWrite` transport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneWrite(transport, self.loop))  # type: ignore[arg-type]
