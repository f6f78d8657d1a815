"""``examples/fastapi_host.py`` as documented in docs/embedding.md: run with uvicorn, it
serves its own routes beside scimgate's, and a SCIM write reaches its ``on_event``
handler in-process before the IdP's request returns."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from scimgate import Settings
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fastapi_host.py"
SCIM_JSON = "application/scim+json"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_host_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def host(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example, started exactly as its docstring says (uvicorn examples.fastapi_host:app)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("host") / "host.log"
    env = {**os.environ, "SCIMGATE_DATABASE_URL": database_url, "SCIMGATE_PUBLIC_URL": base}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "examples.fastapi_host:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"host exited:\n{log_path.read_text()}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"host did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_scim_changes_reach_the_host_in_process(host: str) -> None:
    with httpx.Client(base_url=host, timeout=30) as client:
        connected = client.post("/customers/acme-example/scim")
        assert connected.status_code == 201, connected.text
        info = connected.json()
        assert info["tenant_url"].startswith(f"{host}/scim/v2/{info['directory_id']}")
        scim = {"Authorization": f"Bearer {info['secret_token']}", "Content-Type": SCIM_JSON}
        base = f"/scim/v2/{info['directory_id']}"

        created = client.post(
            f"{base}/Users",
            headers=scim,
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "grace@acme.example",
                "displayName": "Grace Hopper",
                "emails": [{"type": "work", "value": "grace@acme.example", "primary": True}],
            },
        )
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        # No polling, no webhook: the handler ran before the SCIM response was sent.
        accounts = client.get("/accounts").json()
        assert accounts["accounts"] == [
            {
                "id": user_id,
                "organization_id": info["organization_id"],
                "email": "grace@acme.example",
                "name": "Grace Hopper",
                "active": True,
            }
        ]

        deactivated = client.patch(
            f"{base}/Users/{user_id}",
            headers=scim,
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        )
        assert deactivated.status_code in (200, 204), deactivated.text
        accounts = client.get("/accounts").json()
        assert accounts["accounts"][0]["active"] is False
        assert accounts["signed_out"] == [user_id]

        assert client.delete(f"{base}/Users/{user_id}", headers=scim).status_code == 204
        assert client.get("/accounts").json()["accounts"] == []
        # The host's own docs still work beside the mount.
        assert client.get("/openapi.json").json()["info"]["title"] == "Host app"


async def test_the_example_app_in_process(database_url: str) -> None:
    """Also usable as a library: build_app(settings) with the lifespan run by the caller."""
    example = _load_example()
    app = example.build_app(Settings(database_url=database_url, public_url="http://testserver"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            info = (await client.post("/customers/inproc/scim", params={"provider": "okta"})).json()
            assert "aadOptscim062020" not in info["tenant_url"]
            response = await client.post(
                f"/scim/v2/{info['directory_id']}/Users",
                headers={"Authorization": f"Bearer {info['secret_token']}"},
                json={
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "alan@inproc.example",
                },
            )
            assert response.status_code == 201, response.text
            accounts = app.state.accounts.by_id
            assert accounts[response.json()["id"]].email is None
            assert accounts[response.json()["id"]].organization_id == info["organization_id"]
