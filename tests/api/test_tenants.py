"""Organizations, directories, tokens and rules through the management API."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from scimgate.store.tables import users as users_table
from tests.api.stack import Stack


def _error(response: object, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    error: dict[str, str] = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == code and error["message"], error
    return error


async def test_organization_crud_and_external_id_lookup(stack: Stack) -> None:
    ext = f"cust-{uuid.uuid4().hex[:8]}"
    org = await stack.ok("POST", "/organizations", 201, json={"name": " Acme ", "external_id": ext})
    assert org["name"] == "Acme" and org["external_id"] == ext
    assert org["created_at"].endswith("Z")
    assert await stack.ok("GET", f"/organizations/{org['id']}") == org
    assert await stack.ok("GET", f"/organizations/by-external-id/{ext}") == org
    # Get is by id only: an external id is not an id.
    _error(await stack.api("GET", f"/organizations/{ext}"), 404, "not_found")
    listed = await stack.ok("GET", "/organizations", params={"external_id": ext})
    assert listed == {"data": [org], "next_cursor": None}

    _error(
        await stack.api("POST", "/organizations", json={"name": "Dup", "external_id": ext}),
        409,
        "conflict",
    )
    renamed = await stack.ok("PATCH", f"/organizations/{org['id']}", json={"name": "Acme Inc"})
    assert renamed["name"] == "Acme Inc" and renamed["external_id"] == ext
    cleared = await stack.ok("PATCH", f"/organizations/{org['id']}", json={"external_id": None})
    assert cleared["external_id"] is None and cleared["name"] == "Acme Inc"
    _error(await stack.api("GET", f"/organizations/by-external-id/{ext}"), 404, "not_found")

    _error(await stack.api("POST", "/organizations", json={"name": ""}), 422, "validation_error")
    bad = _error(
        await stack.api("POST", "/organizations", json={"name": "x", "nmae": "typo"}),
        422,
        "validation_error",
    )
    assert "nmae" in bad["message"]
    _error(await stack.api("POST", "/organizations", json={"name": "  "}), 400, "invalid_request")

    await stack.ok("DELETE", f"/organizations/{org['id']}", 204)
    _error(await stack.api("GET", f"/organizations/{org['id']}"), 404, "not_found")
    _error(await stack.api("DELETE", f"/organizations/{org['id']}"), 404, "not_found")
    _error(
        await stack.api("PATCH", f"/organizations/{org['id']}", json={"name": "x"}),
        404,
        "not_found",
    )


async def test_organizations_page_with_a_cursor(stack: Stack) -> None:
    made = {(await stack.organization())["id"] for _ in range(5)}
    seen = [o["id"] for o in await stack.all_pages("/organizations", limit=2)]
    assert len(seen) == len(set(seen))
    assert made <= set(seen)


async def test_directory_lifecycle_token_once_and_rotation(stack: Stack) -> None:
    org = await stack.organization()
    created = await stack.ok(
        "POST",
        "/directories",
        201,
        json={"organization_id": org["id"], "provider": "entra", "name": "Entra prod"},
    )
    token = created.pop("token")
    assert token.startswith("scimgate_")
    assert created["tenant_url"] == f"{created['scim_base_url']}?aadOptscim062020"
    assert created["scim_base_url"].endswith(f"/scim/v2/{created['id']}")
    assert created["token_hint"].endswith(token[-4:])
    assert created["enabled"] is True and created["rules"] is None
    fetched = await stack.ok("GET", f"/directories/{created['id']}")
    assert "token" not in fetched
    assert fetched == created

    scim_url = f"/scim/v2/{created['id']}/Users"
    assert (
        await stack.client.get(scim_url, headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200

    rotated = await stack.ok("POST", f"/directories/{created['id']}/rotate-token")
    new_token = rotated["token"]
    assert new_token != token and rotated["token_hint"].endswith(new_token[-4:])
    assert (
        await stack.client.get(scim_url, headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401
    assert (
        await stack.client.get(scim_url, headers={"Authorization": f"Bearer {new_token}"})
    ).status_code == 200
    # The rotation is an event, in-process too (the API shares create_app's bus).
    assert any(
        e.type == "directory.token_rotated" and e.directory_id == created["id"]
        for e in stack.events
    )

    renamed = await stack.ok("PATCH", f"/directories/{created['id']}", json={"name": "Entra"})
    assert renamed["name"] == "Entra" and renamed["enabled"] is True
    disabled = await stack.ok("POST", f"/directories/{created['id']}/disable")
    assert disabled["enabled"] is False
    assert (
        await stack.client.get(scim_url, headers={"Authorization": f"Bearer {new_token}"})
    ).status_code == 401
    enabled = await stack.ok("PATCH", f"/directories/{created['id']}", json={"enabled": True})
    assert enabled["enabled"] is True
    again = await stack.ok("POST", f"/directories/{created['id']}/disable")
    assert again["enabled"] is False
    assert (await stack.ok("POST", f"/directories/{created['id']}/enable"))["enabled"] is True

    listed = await stack.ok("GET", "/directories", params={"organization_id": org["id"]})
    assert [d["id"] for d in listed["data"]] == [created["id"]]
    assert all("token" not in d for d in listed["data"])

    await stack.ok("DELETE", f"/directories/{created['id']}", 204)
    _error(await stack.api("GET", f"/directories/{created['id']}"), 404, "not_found")
    for path in ("rotate-token", "disable", "enable"):
        _error(await stack.api("POST", f"/directories/{created['id']}/{path}"), 404, "not_found")


async def test_directory_create_refuses_unknown_org_and_provider(stack: Stack) -> None:
    _error(
        await stack.api("POST", "/directories", json={"organization_id": str(uuid.uuid4())}),
        404,
        "not_found",
    )
    org = await stack.organization(external_id=f"e-{uuid.uuid4().hex[:6]}")
    # The organization is named by its id, not its external id.
    _error(
        await stack.api("POST", "/directories", json={"organization_id": org["external_id"]}),
        404,
        "not_found",
    )
    _error(
        await stack.api(
            "POST", "/directories", json={"organization_id": org["id"], "provider": "ldap"}
        ),
        422,
        "validation_error",
    )


async def test_deleting_an_organization_deletes_its_directories(stack: Stack) -> None:
    directory = await stack.directory()
    await stack.scim_user(directory)
    await stack.ok("DELETE", f"/organizations/{directory.organization_id}", 204)
    _error(await stack.api("GET", f"/directories/{directory.id}"), 404, "not_found")
    async with stack.app.state.db.read() as conn:
        count = (
            await conn.execute(
                select(func.count())
                .select_from(users_table)
                .where(users_table.c.directory_id == directory.id)
            )
        ).scalar_one()
    assert count == 0


RULES = {
    "required": ['emails[type eq "work"].value', "name.familyName"],
    "max_lengths": {"userName": 40},
    "user_name_pattern": "^[a-z0-9_.@-]+$",
    "allowed_email_domains": ["contoso.com"],
}


async def test_rules_round_trip_and_a_violating_scim_post_stores_nothing(stack: Stack) -> None:
    directory = await stack.directory()
    empty = await stack.ok("GET", f"/directories/{directory.id}/rules")
    assert empty == {
        "required": [],
        "max_lengths": {},
        "user_name_pattern": None,
        "allowed_email_domains": [],
    }
    stored = await stack.ok("PUT", f"/directories/{directory.id}/rules", json=RULES)
    assert stored == RULES
    assert await stack.ok("GET", f"/directories/{directory.id}/rules") == RULES
    assert (await stack.ok("GET", f"/directories/{directory.id}"))["rules"] == RULES

    async def count_users() -> int:
        async with stack.app.state.db.read() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(users_table)
                        .where(users_table.c.directory_id == directory.id)
                    )
                ).scalar_one()
            )

    events_before = len(stack.events)
    cases = {
        "name.familyName": {"name": {"givenName": "Only"}},
        "userName": {"userName": "UPPER_CASE@contoso.com"},
        "emails": {"emails": [{"type": "work", "value": "x@elsewhere.org", "primary": True}]},
        'emails[type eq "work"].value': {"emails": [{"type": "home", "value": "h@contoso.com"}]},
    }
    for attribute, override in cases.items():
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"ok_{uuid.uuid4().hex[:6]}@contoso.com",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"type": "work", "value": "a@contoso.com", "primary": True}],
            **override,
        }
        response = await stack.scim(directory, "POST", "/Users", body)
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["scimType"] == "invalidValue", error
        assert attribute in error["detail"], (attribute, error["detail"])
    assert await count_users() == 0
    assert not [e for e in stack.events[events_before:] if e.directory_id == directory.id]

    ok = await stack.scim(
        directory,
        "POST",
        "/Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "fine@contoso.com",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"type": "work", "value": "fine@contoso.com"}],
        },
    )
    assert ok.status_code == 201, ok.text
    assert await count_users() == 1

    # Invalid documents are refused whole, with the reason.
    bad_regex = await stack.api(
        "PUT", f"/directories/{directory.id}/rules", json={"user_name_pattern": "(["}
    )
    assert _error(bad_regex, 400, "invalid_request")["message"].startswith("user_name_pattern")
    _error(
        await stack.api(
            "PUT", f"/directories/{directory.id}/rules", json={"max_lengths": {"a": 0}}
        ),
        422,
        "validation_error",
    )
    _error(
        await stack.api("PUT", f"/directories/{directory.id}/rules", json={"requird": []}),
        422,
        "validation_error",
    )
    assert await stack.ok("GET", f"/directories/{directory.id}/rules") == RULES

    await stack.ok("DELETE", f"/directories/{directory.id}/rules", 204)
    assert (await stack.ok("GET", f"/directories/{directory.id}"))["rules"] is None
    assert (await stack.scim_user(directory, userName="ANY_Name@elsewhere.org"))["id"]
    _error(await stack.api("GET", f"/directories/{uuid.uuid4()}/rules"), 404, "not_found")
    _error(
        await stack.api("PUT", f"/directories/{uuid.uuid4()}/rules", json=RULES), 404, "not_found"
    )


async def test_disabling_an_organization_disables_all_its_directories(stack: Stack) -> None:
    org = await stack.organization()
    other = await stack.organization()
    made = [
        await stack.ok("POST", "/directories", 201, json={"organization_id": o["id"]})
        for o in (org, org, other)
    ]
    disabled = await stack.ok("POST", f"/organizations/{org['id']}/disable")
    assert sorted(d["id"] for d in disabled) == sorted(d["id"] for d in made[:2])
    assert all(d["enabled"] is False for d in disabled)
    for d in made[:2]:
        url = f"/scim/v2/{d['id']}/Users"
        r = await stack.client.get(url, headers={"Authorization": f"Bearer {d['token']}"})
        assert r.status_code == 401
    untouched = made[2]
    r = await stack.client.get(
        f"/scim/v2/{untouched['id']}/Users",
        headers={"Authorization": f"Bearer {untouched['token']}"},
    )
    assert r.status_code == 200
    enabled = await stack.ok("POST", f"/organizations/{org['id']}/enable")
    assert all(d["enabled"] is True for d in enabled)
    _error(await stack.api("POST", "/organizations/no-such-org/disable"), 404, "not_found")
