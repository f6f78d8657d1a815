"""Request bodies → canonical documents (scimgate.scim.payloads)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scimgate.scim.errors import ScimError
from scimgate.scim.payloads import (
    MemberRef,
    find_key,
    member_fields,
    member_refs,
    parse_group,
    parse_user,
    user_name_key,
)

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CUSTOM = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"

# What Entra sends on create, with the quirks other senders add (nulls, string booleans).
ENTRA_CREATE: dict[str, Any] = {
    "schemas": [CORE, ENT],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_ab64@contoso.com",
    "active": "True",
    "displayName": "Test User",
    "emails": [{"primary": True, "type": "work", "value": "Test_User_ab64@contoso.com"}],
    "meta": {"resourceType": "User"},
    "name": {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "givenName",
    },
    "roles": [],
    "addresses": None,
    ENT: {"department": "Sales", "employeeNumber": "E-1", "costCenter": None},
}


def error_of(call: Any, *args: Any) -> ScimError:
    with pytest.raises(ScimError) as info:
        call(*args)
    assert info.value.status == 400
    return info.value


def test_entra_create_body_becomes_the_canonical_document() -> None:
    assert parse_user(copy.deepcopy(ENTRA_CREATE)) == {
        "schemas": [CORE, ENT],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab64@contoso.com",
        "active": True,
        "displayName": "Test User",
        "emails": [{"primary": True, "type": "work", "value": "Test_User_ab64@contoso.com"}],
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        ENT: {"department": "Sales", "employeeNumber": "E-1"},
    }


def test_canonical_document_parses_to_itself() -> None:
    doc = parse_user(copy.deepcopy(ENTRA_CREATE))
    assert parse_user(copy.deepcopy(doc)) == doc


def test_body_is_not_mutated() -> None:
    body = copy.deepcopy(ENTRA_CREATE)
    parse_user(body)
    assert body == ENTRA_CREATE


def test_server_owned_and_write_only_attributes_are_dropped() -> None:
    doc = parse_user(
        {
            "userName": "bob",
            "id": "client-chosen",
            "meta": {"resourceType": "User", "version": 'W/"1"'},
            "groups": [{"value": "g1"}],
            "password": "hunter2",
        }
    )
    assert doc == {"schemas": [CORE], "userName": "bob"}


def test_schemas_are_lenient() -> None:
    assert parse_user({"userName": "bob"})["schemas"] == [CORE]
    assert parse_user({"userName": "bob", "schemas": [ENT]})["schemas"] == [CORE]
    err = error_of(parse_user, {"userName": "bob", "schemas": CORE})
    assert err.scim_type == "invalidSyntax"
    assert "schemas" in err.detail


def test_custom_extension_is_kept_verbatim() -> None:
    ext = {"costCode": "42", "badges": ["a", "b"], "site": {"building": 7}, "gone": None}
    doc = parse_user({"schemas": [CORE], "userName": "bob", CUSTOM: ext})
    assert doc[CUSTOM] == {"costCode": "42", "badges": ["a", "b"], "site": {"building": 7}}
    assert doc["schemas"] == [CORE, CUSTOM]


def test_custom_extension_must_be_an_object() -> None:
    err = error_of(parse_user, {"userName": "bob", CUSTOM: "42"})
    assert err.scim_type == "invalidSyntax"
    assert CUSTOM in err.detail


@pytest.mark.parametrize(
    "manager",
    [
        "m-1",
        {"value": "m-1"},
        {"value": "m-1", "$ref": None, "displayName": "Boss"},
        [{"$ref": None, "value": "m-1"}],
    ],
)
def test_manager_in_any_entra_shape_is_stored_as_value(manager: Any) -> None:
    doc = parse_user({"userName": "bob", ENT: {"manager": manager}})
    assert doc[ENT] == {"manager": {"value": "m-1"}}
    assert doc["schemas"] == [CORE, ENT]


def test_manager_that_is_not_an_id_is_rejected() -> None:
    err = error_of(parse_user, {"userName": "bob", ENT: {"manager": 7}})
    assert err.scim_type == "invalidValue"
    assert "manager" in err.detail
    err = error_of(parse_user, {"userName": "bob", ENT: {"manager": ["a", "b"]}})
    assert "manager" in err.detail


def test_email_values_are_plain_strings() -> None:
    # Entra maps proxyAddresses ("smtp:…") to emails[type eq "other"].value.
    doc = parse_user(
        {"userName": "bob", "emails": [{"type": "other", "value": "smtp:bob@contoso.com"}]}
    )
    assert doc["emails"] == [{"type": "other", "value": "smtp:bob@contoso.com"}]


@pytest.mark.parametrize("body", [{}, {"displayName": "x"}, {"userName": None}])
def test_user_name_is_required(body: dict[str, Any]) -> None:
    err = error_of(parse_user, body)
    assert err.scim_type == "invalidValue"
    assert err.detail == "userName is required"


@pytest.mark.parametrize("user_name", ["", "   ", 5, ["bob"]])
def test_user_name_must_be_a_non_empty_string(user_name: Any) -> None:
    err = error_of(parse_user, {"userName": user_name})
    assert err.scim_type == "invalidValue"
    assert "userName" in err.detail


@pytest.mark.parametrize(
    ("extra", "scim_type", "culprit"),
    [
        ({"active": "maybe"}, "invalidValue", "'active'"),
        ({"emails": "x"}, "invalidValue", "'emails'"),
        ({"emails": [{"value": 5}]}, "invalidValue", "'emails[0].value'"),
        ({"name": "Bob"}, "invalidValue", "'name'"),
        ({ENT: {"department": 5}}, "invalidValue", f"'{ENT}:department'"),
        ({"nosuch": 1}, "invalidSyntax", "'nosuch' is not an attribute of User"),
        ({"name": {"nosuch": 1}}, "invalidSyntax", "'name.nosuch' is not an attribute of User"),
        ({ENT: {"nosuch": 1}}, "invalidSyntax", f"'{ENT}:nosuch'"),
        ({"UserName": "other"}, "invalidSyntax", "'UserName' is given twice"),
        (
            {
                "emails": [
                    {"value": "a@x.org", "primary": True},
                    {"value": "b@x.org", "primary": "true"},
                ]
            },
            "invalidValue",
            "primary",
        ),
    ],
)
def test_invalid_user_bodies_name_the_culprit(
    extra: dict[str, Any], scim_type: str, culprit: str
) -> None:
    err = error_of(parse_user, {"userName": "bob", **extra})
    assert err.scim_type == scim_type
    assert culprit in err.detail


@pytest.mark.parametrize("body", [None, [], "userName=bob", 5])
def test_body_must_be_an_object(body: Any) -> None:
    assert error_of(parse_user, body).scim_type == "invalidSyntax"
    assert error_of(parse_group, body).scim_type == "invalidSyntax"


def test_entra_group_create_with_microsoft_schema_uri() -> None:
    body = {
        "schemas": [GROUP, MS_GROUP],
        "externalId": "8aa1",
        "displayName": "Sales",
        "meta": {"resourceType": "Group"},
    }
    assert parse_group(body) == (
        {"schemas": [GROUP, MS_GROUP], "externalId": "8aa1", "displayName": "Sales"},
        None,
    )


def test_group_members_are_returned_apart() -> None:
    doc, members = parse_group(
        {
            "displayName": "Sales",
            "id": "ignored",
            "members": [
                {"value": "u1", "$ref": None, "display": "Bob"},
                {"value": "g1", "type": "group"},
                {"value": "u1"},
            ],
        }
    )
    assert doc == {"schemas": [GROUP], "displayName": "Sales"}
    assert members == [MemberRef("u1", display="Bob"), MemberRef("g1", "Group")]


def test_group_members_null_or_empty() -> None:
    assert parse_group({"displayName": "S", "members": None})[1] is None
    assert parse_group({"displayName": "S", "members": []})[1] == []


@pytest.mark.parametrize(
    ("members", "culprit"),
    [
        ("u1", "members must be a list"),
        (["u1"], "members[0]"),
        ([{"value": "u1"}, {"display": "x"}], "members[1].value"),
        ([{"value": ""}], "members[0].value"),
        ([{"value": "u1", "type": "Robot"}], "members[0].type"),
    ],
)
def test_invalid_members_name_the_culprit(members: Any, culprit: str) -> None:
    err = error_of(parse_group, {"displayName": "S", "members": members})
    assert err.scim_type == "invalidValue"
    assert culprit in err.detail


@pytest.mark.parametrize("body", [{}, {"displayName": ""}, {"displayName": 3}])
def test_group_display_name_is_required(body: dict[str, Any]) -> None:
    err = error_of(parse_group, body)
    assert err.scim_type == "invalidValue"
    assert "displayName" in err.detail


def test_unknown_group_attribute_is_rejected() -> None:
    err = error_of(parse_group, {"displayName": "S", "owner": "u1"})
    assert err.scim_type == "invalidSyntax"
    assert "'owner' is not an attribute of Group" in err.detail


def test_user_name_key_is_case_and_normalisation_insensitive() -> None:
    assert user_name_key("Bob@Contoso.COM") == user_name_key("bob@contoso.com")
    assert user_name_key("Jos\u00e9") == user_name_key("JOSE\u0301")  # composed vs decomposed
    assert user_name_key("STRASSE") == user_name_key("straße")
    assert user_name_key("bob") != user_name_key("bob2")
    key = user_name_key("Ünïcode")
    assert user_name_key(key) == key


# -- a member's fields, in any case -----------------------------------------------------

_MEMBER_KEYS = ["value", "Value", "VALUE", "type", "Type", "display", "DISPLAY", "$ref", "$Ref"]


def _fields_in_any_case(entry: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The rule, written plainly: the first key spelling each name in any case."""

    def get(name: str) -> Any:
        return next((v for k, v in entry.items() if k.casefold() == name), None)

    return get("value"), get("type"), get("display")


