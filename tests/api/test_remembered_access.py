"""A write takes the directory its token opened on an earlier request of the process as
an assumption that the database confirms inside the write's transaction (one round trip
for a create on PostgreSQL). Whatever changes elsewhere in between (here: through another
process's services on the same database) is honoured by the very next write, as if
nothing were remembered: a rotated token, a disabled or deleted directory, new rules, a new
owner's external id."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from scimgate.directory.tenancy import Tenancy
from scimgate.store.engine import Database
from tests.api.stack import ScimDirectory, Stack


@pytest.fixture()
async def elsewhere(database_url: str) -> AsyncIterator[Tenancy]:
    """Another process's view of the database: changes it makes are invisible to the
    app's memory."""
    db = Database(database_url)
    yield Tenancy(db)
    await db.dispose()


async def _remembered(stack: Stack) -> ScimDirectory:
    directory = await stack.directory()
    await stack.scim_user(directory)  # the process now remembers this token's directory
    return directory


async def test_new_rules_apply_to_the_next_write(stack: Stack, elsewhere: Tenancy) -> None:
    directory = await _remembered(stack)
    await elsewhere.set_rules(directory.id, {"max_lengths": {"userName": 12}})
    long_name = {"userName": "much.too.long.for.the.rule@contoso.com"}
    refused = await stack.scim(directory, "POST", "/Users", {**_user_body(), **long_name})
    assert refused.status_code == 400, refused.text
    assert "userName" in refused.json()["detail"]
    await elsewhere.set_rules(directory.id, None)
    accepted = await stack.scim(directory, "POST", "/Users", {**_user_body(), **long_name})
    assert accepted.status_code == 201, accepted.text


async def test_a_rotated_token_is_refused_by_the_next_write(
    stack: Stack, elsewhere: Tenancy
) -> None:
    directory = await _remembered(stack)
    _, new_token = await elsewhere.rotate_token(directory.id)
    assert await _create(stack, directory) == 401
    rotated = ScimDirectory(directory.id, directory.organization_id, new_token, directory.raw)
    assert await _create(stack, rotated) == 201
    assert await _create(stack, directory) == 401


async def test_a_disabled_or_deleted_directory_refuses_the_next_write(
    stack: Stack, elsewhere: Tenancy
) -> None:
    directory = await _remembered(stack)
    await elsewhere.set_enabled(directory.id, False)
    assert await _create(stack, directory) == 401
    await elsewhere.set_enabled(directory.id, True)
    assert await _create(stack, directory) == 201
    await elsewhere.delete_directory(directory.id)
    assert await _create(stack, directory) == 404


async def test_events_name_the_owner_as_it_is_at_the_write(
    stack: Stack, elsewhere: Tenancy
) -> None:
    directory = await _remembered(stack)
    await elsewhere.update_organization(directory.organization_id, external_id="acme-renamed")
    created = await stack.scim_user(directory)
    [event] = [
        e
        for e in stack.events
        if e.type == "user.created" and e.data["user"]["id"] == created["id"]
    ]
    assert event.organization_external_id == "acme-renamed"
    assert event.organization_id == directory.organization_id


async def test_a_bad_body_with_a_rotated_token_is_401_not_400(
    stack: Stack, elsewhere: Tenancy
) -> None:
    """The remembered directory is never taken as proof: an error before the database
    confirmed it makes the token be checked on its own."""
    directory = await _remembered(stack)
    await elsewhere.rotate_token(directory.id)
    response = await stack.client.post(
        f"/scim/v2/{directory.id}/Users",
        content=b"{not json",
        headers={
            "Authorization": f"Bearer {directory.token}",
            "Content-Type": "application/scim+json",
        },
    )
    assert response.status_code == 401, response.text


async def _create(stack: Stack, directory: ScimDirectory) -> int:
    return (await stack.scim(directory, "POST", "/Users", _user_body())).status_code


def _user_body() -> dict[str, object]:
    import uuid

    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"u{uuid.uuid4().hex[:10]}@contoso.com",
    }
