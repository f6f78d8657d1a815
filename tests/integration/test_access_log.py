"""One JSON access-log line per request, and never a secret in it: no token, no query
string (filters carry e-mail addresses), no body."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.live import Directory, LiveServer


def _lines(server: LiveServer, directory_id: str) -> list[dict[str, Any]]:
    found = []
    for line in server.log().splitlines():
        if line.startswith("{") and directory_id in line:
            found.append(json.loads(line))
    return found


def test_each_scim_request_logs_one_line_without_secrets(
    server: LiveServer, directory: Directory
) -> None:
    secret_mail = "private.person@contoso.com"
    directory.client.get(directory.url("/Users"), params={"filter": f'userName eq "{secret_mail}"'})
    directory.client.post(
        directory.url("/Users"), json={"userName": secret_mail, "displayName": "Hidden"}
    )
    directory.client.delete(directory.url("/Users/no-such-id"))
    deadline = time.monotonic() + 5
    while len(lines := _lines(server, directory.id)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(r["method"], r["status"]) for r in lines] == [
        ("GET", 200),
        ("POST", 201),
        ("DELETE", 404),
    ]
    for record in lines:
        assert record["event"] == "request"
        assert record["directory_id"] == directory.id
        assert record["path"].startswith(f"/scim/v2/{directory.id}/Users")
        assert isinstance(record["duration_ms"], float | int) and record["duration_ms"] >= 0
    text = "\n".join(json.dumps(r) for r in lines)
    for secret in (directory.token, secret_mail, "Hidden", "filter"):
        assert secret not in text
