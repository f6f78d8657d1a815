"""PostgreSQL connections carry TCP keepalives and a user timeout, so a link that dies
silently (no reset: a fail-over that moves the address, a partition) is found dead in
about a minute rather than the kernel's quarter of an hour; the URL's own values win."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from scimgate.store.engine import Database


async def _socket_options(url: str) -> tuple[int, int, int, int, int]:
    db = Database(url, pool_size=1)
    try:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))
            driver = conn._driver  # type: ignore[attr-defined]
            sock = socket.socket(fileno=driver.pgconn.socket)
            try:
                return (
                    sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
                )
            finally:
                sock.detach()  # the socket stays libpq's
    finally:
        await db.dispose()


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux socket options")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_connections_detect_a_silent_link_loss(database_url: str) -> None:
    assert await _socket_options(database_url) == (1, 30, 10, 3, 30_000)
    mine = make_url(database_url).update_query_dict(
        {"keepalives_idle": "7", "tcp_user_timeout": "1234"}
    )
    assert await _socket_options(mine.render_as_string(hide_password=False)) == (
        1,
        7,
        10,
        3,
        1234,
    )
