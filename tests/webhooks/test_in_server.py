"""End to end with the defaults of `scimgate serve`: the in-process worker delivers a
signed webhook for a SCIM write, with no separate worker process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.live import LiveServer, start_server
from tests.webhooks.receiver import Receiver


@pytest.fixture(scope="module")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"SCIMGATE_WEBHOOK_ALLOW_PRIVATE": "true"}  # the receiver is on loopback
    yield from start_server(database_url, Path(tmp_path_factory.mktemp("in-server")), env)


def test_serve_delivers_webhooks_in_process(served: LiveServer) -> None:
    directory = served.new_directory()
    key = served.cli("api-key", "create", "--name", "test")["key"]
    receiver = Receiver()
    try:
        api = httpx.Client(
            base_url=f"{served.base_url}/api/v1", headers={"Authorization": f"Bearer {key}"}
        )
        secret = receiver.subscribe(api, directory.organization_id, ["user.created"])
        user_name = f"hook-{uuid.uuid4()}@contoso.com"
        r = directory.client.post(
            directory.url("/Users"),
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name},
        )
        assert r.status_code == 201
        deadline = time.monotonic() + 15
        while not receiver.on("/hook") and time.monotonic() < deadline:
            time.sleep(0.05)
        hits = receiver.on("/hook")
        assert hits, "no webhook arrived from the in-process worker"
        hit = hits[0]
        payload = Webhook(secret).verify(hit.body, hit.headers)
        assert payload["type"] == "user.created"
        assert payload["data"]["user"]["username"] == user_name
    finally:
        receiver.close()
