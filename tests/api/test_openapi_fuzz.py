"""Schemathesis against the management API's own OpenAPI document, on a real server:
generated requests (valid per the schema, with a live API key) never get a 5xx, and
every response matches the documented status codes, content type and schema."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Mount

from scimgate import Settings
from scimgate.api import API_MOUNT
from scimgate.directory.api_keys import ApiKeys
from scimgate.store.engine import Database
from tests.api.stack import build_app
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("SCIMGATE_FUZZ_EXAMPLES", "30"))


@dataclass(frozen=True)
class LiveApi:
    base: str
    key: str
    ids: dict[str, str]
    """Real resources, by parameter name, for the cases aimed at existing data."""

    @property
    def api(self) -> str:
        return f"{self.base}{API_MOUNT}"


async def _create_key(database_url: str) -> str:
    db = Database(database_url, pool_size=1)
    try:
        return (await ApiKeys(db).create("schemathesis"))[1]
    finally:
        await db.dispose()


def _seed(base: str, key: str) -> dict[str, str]:
    """An organization with a directory, users, a group, a webhook endpoint and a
    delivery, made through the API and SCIM as a host app would."""
    with httpx.Client(
        base_url=f"{base}{API_MOUNT}", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as api:
        org = api.post("/organizations", json={"name": "Fuzz", "external_id": "fuzz"}).json()
        directory = api.post(
            "/directories", json={"organization_id": org["id"], "provider": "entra"}
        ).json()
        scim = httpx.Client(
            base_url=f"{base}/scim/v2/{directory['id']}",
            headers={"Authorization": f"Bearer {directory['token']}"},
            timeout=30,
        )
        with scim:
            user_ids = [
                scim.post(
                    "/Users",
                    json={
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": f"fuzz{i}@example.com",
                        "emails": [{"value": f"fuzz{i}@example.com", "type": "work"}],
                    },
                ).json()["id"]
                for i in range(3)
            ]
            group = scim.post(
                "/Groups",
                json={
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Fuzzers",
                    "members": [{"value": u} for u in user_ids],
                },
            ).json()
        endpoint = api.post(
            "/webhook-endpoints",
            json={"organization_id": org["id"], "url": "http://127.0.0.1:9/hook"},
        ).json()
        delivery = api.post(f"/webhook-endpoints/{endpoint['id']}/test").json()
    return {
        "organization_id": org["id"],
        "external_id": "fuzz",
        "organization_external_id": "fuzz",
        "directory_id": directory["id"],
        "user_id": user_ids[0],
        "group_id": group["id"],
        "endpoint_id": endpoint["id"],
        "delivery_id": delivery["id"],
    }


def _aim_at_real_data(case: schemathesis.Case, ids: dict[str, str]) -> None:
    """Point the generated ids at existing resources (other values stay fuzzed), so the
    cases reach past the 404 into the code that handles real data."""
    for params in (case.path_parameters, case.query):
        if params:
            for name in params:
                if name in ids:
                    params[name] = ids[name]
    if isinstance(case.body, dict):
        for name in ("organization_id", "directory_id"):
            if name in case.body:
                case.body[name] = ids[name]


@pytest.fixture(scope="module")
def live_api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    key = asyncio.run(_create_key(database_url))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("fuzz") / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.api.serve", database_url, str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited:\n{log_path.read_text()}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield LiveApi(base, key, _seed(base, key))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        # Whatever the checks said, a traceback in the log is a server fault.
        assert "Traceback" not in log_path.read_text(errors="replace"), log_path.read_text()


def _operations() -> list[tuple[str, str]]:
    """Every (method, path) of the document, read at collection time from an app over a
    database that is never opened."""
    app = build_app(Settings(database_url="sqlite:////nonexistent/never-opened.db"))
    api = next(r.app for r in app.routes if isinstance(r, Mount) and r.path == API_MOUNT)
    doc = api.openapi()
    found = [
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in ("get", "post", "put", "patch", "delete")
        if method in item
    ]
    # Deletes last, organizations very last: the aimed cases delete the seeded data.
    return sorted(found, key=lambda op: (op[0] == "DELETE", op[1].startswith("/organizations")))


@pytest.fixture(scope="module")
def api_schema(live_api: LiveApi) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_api.api}/openapi.json")


@pytest.mark.parametrize(
    ("method", "path", "aimed"),
    [(method, path, aimed) for method, path in _operations() for aimed in (False, True)],
)
def test_generated_requests_get_no_server_error(
    live_api: LiveApi, api_schema: schemathesis.BaseSchema, method: str, path: str, aimed: bool
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        if aimed:
            _aim_at_real_data(case, live_api.ids)
        case.call_and_validate(
            base_url=live_api.api,
            headers={"Authorization": f"Bearer {live_api.key}"},
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
            timeout=30,
        )

    check()
