"""The whole Microsoft Entra ID provisioning lifecycle over real HTTP, in both of Entra's
PATCH dialects (see /work/shared/entra-provisioning.md): Test Connection, match-then-create,
every user PATCH shape of the default attribute mappings, manager, custom extension,
deactivation and reactivation, groups and memberships, hard delete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.integration.helpers import (
    ADSCIM_GROUP,
    COMPLIANT,
    CUSTOM_EXT,
    DIALECTS,
    ENTERPRISE,
    GROUP_SCHEMA,
    LIST_SCHEMA,
    ON_DEMAND,
    SCIM_JSON,
    USER_SCHEMA,
    Dialect,
    assert_scim_error,
    create_group,
    create_user,
    get_resource,
    group_body,
    guid,
    ids,
    media_type,
    member_ids,
    patch_ok,
    search,
    user_body,
)
from tests.live import Directory

each_dialect = pytest.mark.parametrize("dialect", DIALECTS, ids=str)


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"timestamp without time zone: {value!r}"
    return parsed


def _assert_meta(resource: dict[str, Any], directory: Directory, kind: str, endpoint: str) -> None:
    meta = resource["meta"]
    assert meta["resourceType"] == kind
    assert meta["location"] == f"{directory.scim_base}/{endpoint}/{resource['id']}"
    assert isinstance(meta["version"], str) and meta["version"]
    assert _timestamp(meta["created"]) <= _timestamp(meta["lastModified"])


# -- Test Connection and match-then-create -------------------------------------------------


@each_dialect
def test_test_connection_probes_return_empty_list(directory: Directory, dialect: Dialect) -> None:
    for path, attr in (("/Users", "userName"), ("/Groups", "displayName")):
        response = directory.client.get(
            dialect.url(directory, path, filter=f'{attr} eq "{guid()}"')
        )
        assert response.status_code == 200, response.text
        assert media_type(response) == SCIM_JSON
        body = response.json()
        assert body["schemas"] == [LIST_SCHEMA]
        assert body["totalResults"] == 0
        assert body.get("Resources", []) == []
        assert body["startIndex"] == 1


@each_dialect
def test_match_then_create_user(directory: Directory, dialect: Dialect) -> None:
    body = user_body()
    work_email = body["emails"][0]["value"]
    filters = {
        "userName": f'userName eq "{body["userName"]}"',
        "externalId": f'externalId eq "{body["externalId"]}"',
        "email": f'emails[type eq "work"].value eq "{work_email}"',
    }
    for expression in filters.values():
        assert search(directory, "/Users", dialect, filter=expression)["totalResults"] == 0

    response = directory.client.post(dialect.url(directory, "/Users"), json=body)
    assert response.status_code == 201, response.text
    assert media_type(response) == SCIM_JSON
    user = response.json()
    assert isinstance(user["id"], str) and user["id"]
    assert USER_SCHEMA in user["schemas"]
    _assert_meta(user, directory, "User", "Users")
    assert response.headers["location"] == user["meta"]["location"]
    assert response.headers["etag"] == user["meta"]["version"]
    assert user["userName"] == body["userName"]
    assert user["externalId"] == body["externalId"]
    assert user["active"] is True
    assert user["displayName"] == body["displayName"]
    assert user["name"] == body["name"]
    assert user["emails"] == [{"primary": True, "type": "work", "value": work_email}]
    assert user[ENTERPRISE] == body[ENTERPRISE]

    for expression in filters.values():
        found = search(directory, "/Users", dialect, filter=expression)
        assert found["totalResults"] == 1, expression
        assert ids(found) == [user["id"]], expression
    # userName is case-insensitive (RFC 7643 §4.1.1): Entra's match must still find it.
    upper = search(directory, "/Users", dialect, filter=f'userName eq "{body["userName"].upper()}"')
    assert ids(upper) == [user["id"]]

    response = directory.client.get(dialect.url(directory, f"/Users/{user['id']}"))
    assert response.status_code == 200
    assert response.json() == user
    assert response.headers["etag"] == user["meta"]["version"]


@each_dialect
def test_create_user_with_nulls_and_string_booleans(directory: Directory, dialect: Dialect) -> None:
    body = user_body(active="True", addresses=None, phoneNumbers=None, title=None, nickName=None)
    body["name"]["middleName"] = None
    response = directory.client.post(dialect.url(directory, "/Users"), json=body)
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["active"] is True
    for absent in ("addresses", "phoneNumbers", "title", "nickName"):
        assert absent not in user, absent
    assert "middleName" not in user["name"]
    assert get_resource(directory, f"/Users/{user['id']}", dialect)["active"] is True

    # Cloud-only users often have no mail: emails is not required.
    no_mail = create_user(directory, dialect, emails=None, active="False")
    assert "emails" not in no_mail
    assert no_mail["active"] is False


# -- user updates ----------------------------------------------------------------------------


def _every_mapping_operations(dialect: Dialect, new_mail: str) -> list[dict[str, Any]]:
    """Entra's PATCH for a user whose mail, surname, mobile, address, employeeId,
    department and a custom attribute changed, as this dialect sends it."""
    address = [
        dialect.op("replace", 'addresses[type eq "work"].streetAddress', "1 Main St"),
        dialect.op("add", 'addresses[type eq "work"].locality', "Redmond"),
        dialect.op("replace", 'addresses[type eq "work"].region', "WA"),
        dialect.op("add", 'addresses[type eq "work"].postalCode', "98052"),
        dialect.op("replace", 'addresses[type eq "work"].country', "US"),
    ]
    phone = dialect.op("add", 'phoneNumbers[type eq "mobile"].value', "+1 555 0100")
    if dialect is COMPLIANT:
        return [
            dialect.op(
                "replace",
                None,
                {
                    'emails[type eq "work"].value': new_mail,
                    "name.familyName": "Updated",
                    "displayName": "Renamed User",
                    f"{ENTERPRISE}:employeeNumber": "E-9",
                    f"{ENTERPRISE}:department": "Finance",
                    f"{CUSTOM_EXT}:costCenter": "CC-42",
                },
            ),
            phone,
            *address,
        ]
    return [
        dialect.op("replace", 'emails[type eq "work"].value', new_mail),
        dialect.op("replace", "name.familyName", "Updated"),
        dialect.op("replace", "displayName", "Renamed User"),
        phone,
        *address,
        dialect.op("replace", f"{ENTERPRISE}:employeeNumber", "E-9"),
        dialect.op("replace", f"{ENTERPRISE}:department", "Finance"),
        dialect.op("add", f"{CUSTOM_EXT}:costCenter", "CC-42"),
    ]


@each_dialect
def test_user_patch_every_default_mapping(directory: Directory, dialect: Dialect) -> None:
    user = create_user(directory, dialect)
    uid = user["id"]
    new_mail = f"new.{uid}@contoso.com"
    response = patch_ok(
        directory, f"/Users/{uid}", *_every_mapping_operations(dialect, new_mail), dialect=dialect
    )

    got = get_resource(directory, f"/Users/{uid}", dialect)
    if response.status_code == 200:
        assert response.json() == got
    assert got["emails"] == [{"primary": True, "type": "work", "value": new_mail}]
    assert got["name"]["familyName"] == "Updated"
    assert got["name"]["givenName"] == user["name"]["givenName"]
    assert got["displayName"] == "Renamed User"
    assert [{k: p[k] for k in ("type", "value")} for p in got["phoneNumbers"]] == [
        {"type": "mobile", "value": "+1 555 0100"}
    ]
    assert len(got["addresses"]) == 1, got["addresses"]
    address = got["addresses"][0]
    assert {
        k: address.get(k)
        for k in ("type", "streetAddress", "locality", "region", "postalCode", "country")
    } == {
        "type": "work",
        "streetAddress": "1 Main St",
        "locality": "Redmond",
        "region": "WA",
        "postalCode": "98052",
        "country": "US",
    }
    assert got[ENTERPRISE]["employeeNumber"] == "E-9"
    assert got[ENTERPRISE]["department"] == "Finance"
    assert got[CUSTOM_EXT] == {"costCenter": "CC-42"}
    assert CUSTOM_EXT in got["schemas"]
    assert got["userName"] == user["userName"]
    assert got["meta"]["version"] != user["meta"]["version"]
    assert _timestamp(got["meta"]["lastModified"]) >= _timestamp(user["meta"]["lastModified"])
    assert got["meta"]["created"] == user["meta"]["created"]

    # The new mail is what Entra's email matching finds from now on.
    found = search(
        directory, "/Users", dialect, filter=f'emails[type eq "work"].value eq "{new_mail}"'
    )
    assert ids(found) == [uid]

    # A second change to the same mobile number replaces it; it does not add another one.
    patch_ok(
        directory,
        f"/Users/{uid}",
        dialect.op("replace", 'phoneNumbers[type eq "mobile"].value', "+1 555 0199"),
        dialect.op("replace", f"{CUSTOM_EXT}:costCenter", "CC-43"),
        dialect=dialect,
    )
    got = get_resource(directory, f"/Users/{uid}", dialect)
    assert [(p["type"], p["value"]) for p in got["phoneNumbers"]] == [("mobile", "+1 555 0199")]
    assert got[CUSTOM_EXT] == {"costCenter": "CC-43"}
    assert len(got["addresses"]) == 1


@each_dialect
def test_manager_in_every_shape_and_removal(directory: Directory, dialect: Dialect) -> None:
    uid = create_user(directory, dialect)["id"]
    managers = [create_user(directory, dialect)["id"] for _ in range(6)]
    shapes = [
        ("add", "manager", lambda m: [{"$ref": None, "value": m}]),
        ("replace", "manager", lambda m: m),
        ("replace", "manager", lambda m: {"value": m}),
        ("add", f"{ENTERPRISE}:manager", lambda m: m),
        ("replace", f"{ENTERPRISE}:manager", lambda m: {"$ref": None, "value": m}),
        ("add", f"{ENTERPRISE}:manager", lambda m: [{"$ref": None, "value": m}]),
    ]
    for manager_id, (op, path, shape) in zip(managers, shapes, strict=True):
        patch_ok(
            directory, f"/Users/{uid}", dialect.op(op, path, shape(manager_id)), dialect=dialect
        )
        got = get_resource(directory, f"/Users/{uid}", dialect)
        assert got[ENTERPRISE]["manager"]["value"] == manager_id, (op, path)
        # the rest of the enterprise extension is untouched
        assert got[ENTERPRISE]["department"] == "Sales"

    if dialect is COMPLIANT:
        removal = dialect.op("remove", f"{ENTERPRISE}:manager")
    else:
        removal = dialect.op("remove", "manager", [{"value": managers[-1]}])
    patch_ok(directory, f"/Users/{uid}", removal, dialect=dialect)
    got = get_resource(directory, f"/Users/{uid}", dialect)
    assert "manager" not in got.get(ENTERPRISE, {})
    assert got[ENTERPRISE]["department"] == "Sales"


@each_dialect
def test_deactivate_keeps_user_and_memberships_then_reactivate(
    directory: Directory, dialect: Dialect
) -> None:
    user = create_user(directory, dialect)
    uid = user["id"]
    other = create_user(directory, dialect)["id"]
    gid = create_group(directory, dialect)["id"]
    patch_ok(directory, f"/Groups/{gid}", dialect.add_members(uid, other), dialect=dialect)

    response = patch_ok(
        directory,
        f"/Users/{uid}",
        dialect.op("replace", "active", dialect.boolean(False)),
        dialect=dialect,
    )
    if response.status_code == 200:
        assert response.json()["active"] is False
    got = get_resource(directory, f"/Users/{uid}", dialect)
    assert got["active"] is False
    assert got["userName"] == user["userName"]
    assert ids(search(directory, "/Users", dialect, filter="active eq false")) == [uid]
    assert ids(search(directory, "/Users", dialect, filter="active eq true")) == [other]
    by_name = search(directory, "/Users", dialect, filter=f'userName eq "{user["userName"]}"')
    assert ids(by_name) == [uid]
    assert member_ids(directory, gid, dialect) == {uid, other}

    patch_ok(
        directory,
        f"/Users/{uid}",
        dialect.op("replace", "active", dialect.boolean(True)),
        dialect=dialect,
    )
    assert get_resource(directory, f"/Users/{uid}", dialect)["active"] is True
    assert search(directory, "/Users", dialect, filter="active eq false")["totalResults"] == 0
    assert set(ids(search(directory, "/Users", dialect, filter="active eq true"))) == {uid, other}
    assert member_ids(directory, gid, dialect) == {uid, other}


# -- groups --------------------------------------------------------------------------------------


def _membership_check(directory: Directory, dialect: Dialect, gid: str, uid: str) -> dict[str, Any]:
    return search(
        directory,
        "/Groups",
        dialect,
        filter=f'id eq "{gid}" and members[value eq "{uid}"]',
        attributes="id",
    )


@each_dialect
def test_group_lifecycle(directory: Directory, dialect: Dialect) -> None:
    users = [create_user(directory, dialect)["id"] for _ in range(5)]
    u1, u2, u3, u4, u5 = users
    name = f"Sales {guid()}"

    match = search(
        directory,
        "/Groups",
        dialect,
        excludedAttributes="members",
        filter=f'displayName eq "{name}"',
    )
    assert match["totalResults"] == 0

    body = group_body(displayName=name)
    response = directory.client.post(dialect.url(directory, "/Groups"), json=body)
    assert response.status_code == 201, response.text
    assert media_type(response) == SCIM_JSON
    group = response.json()
    gid = group["id"]
    assert group["displayName"] == name
    assert group["externalId"] == body["externalId"]
    assert GROUP_SCHEMA in group["schemas"]
    assert group.get("members", []) == []
    _assert_meta(group, directory, "Group", "Groups")
    assert response.headers["location"] == group["meta"]["location"]
    assert response.headers["etag"] == group["meta"]["version"]

    match = search(
        directory,
        "/Groups",
        dialect,
        excludedAttributes="members",
        filter=f'displayName eq "{name}"',
    )
    assert ids(match) == [gid]
    assert "members" not in match["Resources"][0]
    # displayName is caseExact=false: a match in another case finds the group too
    assert ids(
        search(directory, "/Groups", dialect, filter=f'displayName eq "{name.upper()}"')
    ) == [gid]

    # members arrive in a batch; adding one that is already there is a no-op
    patch_ok(directory, f"/Groups/{gid}", dialect.add_members(u1, u2, u3, u4), dialect=dialect)
    assert member_ids(directory, gid, dialect) == {u1, u2, u3, u4}
    patch_ok(directory, f"/Groups/{gid}", dialect.add_members(u1, u5), dialect=dialect)
    assert member_ids(directory, gid, dialect) == {u1, u2, u3, u4, u5}
    version = get_resource(directory, f"/Groups/{gid}", dialect)["meta"]["version"]
    patch_ok(directory, f"/Groups/{gid}", dialect.add_members(u1), dialect=dialect)
    assert member_ids(directory, gid, dialect) == {u1, u2, u3, u4, u5}
    assert get_resource(directory, f"/Groups/{gid}", dialect)["meta"]["version"] == version
    members = get_resource(directory, f"/Groups/{gid}", dialect)["members"]
    assert {m["value"]: m.get("type", "User") for m in members} == dict.fromkeys(users, "User")

    check = _membership_check(directory, dialect, gid, u1)
    assert check["totalResults"] == 1
    [hit] = check["Resources"]
    assert hit["id"] == gid
    assert set(hit) <= {"id", "schemas"}, hit

    # rename
    patch_ok(
        directory, f"/Groups/{gid}", dialect.rename_group(gid, f"{name} EMEA"), dialect=dialect
    )
    got = get_resource(directory, f"/Groups/{gid}", dialect)
    assert got["displayName"] == f"{name} EMEA"
    assert got["externalId"] == body["externalId"]
    assert member_ids(directory, gid, dialect) == set(users)
    assert ids(search(directory, "/Groups", dialect, filter=f'displayName eq "{name} EMEA"')) == [
        gid
    ]
    assert (
        search(directory, "/Groups", dialect, filter=f'displayName eq "{name}"')["totalResults"]
        == 0
    )

    # removing one member removes that member only (legacy: never "wipe the group")
    patch_ok(directory, f"/Groups/{gid}", *dialect.remove_members(u1), dialect=dialect)
    assert member_ids(directory, gid, dialect) == {u2, u3, u4, u5}
    assert _membership_check(directory, dialect, gid, u1)["totalResults"] == 0
    assert _membership_check(directory, dialect, gid, u2)["totalResults"] == 1

    # removing several at once removes exactly those
    patch_ok(directory, f"/Groups/{gid}", *dialect.remove_members(u2, u3), dialect=dialect)
    assert member_ids(directory, gid, dialect) == {u4, u5}
    # removing a member that is not (or no longer) there changes nothing
    patch_ok(directory, f"/Groups/{gid}", *dialect.remove_members(u1), dialect=dialect)
    assert member_ids(directory, gid, dialect) == {u4, u5}

    without = get_resource(directory, f"/Groups/{gid}", dialect, excludedAttributes="members")
    assert "members" not in without
    assert without["id"] == gid
    assert without["displayName"] == f"{name} EMEA"

    # hard delete of a member: 204, then 404, and gone from the group
    response = directory.client.delete(dialect.url(directory, f"/Users/{u4}"))
    assert response.status_code == 204, response.text
    assert_scim_error(directory.client.get(dialect.url(directory, f"/Users/{u4}")), 404)
    assert member_ids(directory, gid, dialect) == {u5}
    assert _membership_check(directory, dialect, gid, u4)["totalResults"] == 0

    # delete the group: 204, then 404; its members are still users
    response = directory.client.delete(dialect.url(directory, f"/Groups/{gid}"))
    assert response.status_code == 204, response.text
    assert_scim_error(directory.client.get(dialect.url(directory, f"/Groups/{gid}")), 404)
    assert get_resource(directory, f"/Users/{u5}", dialect)["id"] == u5
    assert (
        search(directory, "/Groups", dialect, filter=f'displayName eq "{name} EMEA"')[
            "totalResults"
        ]
        == 0
    )


@each_dialect
def test_group_created_with_microsoft_schema_and_no_members(
    directory: Directory, dialect: Dialect
) -> None:
    group = create_group(directory, dialect)
    assert group.get("members", []) == []
    fetched = get_resource(directory, f"/Groups/{group['id']}", dialect)
    assert fetched["displayName"] == group["displayName"]
    # Microsoft's URI is accepted; it may or may not be echoed, but the core schema is there.
    assert GROUP_SCHEMA in fetched["schemas"]
    assert set(fetched["schemas"]) <= {GROUP_SCHEMA, ADSCIM_GROUP}


def test_provision_on_demand_sends_legacy_bodies_to_a_flagged_url(directory: Directory) -> None:
    """Provision on demand ignores ?aadOptscim062020: legacy bodies arrive with the flag."""
    d = ON_DEMAND
    u1, u2, u3 = (create_user(directory, d)["id"] for _ in range(3))
    gid = create_group(directory, d)["id"]
    patch_ok(directory, f"/Groups/{gid}", d.add_members(u1, u2, u3), dialect=d)
    patch_ok(directory, f"/Groups/{gid}", *d.remove_members(u2), dialect=d)
    assert member_ids(directory, gid, d) == {u1, u3}
    patch_ok(directory, f"/Users/{u1}", d.op("replace", "active", "False"), dialect=d)
    assert get_resource(directory, f"/Users/{u1}", d)["active"] is False
    assert member_ids(directory, gid, d) == {u1, u3}
