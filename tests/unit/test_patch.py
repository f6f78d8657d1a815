"""PATCH in both Entra dialects (scimgate.scim.patch)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scimgate.scim.errors import ScimError
from scimgate.scim.patch import MemberAction, apply_user_patch, plan_group_patch
from scimgate.scim.payloads import MemberRef, parse_group, parse_user

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CUSTOM = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def user(**extra: Any) -> dict[str, Any]:
    return parse_user(
        {
            "userName": "bob@contoso.com",
            "active": True,
            "emails": [{"type": "work", "value": "bob@contoso.com", "primary": True}],
            **extra,
        }
    )


def patch(doc: dict[str, Any], *ops: dict[str, Any]) -> dict[str, Any]:
    return apply_user_patch(doc, {"schemas": [PATCH], "Operations": list(ops)})


def error_of(call: Any, *args: Any) -> ScimError:
    with pytest.raises(ScimError) as info:
        call(*args)
    assert info.value.status == 400
    return info.value


# --- users: the shapes in Entra's two dialects ----------------------------------------------


def test_legacy_update_from_entra() -> None:
    doc = patch(
        user(),
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "new@contoso.com"},
        {"op": "Replace", "path": "name.familyName", "value": "Updated"},
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100"},
        {"op": "Replace", "path": f"{ENT}:employeeNumber", "value": "E-9"},
    )
    assert doc == {
        "schemas": [CORE, ENT],
        "userName": "bob@contoso.com",
        "active": True,
        "name": {"familyName": "Updated"},
        "emails": [{"type": "work", "value": "new@contoso.com", "primary": True}],
        "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
        ENT: {"employeeNumber": "E-9"},
    }


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("Replace", "False", False),
        ("replace", False, False),
        ("REPLACE", "True", True),
        ("add", "false", False),
    ],
)
def test_disable_and_enable_in_both_dialects(op: str, value: Any, expected: bool) -> None:
    start = user(active=not expected)
    assert patch(start, {"op": op, "path": "active", "value": value})["active"] is expected


def test_compliant_pathless_replace_with_attribute_paths_as_keys() -> None:
    doc = patch(
        user(name={"givenName": "Bob", "familyName": "Jones"}),
        {
            "op": "replace",
            "value": {
                "displayName": "Robert Jones",
                "name.givenName": "Robert",
                f"{ENT}:employeeNumber": "E-2",
                ENT: {"department": "Sales"},
                "active": False,
            },
        },
    )
    assert doc["displayName"] == "Robert Jones"
    assert doc["name"] == {"givenName": "Robert", "familyName": "Jones"}
    assert doc[ENT] == {"employeeNumber": "E-2", "department": "Sales"}
    assert doc["active"] is False
    assert doc["schemas"] == [CORE, ENT]


def test_filtered_path_ops_build_one_address() -> None:
    doc = patch(
        user(),
        {"op": "Add", "path": 'addresses[type eq "work"].streetAddress', "value": "1 Main St"},
        {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Redmond"},
        {"op": "Replace", "path": 'addresses[type eq "work"].country', "value": "US"},
        {"op": "Add", "path": 'addresses[type eq "other"].formatted', "value": "Bldg 7"},
    )
    assert doc["addresses"] == [
        {"type": "work", "streetAddress": "1 Main St", "locality": "Redmond", "country": "US"},
        {"type": "other", "formatted": "Bldg 7"},
    ]


def test_filtered_path_updates_the_existing_element() -> None:
    start = user(
        emails=[{"type": "work", "value": "a@x.org"}, {"type": "other", "value": "smtp:b@x.org"}]
    )
    doc = patch(
        start, {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "c@x.org"}
    )
    assert doc["emails"] == [
        {"type": "work", "value": "c@x.org"},
        {"type": "other", "value": "smtp:b@x.org"},
    ]


def test_remove_filtered_element_keeps_the_others() -> None:
    start = user(
        emails=[{"type": "work", "value": "a@x.org"}, {"type": "home", "value": "b@x.org"}]
    )
    doc = patch(start, {"op": "remove", "path": 'emails[type eq "work"]'})
    assert doc["emails"] == [{"type": "home", "value": "b@x.org"}]


@pytest.mark.parametrize("path", ["manager", f"{ENT}:manager"])
@pytest.mark.parametrize("value", ["m-1", {"value": "m-1"}, [{"$ref": None, "value": "m-1"}]])
@pytest.mark.parametrize("op", ["Add", "replace"])
def test_manager_in_every_shape_and_path(op: str, path: str, value: Any) -> None:
    doc = patch(user(), {"op": op, "path": path, "value": value})
    assert doc[ENT] == {"manager": {"value": "m-1"}}
    assert ENT in doc["schemas"]


def test_manager_in_a_pathless_value() -> None:
    assert patch(user(), {"op": "add", "value": {"manager": "m-2"}})[ENT] == {
        "manager": {"value": "m-2"}
    }
    doc = patch(
        user(), {"op": "replace", "value": {ENT: {"manager": [{"value": "m-3"}], "division": "D"}}}
    )
    assert doc[ENT] == {"manager": {"value": "m-3"}, "division": "D"}


@pytest.mark.parametrize(
    "op",
    [
        {"op": "Remove", "path": "manager"},
        {"op": "remove", "path": f"{ENT}:manager"},
        {"op": "Remove", "path": "manager", "value": [{"value": "m-1"}]},
        {"op": "replace", "path": "manager", "value": []},
    ],
)
def test_manager_removal(op: dict[str, Any]) -> None:
    start = patch(user(), {"op": "add", "path": "manager", "value": "m-1"})
    doc = patch(start, op)
    assert ENT not in doc
    assert doc["schemas"] == [CORE]


def test_custom_extension_attributes() -> None:
    doc = patch(user(), {"op": "add", "path": f"{CUSTOM}:costCode", "value": "42"})
    assert doc[CUSTOM] == {"costCode": "42"}
    assert doc["schemas"] == [CORE, CUSTOM]

    doc = patch(
        doc, {"op": "replace", "value": {f"{CUSTOM}:costCode": "43", f"{CUSTOM}:site": "Paris"}}
    )
    assert doc[CUSTOM] == {"costCode": "43", "site": "Paris"}

    doc = patch(doc, {"op": "Remove", "path": f"{CUSTOM}:costCode"})
    assert doc[CUSTOM] == {"site": "Paris"}

    doc = patch(doc, {"op": "remove", "path": f"{CUSTOM}:site"})
    assert CUSTOM not in doc
    assert doc["schemas"] == [CORE]


def test_custom_extension_as_a_whole() -> None:
    doc = patch(user(), {"op": "add", "value": {CUSTOM: {"costCode": "1", "tags": ["a"]}}})
    assert doc[CUSTOM] == {"costCode": "1", "tags": ["a"]}
    doc = patch(doc, {"op": "add", "path": CUSTOM, "value": {"tags": ["b"]}})
    assert doc[CUSTOM] == {"costCode": "1", "tags": ["a", "b"]}
    doc = patch(doc, {"op": "remove", "path": CUSTOM})
    assert CUSTOM not in doc
    assert doc["schemas"] == [CORE]


def test_rename_user_name() -> None:
    assert patch(user(), {"op": "Replace", "path": "userName", "value": "alice@contoso.com"})[
        "userName"
    ] == ("alice@contoso.com")


def test_password_is_never_stored() -> None:
    doc = patch(user(), {"op": "replace", "path": "password", "value": "hunter2"})
    assert "password" not in doc
    assert doc == user()


def test_input_document_is_not_mutated() -> None:
    start = user(**{CUSTOM: {"costCode": "1"}})
    before = copy.deepcopy(start)
    patch(
        start,
        {"op": "replace", "path": "displayName", "value": "X"},
        {"op": "replace", "path": f"{CUSTOM}:costCode", "value": "2"},
        {"op": "add", "path": 'emails[type eq "home"].value', "value": "h@x.org"},
    )
    assert start == before


def test_patch_body_without_schemas_is_accepted() -> None:
    doc = apply_user_patch(
        user(), {"Operations": [{"op": "replace", "path": "displayName", "value": "B"}]}
    )
    assert doc["displayName"] == "B"


# --- users: errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "scim_type", "culprits"),
    [
        ([], "invalidSyntax", ["JSON object"]),
        ({}, "invalidSyntax", ["'Operations'"]),
        ({"Operations": {"op": "add"}}, "invalidSyntax", ["'Operations'"]),
        ({"Operations": []}, "invalidSyntax", ["'Operations'"]),
        (
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "Operations": [{}]},
            "invalidSyntax",
            [PATCH],
        ),
        ({"Operations": ["replace"]}, "invalidSyntax", ["Operations[0]"]),
        (
            {"Operations": [{"op": "merge", "path": "displayName", "value": "x"}]},
            "invalidValue",
            ["Operations[0]", "'merge'"],
        ),
        (
            {"Operations": [{"op": "add", "path": "displayName"}]},
            "invalidValue",
            ["Operations[0]", "value"],
        ),
        (
            {"Operations": [{"op": "add", "path": "displayName", "value": None}]},
            "invalidValue",
            ["Operations[0]"],
        ),
        ({"Operations": [{"op": "remove"}]}, "noTarget", ["Operations[0]", "path"]),
        (
            {"Operations": [{"op": "add", "value": "x"}]},
            "invalidValue",
            ["Operations[0]", "object"],
        ),
        (
            {"Operations": [{"op": "add", "path": 5, "value": "x"}]},
            "invalidPath",
            ["Operations[0]", "path"],
        ),
    ],
)
def test_malformed_patch_bodies(body: Any, scim_type: str, culprits: list[str]) -> None:
    err = error_of(apply_user_patch, user(), body)
    assert err.scim_type == scim_type
    for culprit in culprits:
        assert culprit in err.detail


@pytest.mark.parametrize(
    ("op", "scim_type", "culprit"),
    [
        (
            {"op": "replace", "path": "nosuch", "value": "x"},
            "invalidPath",
            "'nosuch' is not an attribute of User",
        ),
        ({"op": "replace", "path": "name.nosuch", "value": "x"}, "invalidPath", "'name.nosuch'"),
        (
            {"op": "replace", "path": f"{ENT}:nosuch", "value": "x"},
            "invalidPath",
            f"'{ENT}:nosuch'",
        ),
        (
            {"op": "replace", "path": "emails[type eq work].value", "value": "x"},
            "invalidPath",
            "emails[type eq work]",
        ),
        ({"op": "replace", "value": {"nosuch": "x"}}, "invalidValue", "'nosuch'"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue", "'maybe'"),
        ({"op": "replace", "path": "emails", "value": [{"value": 5}]}, "invalidValue", "value"),
        ({"op": "replace", "path": "id", "value": "other"}, "mutability", "'id'"),
        ({"op": "replace", "value": {"id": "other"}}, "mutability", "'id'"),
        (
            {"op": "replace", "path": "meta.lastModified", "value": "2020-01-01T00:00:00Z"},
            "mutability",
            "meta",
        ),
        ({"op": "add", "path": "groups", "value": [{"value": "g1"}]}, "mutability", "'groups'"),
        ({"op": "remove", "path": "userName"}, "mutability", "userName"),
        ({"op": "replace", "path": "userName", "value": None}, "mutability", "userName"),
        ({"op": "replace", "path": "userName", "value": "  "}, "invalidValue", "userName"),
        ({"op": "add", "path": "manager", "value": ["m-1", "m-2"]}, "invalidValue", "manager"),
        ({"op": "add", "path": "manager", "value": {"id": 5}}, "invalidValue", "manager"),
        ({"op": "add", "path": f"{CUSTOM}[a eq 1]", "value": "x"}, "invalidPath", "filters"),
        ({"op": "add", "path": "urn:nosuch", "value": "x"}, "invalidPath", "'urn:nosuch'"),
        ({"op": "add", "path": CUSTOM, "value": "x"}, "invalidValue", CUSTOM),
    ],
)
def test_bad_operations_name_the_operation_and_attribute(
    op: dict[str, Any], scim_type: str, culprit: str
) -> None:
    ok = {"op": "replace", "path": "displayName", "value": "fine"}
    err = error_of(patch, user(), ok, op)
    assert err.scim_type == scim_type
    assert err.detail.startswith("Operations[1]")
    assert culprit in err.detail


# --- groups -----------------------------------------------------------------------------------


def group() -> dict[str, Any]:
    doc, members = parse_group(
        {"schemas": [GROUP, MS_GROUP], "externalId": "8aa1", "displayName": "Sales"}
    )
    assert members is None
    return doc


def plan(*ops: dict[str, Any]) -> tuple[dict[str, Any], tuple[MemberAction, ...]]:
    result = plan_group_patch(group(), {"schemas": [PATCH], "Operations": list(ops)})
    return result.doc, result.member_actions


def refs(*ids: str) -> tuple[MemberRef, ...]:
    return tuple(MemberRef(i) for i in ids)


def test_group_rename_keeps_microsoft_schema() -> None:
    doc, actions = plan({"op": "Replace", "path": "displayName", "value": "Sales EMEA"})
    assert doc == {"schemas": [GROUP, MS_GROUP], "externalId": "8aa1", "displayName": "Sales EMEA"}
    assert actions == ()


def test_group_pathless_replace() -> None:
    doc, actions = plan({"op": "replace", "value": {"displayName": "S2", "externalId": "e2"}})
    assert (doc["displayName"], doc["externalId"]) == ("S2", "e2")
    assert actions == ()


def test_add_members() -> None:
    doc, actions = plan(
        {
            "op": "Add",
            "path": "members",
            "value": [{"$ref": None, "value": "u1"}, {"value": "u2", "display": "B"}, "u3"],
        }
    )
    assert doc == group()
    # The display a client gives is kept (and echoed back by the store).
    expected = (MemberRef("u1"), MemberRef("u2", display="B"), MemberRef("u3"))
    assert actions == (MemberAction("add", expected),)


def test_legacy_remove_with_value_removes_only_those_members() -> None:
    _, actions = plan(
        {"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}
    )
    assert actions == (MemberAction("remove", refs("u1", "u2")),)


def test_legacy_remove_with_empty_value_never_clears() -> None:
    assert plan({"op": "Remove", "path": "members", "value": []})[1] == ()


def test_compliant_remove_by_filter() -> None:
    assert plan({"op": "remove", "path": 'members[value eq "u1"]'})[1] == (
        MemberAction("remove", refs("u1")),
    )
    _, actions = plan({"op": "remove", "path": 'members[value eq "u1" or value eq "u2"]'})
    assert actions == (MemberAction("remove", refs("u1", "u2")),)


def test_remove_members_without_value_clears() -> None:
    assert plan({"op": "remove", "path": "members"})[1] == (MemberAction("clear"),)


def test_replace_members() -> None:
    _, actions = plan({"op": "replace", "path": "members", "value": [{"value": "u9"}]})
    assert actions == (MemberAction("replace", refs("u9")),)
    assert plan({"op": "replace", "path": "members", "value": []})[1] == (MemberAction("clear"),)


def test_pathless_members_with_other_attributes() -> None:
    doc, actions = plan(
        {"op": "add", "value": {"members": [{"value": "u1"}], "displayName": "New"}}
    )
    assert doc["displayName"] == "New"
    assert actions == (MemberAction("add", refs("u1")),)
    _, actions = plan({"op": "Replace", "value": {"members": [{"value": "u2"}]}})
    assert actions == (MemberAction("replace", refs("u2")),)


def test_add_of_no_members_is_a_no_op() -> None:
    assert plan({"op": "Add", "path": "members", "value": []}) == (group(), ())


def test_member_actions_keep_request_order() -> None:
    doc, actions = plan(
        {"op": "Add", "path": "Members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": f'{GROUP}:members[value eq "u1"]'},
        {"op": "replace", "path": "displayName", "value": "Z"},
        {"op": "add", "path": "members", "value": [{"value": "u2", "type": "User"}]},
    )
    assert doc["displayName"] == "Z"
    assert actions == (
        MemberAction("add", refs("u1")),
        MemberAction("remove", refs("u1")),
        MemberAction("add", (MemberRef("u2", "User"),)),
    )


@pytest.mark.parametrize(
    ("op", "scim_type", "culprit"),
    [
        ({"op": "remove", "path": 'members[display eq "Bob"]'}, "invalidFilter", "display eq"),
        (
            {"op": "remove", "path": 'members[value eq "u1" and type eq "User"]'},
            "invalidFilter",
            "and",
        ),
        (
            {"op": "add", "path": 'members[value eq "u1"]', "value": [{"value": "u1"}]},
            "invalidPath",
            "remove",
        ),
        ({"op": "replace", "path": "members.value", "value": "u1"}, "invalidPath", "members"),
        (
            {"op": "add", "path": "members", "value": [{"display": "Bob"}]},
            "invalidValue",
            "members[0].value",
        ),
        (
            {"op": "add", "path": "members", "value": [{"value": 5}]},
            "invalidValue",
            "members[0].value",
        ),
        (
            {"op": "add", "path": "members", "value": [{"value": "u1", "type": "Robot"}]},
            "invalidValue",
            "type",
        ),
        (
            {"op": "replace", "path": "owner", "value": "u1"},
            "invalidPath",
            "'owner' is not an attribute of Group",
        ),
        ({"op": "replace", "value": {"owner": "u1"}}, "invalidValue", "'owner'"),
        ({"op": "remove", "path": "displayName"}, "mutability", "required"),
        ({"op": "replace", "path": "displayName", "value": ""}, "invalidValue", "displayName"),
        ({"op": "replace", "path": "id", "value": "x"}, "mutability", "'id'"),
    ],
)
def test_bad_group_operations(op: dict[str, Any], scim_type: str, culprit: str) -> None:
    ok = {"op": "add", "path": "members", "value": [{"value": "u1"}]}
    err = error_of(plan, ok, op)
    assert err.scim_type == scim_type
    assert err.detail.startswith("Operations[1]")
    assert culprit in err.detail


def test_pathless_value_with_value_path_keys_updates_those_elements() -> None:
    """Regression: a compliant-dialect path-less replace whose keys include a value path
    (emails[type eq "work"].value) was refused as 'not declared by the resource schema'."""
    from scimgate.scim.payloads import parse_user as _parse

    doc = _parse(
        {
            "userName": "a@contoso.com",
            "emails": [{"type": "work", "value": "a@contoso.com", "primary": True}],
        }
    )
    new = apply_user_patch(
        doc,
        {
            "Operations": [
                {
                    "op": "replace",
                    "value": {
                        "displayName": "A",
                        'emails[type eq "work"].value': "b@contoso.com",
                        'phoneNumbers[type eq "mobile"].value': "+1 555 0100",
                    },
                }
            ]
        },
    )
    assert new["displayName"] == "A"
    assert new["emails"] == [{"value": "b@contoso.com", "type": "work", "primary": True}]
    assert new["phoneNumbers"] == [{"value": "+1 555 0100", "type": "mobile"}]


def test_pathless_value_may_repeat_the_resources_own_id() -> None:
    """Regression: Entra's compliant dialect renames a group with
    {"op": "replace", "value": {"id": <group id>, "displayName": …}}; that was a 400."""
    plan_ = plan_group_patch(
        group(),
        {"Operations": [{"op": "replace", "value": {"id": "g-1", "displayName": "New"}}]},
        resource_id="g-1",
    )
    assert plan_.doc["displayName"] == "New"
    with pytest.raises(ScimError) as err:
        plan_group_patch(
            group(),
            {"Operations": [{"op": "replace", "value": {"id": "g-2", "displayName": "New"}}]},
            resource_id="g-1",
        )
    assert (err.value.status, err.value.scim_type) == (400, "mutability")


def test_patch_type_errors_name_the_scim_attribute() -> None:
    """Regression: PATCH errors named pydantic fields ('given_name') instead of SCIM
    attributes ('givenName'), which is what an IdP admin sees in the provisioning log."""
    doc = parse_user({"userName": "a@contoso.com"})
    with pytest.raises(ScimError) as err:
        apply_user_patch(
            doc, {"Operations": [{"op": "replace", "path": "name.givenName", "value": 5}]}
        )
    assert "givenName" in err.value.detail and "given_name" not in err.value.detail