@given(
    st.dictionaries(
        st.sampled_from([*_MEMBER_KEYS, "primary", "nosuch"]),
        st.one_of(st.none(), st.text(max_size=3), st.integers()),
        max_size=5,
    )
)
def test_a_members_fields_are_read_in_any_case_the_fast_way_too(entry: dict[str, Any]) -> None:
    assert member_fields(entry) == _fields_in_any_case(entry)


def test_entras_members_and_oddly_spelled_ones_read_alike() -> None:
    entra = [{"$ref": None, "value": "u-1"}, {"value": "u-2", "type": "User", "display": "B"}]
    odd = [{"$Ref": None, "Value": "u-1"}, {"VALUE": "u-2", "Type": "User", "DISPLAY": "B"}]
    assert member_refs(entra, "members") == member_refs(odd, "members")
    assert member_refs(entra, "members") == [
        MemberRef("u-1", None, None),
        MemberRef("u-2", "User", "B"),
    ]


@given(st.lists(st.sampled_from(["op", "Op", "OP", "path", "PATH", "value", "x"]), unique=True))
def test_find_key_gives_the_first_key_spelling_the_name_in_any_case(keys: list[str]) -> None:
    mapping = dict.fromkeys(keys, 0)
    for name in ("op", "Op", "path", "value", "Value", "missing"):
        expected = next((k for k in keys if k.casefold() == name.casefold()), None)
        assert find_key(mapping, name) == expected
