"""scim2-tester (pinned in requirements.lock) against the live server: discovery, CRUD,
PATCH add/remove/replace on every attribute, attribute selection. Zero failures allowed."""

from __future__ import annotations

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.live import Directory


def test_scim2_tester_passes_every_check(directory: Directory) -> None:
    with httpx2.Client(
        base_url=directory.scim_base,
        headers={"Authorization": f"Bearer {directory.token}"},
        timeout=30,
    ) as http:
        results = check_server(SyncSCIMClient(http))
    failures = [
        f"{r.title}: {r.reason}"
        for r in results
        if r.status not in (Status.SUCCESS, Status.SKIPPED)
    ]
    assert results, "scim2-tester ran no check"
    assert sum(r.status == Status.SUCCESS for r in results) >= 100
    assert failures == []
