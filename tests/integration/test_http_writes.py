"""``scimgate serve`` sends each response whole in one write: a client waiting on the
socket receives the head and the body together (uvicorn on its own writes them apart)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import fresh_database
from tests.live import Directory, LiveServer, start_server


def _first_read(base_url: str, request: bytes) -> bytes:
    """What one ``recv`` returns when it is already waiting as the response goes out."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        return sock.recv(1 << 20)


def _complete(response: bytes) -> bool:
    head, sep, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return bool(sep) and len(body) == int(value)
    return False


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    for url in fresh_database("postgresql", tmp_path_factory.mktemp("pg")):
        yield from start_server(url, tmp_path_factory.mktemp("workers"), args=["--workers", "2"])


def test_each_response_arrives_in_one_piece(server: LiveServer, directory: Directory) -> None:
    _assert_sent_whole(server, directory)


def test_each_response_arrives_in_one_piece_from_workers(two_workers: LiveServer) -> None:
    _assert_sent_whole(two_workers, two_workers.new_directory())


def _assert_sent_whole(server: LiveServer, directory: Directory) -> None:
    host = urlsplit(server.base_url).netloc
    path = urlsplit(directory.url("/Users")).path
    auth = f"Authorization: Bearer {directory.token}\r\n"
    body = json.dumps({"userName": "one.write@contoso.com"}).encode()
    requests = [
        f"GET {path}?filter=userName%20eq%20%22nobody%22 HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n",
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer wrong\r\n\r\n",
        f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n",
    ]
    create = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}"
        f"Content-Type: application/scim+json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    answers = [_first_read(server.base_url, r.encode()) for r in requests * 5]
    answers.append(_first_read(server.base_url, create))
    statuses = [a.split(b" ", 2)[1] for a in answers]
    assert statuses == [b"200", b"401", b"200"] * 5 + [b"201"]
    incomplete = [a[:60] for a in answers if not _complete(a)]
    assert incomplete == []
