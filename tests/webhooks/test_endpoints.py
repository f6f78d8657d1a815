"""Registering webhook endpoints: validation, tenancy checks, secrets, SSRF refusals, and
the management operations the API builds on. No request leaves this process here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from standardwebhooks import Webhook

from scimgate.directory.tenancy import Directory, Organization, Tenancy
from scimgate.errors import InvalidInput, NotFound
from scimgate.events import ssrf
from scimgate.events.webhooks import Webhooks
from scimgate.store.engine import Database

PRIVATE_URLS = [
    "http://127.0.0.1:9/hook",
    "http://127.8.9.10/hook",
    "http://localhost:9/hook",
    "http://[::1]:9/hook",
    "http://10.0.0.5/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://198.51.100.7/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[64:ff9b::a00:1]/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
]


async def test_create_returns_the_secret_once(hooks: Webhooks, org: Organization) -> None:
    endpoint, secret = await hooks.create_endpoint(org.id, "http://127.0.0.1:9/hook")
    assert secret.startswith("whsec_")
    Webhook(secret)  # a valid Standard Webhooks secret
    assert endpoint.organization_id == org.id
    assert endpoint.directory_id is None
    assert endpoint.event_types is None
    assert endpoint.enabled
    for shown in (
        endpoint,
        await hooks.get_endpoint(endpoint.id),
        *(await hooks.list_endpoints(org.id)),
    ):
        assert "secret" not in shown.to_json()
        assert secret.removeprefix("whsec_") not in json.dumps(shown.to_json())
        assert secret.removeprefix("whsec_") not in repr(shown)
    rotated = await hooks.rotate_secret(endpoint.id)
    assert rotated.startswith("whsec_") and rotated != secret


async def test_a_given_secret_is_kept_and_checked(hooks: Webhooks, org: Organization) -> None:
    mine = "whsec_" + "A" * 44  # 33 bytes of base64
    _endpoint, secret = await hooks.create_endpoint(org.id, "http://127.0.0.1:9/", secret=mine)
    assert secret == mine
    for bad in ("whsec_short", "whsec_!!!notbase64!!!", "whsec_" + "A" * 100):
        with pytest.raises(InvalidInput, match="secret"):
            await hooks.create_endpoint(org.id, "http://127.0.0.1:9/", secret=bad)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/hook", "http"),
        ("javascript:alert(1)", "http"),
        ("127.0.0.1/hook", "http"),
        ("http:///hook", "no host"),
        ("http://user:pw@127.0.0.1/hook", "credentials"),
        ("http://127.0.0.1:99999/hook", "not a valid URL"),
        ("http://127.0.0.1/ho ok", "whitespace"),
        ("http://127.0.0.1/" + "a" * 2100, "longer"),
    ],
)
async def test_malformed_urls_are_refused(
    hooks: Webhooks, org: Organization, url: str, message: str
) -> None:
    with pytest.raises(ssrf.UnsafeURL, match=message):
        await hooks.create_endpoint(org.id, url)


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_targets_are_refused_by_default(
    db: Database, org: Organization, url: str
) -> None:
    strict = Webhooks(db)
    with pytest.raises(ssrf.UnsafeURL, match="refused"):
        await strict.create_endpoint(org.id, url)
    assert await strict.list_endpoints(org.id) == []


async def test_loopback_is_allowed_when_the_operator_says_so(
    db: Database, org: Organization
) -> None:
    for url in ("http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/x"):
        endpoint, _ = await Webhooks(db, allow_private=True).create_endpoint(org.id, url)
        assert endpoint.url == url


async def test_changing_the_url_is_checked_too(db: Database, org: Organization) -> None:
    endpoint, _ = await Webhooks(db, allow_private=True).create_endpoint(
        org.id, "http://127.0.0.1:9/hook"
    )
    with pytest.raises(ssrf.UnsafeURL, match="refused"):
        await Webhooks(db).update_endpoint(endpoint.id, url="http://10.1.2.3/hook")
    with pytest.raises(ssrf.UnsafeURL, match="http"):
        await Webhooks(db).update_endpoint(endpoint.id, url="file:///etc/passwd")
    assert (await Webhooks(db).get_endpoint(endpoint.id)).url == "http://127.0.0.1:9/hook"


async def test_a_name_that_resolves_to_any_private_address_is_refused(
    db: Database, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"mixed.example.test": ["93.184.216.34", "10.0.0.1"]}

    async def fake_resolve(host: str, port: int) -> list[str]:
        return answers[host]

    monkeypatch.setattr(ssrf, "resolve", fake_resolve)
    with pytest.raises(
        ssrf.UnsafeURL, match=r"mixed\.example\.test resolves to 10\.0\.0\.1, a private address"
    ):
        await Webhooks(db).create_endpoint(org.id, "https://mixed.example.test/hook")


def test_public_addresses_pass_the_check() -> None:
    import ipaddress

    for address in ("93.184.216.34", "2606:4700:4700::1111", "8.8.8.8"):
        assert ssrf.refusal(ipaddress.ip_address(address)) is None
    target = ssrf.parse_url("HTTPS://Hooks.Example.com:8443/a/b?x=1#frag")
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 8443)
    assert target.path == "/a/b?x=1"
    assert target.host_header == "hooks.example.com:8443"
    assert ssrf.parse_url("http://[2606:4700::1]/").host_header == "[2606:4700::1]"


async def test_ownership_and_filters_are_validated(
    hooks: Webhooks, db: Database, org: Organization, org_directory: Directory
) -> None:
    other_org = await Tenancy(db).create_organization("Other")
    other_dir, _ = await Tenancy(db).create_directory(other_org.id, "Theirs", "okta")
    url = "http://127.0.0.1:9/hook"
    with pytest.raises(NotFound):
        await hooks.create_endpoint("no-such-org", url)
    with pytest.raises(NotFound):
        await hooks.create_endpoint(org.id, url, directory_id="no-such-directory")
    with pytest.raises(InvalidInput, match="another organization"):
        await hooks.create_endpoint(org.id, url, directory_id=other_dir.id)
    bad_types: list[Any] = [["user.created", "user.exploded"], [], "user.created", [1]]
    for types in bad_types:
        with pytest.raises(InvalidInput, match="event"):
            await hooks.create_endpoint(org.id, url, event_types=types)
    with pytest.raises(InvalidInput, match="description"):
        await hooks.create_endpoint(org.id, url, description="x" * 5000)
    endpoint, _ = await hooks.create_endpoint(
        org.id,
        url,
        directory_id=org_directory.id,
        event_types=["group.created", "user.created", "user.created"],
        description="CRM sync",
    )
    assert endpoint.directory_id == org_directory.id
    assert endpoint.event_types == ("user.created", "group.created")  # deduped, canonical order
    assert endpoint.description == "CRM sync"


async def test_update_list_and_delete(
    hooks: Webhooks, db: Database, org: Organization, org_directory: Directory
) -> None:
    url = "http://127.0.0.1:9/hook"
    org_wide, _ = await hooks.create_endpoint(org.id, url, description="all")
    scoped, _ = await hooks.create_endpoint(org.id, url, directory_id=org_directory.id)
    second_dir, _ = await Tenancy(db).create_directory(org.id, "Second", "okta")
    elsewhere, _ = await hooks.create_endpoint(org.id, url, directory_id=second_dir.id)

    def ids(found: Sequence[Any]) -> list[str]:
        return [e.id for e in found]

    assert ids(await hooks.list_endpoints(org.id)) == [org_wide.id, scoped.id, elsewhere.id]
    assert ids(await hooks.list_endpoints(directory_id=org_directory.id)) == [
        org_wide.id,
        scoped.id,
    ]
    assert ids(await hooks.list_endpoints(org.id, directory_id=second_dir.id)) == [
        org_wide.id,
        elsewhere.id,
    ]

    changed = await hooks.update_endpoint(
        org_wide.id, url="http://127.0.0.1:10/new", event_types=["user.deleted"], enabled=False
    )
    assert (changed.url, changed.event_types, changed.enabled) == (
        "http://127.0.0.1:10/new",
        ("user.deleted",),
        False,
    )
    assert changed.description == "all"  # not given: unchanged
    assert changed.updated_at > org_wide.updated_at
    cleared = await hooks.update_endpoint(org_wide.id, event_types=None, description=None)
    assert (cleared.event_types, cleared.description, cleared.enabled) == (None, None, False)

    await hooks.delete_endpoint(scoped.id)
    with pytest.raises(NotFound):
        await hooks.get_endpoint(scoped.id)
    for call in (
        hooks.delete_endpoint(scoped.id),
        hooks.update_endpoint(scoped.id, enabled=True),
        hooks.rotate_secret(scoped.id),
        hooks.list_deliveries(scoped.id),
        hooks.send_test_event(scoped.id),
        hooks.replay_delivery("no-such-delivery"),
        hooks.get_delivery("no-such-delivery"),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(InvalidInput, match="status"):
        await hooks.list_deliveries(org_wide.id, status="lost")
    with pytest.raises(InvalidInput, match="limit"):
        await hooks.list_deliveries(org_wide.id, limit=0)


async def test_deleting_the_organization_deletes_its_endpoints(
    hooks: Webhooks, db: Database
) -> None:
    doomed = await Tenancy(db).create_organization("Doomed")
    endpoint, _ = await hooks.create_endpoint(doomed.id, "http://127.0.0.1:9/hook")
    await Tenancy(db).delete_organization(doomed.id)
    with pytest.raises(NotFound):
        await hooks.get_endpoint(endpoint.id)
