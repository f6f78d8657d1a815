"""The PATCH fast paths agree with the general (scim2-models) path they stand in for.

``apply_user_patch`` applies the common user operations straight to the JSON document and
``plan_group_patch`` plans member-only PATCHes without the model; ``_general_user_patch`` and
``_general_group_patch`` are the paths they replace. A corpus of what Entra ID (both
dialects) and Okta send must take the fast path and give the same result; random operation
lists over random documents must give the same result or the same error either way.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scimgate.scim.errors import ScimError
from scimgate.scim.patch import (
    _fast_user_patch,
    _general_group_patch,
    _general_user_patch,
    _member_plan,
    _operations,
    apply_user_patch,
    plan_group_patch,
)
from scimgate.scim.payloads import parse_group, parse_user
from tests.unit.test_patch import CORE, CUSTOM, ENT, GROUP, MS_GROUP, PATCH
from tests.unit.test_payloads import ENTRA_CREATE

USER_ID = "2819c223-7f76-453a-919d-413861904646"
GROUP_ID = "e9e30dba-f08f-4109-8486-d5c6a331660a"


def outcome(call: Any) -> Any:
    """What a call gives: the result (with its key order), or the error's status, type and
    detail."""
    try:
        result = call()
    except ScimError as exc:
        return ("error", exc.status, exc.scim_type, exc.detail)
    return ("ok", json.dumps(result, default=repr))


def body(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(ops)}


# --- users: what Entra and Okta send ---------------------------------------------------------

ENTRA_USER = parse_user(
    {
        **ENTRA_CREATE,
        "title": "Engineer",
        "phoneNumbers": [{"type": "work", "value": "+1 425 555 0100"}],
        "addresses": [{"type": "work", "locality": "Redmond", "country": "US"}],
        ENT: {**ENTRA_CREATE[ENT], "manager": {"value": "m-0"}},
    }
)
BARE_USER = parse_user({"userName": "bare@contoso.com"})
CUSTOM_USER = parse_user(
    {"schemas": [CORE, CUSTOM], "userName": "c@contoso.com", CUSTOM: {"costCode": "42"}}
)

LEGACY = [
    # bench/loadgen.py attribute_patch, legacy
    [
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "ada.l@contoso.com"},
        {"op": "Replace", "path": "name.familyName", "value": "Lovelace-King"},
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 206 555 0101"},
        {"op": "Replace", "path": "title", "value": "Senior Engineer"},
        {"op": "Replace", "path": f"{ENT}:employeeNumber", "value": "E-9"},
    ],
    [{"op": "Replace", "path": "active", "value": "False"}],
    [{"op": "Replace", "path": "active", "value": "True"}],
    [{"op": "Add", "path": "manager", "value": [{"$ref": None, "value": "m-1"}]}],
    [{"op": "Remove", "path": "manager", "value": [{"$ref": None, "value": "m-0"}]}],
    [{"op": "Replace", "path": "userName", "value": "renamed@contoso.com"}],
    [
        {"op": "Add", "path": 'addresses[type eq "work"].streetAddress', "value": "1 Main St"},
        {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Seattle"},
        {"op": "Add", "path": 'addresses[type eq "work"].region', "value": "WA"},
        {"op": "Add", "path": 'addresses[type eq "work"].postalCode', "value": "98101"},
        {"op": "Replace", "path": 'addresses[type eq "work"].country', "value": "US"},
        {"op": "Add", "path": 'addresses[type eq "other"].formatted', "value": "Bldg 7"},
    ],
    [
        {"op": "Add", "path": 'phoneNumbers[type eq "work"].value', "value": "+1 425 555 0199"},
        {"op": "Add", "path": 'phoneNumbers[type eq "fax"].value', "value": "+1 425 555 0198"},
        {"op": "Add", "path": 'emails[type eq "other"].value', "value": "smtp:ada@contoso.com"},
    ],
    [
        {"op": "Replace", "path": f"{ENT}:department", "value": "Marketing"},
        {"op": "Add", "path": f"{ENT}:costCenter", "value": "CC-7"},
        {"op": "Add", "path": f"{ENT}:division", "value": "EMEA"},
        {"op": "Add", "path": f"{ENT}:organization", "value": "Contoso"},
    ],
    [
        {"op": "Replace", "path": "displayName", "value": "Ada King"},
        {"op": "Replace", "path": "name.givenName", "value": "Augusta Ada"},
        {"op": "Replace", "path": "name.formatted", "value": "Augusta Ada King"},
        {"op": "Replace", "path": "externalId", "value": "ada.king"},
    ],
    [{"op": "Remove", "path": "title"}, {"op": "Remove", "path": f"{ENT}:department"}],
    [{"op": "Remove", "path": 'phoneNumbers[type eq "work"]'}],
    [{"op": "Replace", "path": 'emails[type eq "Work"].value', "value": "case@contoso.com"}],
    [{"op": "Replace", "path": "title", "value": ""}],
    [{"op": "Add", "path": "nickName", "value": "Bobby"}],
    [{"op": "replace", "path": "NAME.GIVENNAME", "value": "Casey"}],
]

COMPLIANT = [
    # bench/loadgen.py attribute_patch, compliant
    [
        {
            "op": "replace",
            "value": {
                "name.familyName": "Lovelace-King",
                "title": "Senior Engineer",
                f"{ENT}:employeeNumber": "E-9",
            },
        },
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "ada.l@contoso.com"},
        {"op": "add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 206 555 0101"},
    ],
    [{"op": "replace", "path": "active", "value": False}],
    [{"op": "replace", "path": "active", "value": True}],
    [{"op": "add", "path": f"{ENT}:manager", "value": "m-2"}],
    [{"op": "replace", "path": f"{ENT}:manager", "value": {"value": "m-3"}}],
    [{"op": "remove", "path": f"{ENT}:manager"}],
    [
        {
            "op": "replace",
            "value": {
                "displayName": "Ada King",
                "name.givenName": "Augusta Ada",
                f"{ENT}:department": "Research",
                "active": False,
                'emails[type eq "work"].value': "ada.king@contoso.com",
                'phoneNumbers[type eq "mobile"].value': "+1 206 555 0102",
            },
        }
    ],
    [{"op": "add", "value": {"nickName": "Ada", "manager": "m-4", "title": None}}],
    [{"op": "remove", "path": 'emails[type eq "work"].value'}],
    [{"op": "remove", "path": "addresses"}, {"op": "remove", "path": "name.givenName"}],
    [{"op": "replace", "path": "displayName", "value": None}],
    # An empty manager: add leaves it alone, replace unassigns it.
    [{"op": "add", "path": "manager", "value": ""}],
    [{"op": "add", "value": {"manager": []}}],
    [{"op": "replace", "path": f"{ENT}:manager", "value": {"value": None}}],
    [{"op": "replace", "value": {"manager": ""}}],
]

OKTA = [
    [{"op": "replace", "value": {"active": False}}],
    [{"op": "replace", "value": {"id": USER_ID, "active": True}}],
    [
        {
            "op": "replace",
            "value": {
                "name.givenName": "Ada",
                "name.familyName": "King",
                "displayName": "Ada King",
                'emails[type eq "work"].value': "ada@contoso.com",
            },
        }
    ],
    [{"op": "replace", "path": "name.familyName", "value": "King"}],
]


@pytest.mark.parametrize(
    "doc", [ENTRA_USER, BARE_USER, CUSTOM_USER], ids=["entra", "bare", "custom"]
)
@pytest.mark.parametrize("ops", LEGACY + COMPLIANT + OKTA)
def test_what_idps_send_takes_the_fast_path_and_agrees(
    ops: list[dict[str, Any]], doc: dict[str, Any]
) -> None:
    patch = body(*ops)
    assert _fast_user_patch(doc, _operations(patch), USER_ID) is not None, "not the fast path"
    assert outcome(lambda: apply_user_patch(doc, patch, USER_ID)) == outcome(
        lambda: _general_user_patch(doc, patch, USER_ID)
    )


def test_fast_path_results_worth_spelling_out() -> None:
    """The general path's behaviour the fast path reproduces, written down once."""
    doc = apply_user_patch(
        ENTRA_USER,
        body(
            {"op": "Add", "path": 'phoneNumbers[type eq "Mobile"].value', "value": "+1 555"},
            {"op": "Replace", "path": f"{ENT.upper()}:EMPLOYEENUMBER", "value": "E-2"},
            {"op": "Remove", "path": "manager"},
        ),
    )
    # A created element takes the filter's type (made canonical), after the others; the
    # enterprise extension keeps what it holds; filters ignore case.
    assert doc["phoneNumbers"] == [
        {"value": "+1 425 555 0100", "type": "work"},
        {"value": "+1 555", "type": "mobile"},
    ]
    assert doc[ENT] == {"employeeNumber": "E-2", "department": "Sales"}
    # An enterprise attribute on a user without the extension brings its URN to schemas,
    # and the last one removed takes it away.
    doc = apply_user_patch(BARE_USER, body({"op": "add", "path": "manager", "value": "m"}))
    assert doc["schemas"] == [CORE, ENT]
    doc = apply_user_patch(doc, body({"op": "remove", "path": f"{ENT}:manager"}))
    assert doc["schemas"] == [CORE]
    # The primary flag of an element stays with it.
    doc = apply_user_patch(
        ENTRA_USER, body({"op": "replace", "path": 'emails[type eq "work"].value', "value": "x"})
    )
    assert doc["emails"] == [{"value": "x", "type": "work", "primary": True}]


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "title", "value": 5}],
        [{"op": "replace", "path": "active", "value": "maybe"}],
        [{"op": "replace", "path": "userName", "value": " "}],
        [{"op": "remove", "path": "userName"}],
        [{"op": "remove", "path": "title", "value": "Engineer"}],
        [{"op": "replace", "path": "profileUrl", "value": "https://contoso.com/ada"}],
        [{"op": "replace", "path": "emails", "value": [{"value": "a@x.org"}]}],
        [{"op": "add", "path": 'emails[type eq "work"].primary', "value": True}],
        [{"op": "replace", "path": 'emails[type eq "home"].value', "value": None}],
        [{"op": "add", "path": 'emails[value eq "a@x.org"].type', "value": "home"}],
        [{"op": "add", "path": "manager", "value": ["m-1", "m-2"]}],
        [{"op": "add", "path": f"{CUSTOM}:costCode", "value": "1"}],
        [{"op": "replace", "value": {ENT: {"department": "D"}}}],
        [{"op": "replace", "value": {"id": "someone-else", "title": "T"}}],
        [{"op": "replace", "value": {"name": {"givenName": "A"}}}],
        [{"op": "replace", "path": "nosuch", "value": "x"}],
    ],
)
def test_anything_else_takes_the_general_path(ops: list[dict[str, Any]]) -> None:
    patch = body(*ops)
    assert _fast_user_patch(ENTRA_USER, _operations(patch), USER_ID) is None
    assert outcome(lambda: apply_user_patch(ENTRA_USER, patch, USER_ID)) == outcome(
        lambda: _general_user_patch(ENTRA_USER, patch, USER_ID)
    )


def test_envelope_errors_come_first_on_both_paths() -> None:
    """The fast path reads the body through the same envelope checks."""
    wrong = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "Operations": [{"op": "replace", "path": "title", "value": "T"}],
    }
    with pytest.raises(ScimError) as err:
        apply_user_patch(ENTRA_USER, wrong)
    assert err.value.scim_type == "invalidSyntax"


# --- users: random operations over random documents -------------------------------------------


def cased(text: str) -> st.SearchStrategy[str]:
    """The text, as given or in a random mix of cases."""
    return st.one_of(
        st.just(text),
        st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
            lambda flips: "".join(
                c.upper() if f else c.lower() for c, f in zip(text, flips, strict=True)
            )
        ),
    )


TYPES = ["work", "home", "other", "mobile", "fax", "Work", "WORK", "Weird", "weird"]
ENTRY_SUBS = {
    "emails": ["value", "display", "primary", "type"],
    "phoneNumbers": ["value", "display"],
    "addresses": ["formatted", "streetAddress", "locality", "region", "postalCode", "country"],
    "ims": ["value"],
    "roles": ["value"],
}
ENTERPRISE_ATTRIBUTES = ["employeeNumber", "department", "costCenter", "division"]
ENTERPRISE_ATTRIBUTES += ["organization", "manager"]
PLAIN_PATHS = [
    *["userName", "externalId", "displayName", "nickName", "title", "userType", "locale"],
    *["preferredLanguage", "timezone", "active", "profileUrl", "password", "manager"],
    *(f"name.{part}" for part in ("givenName", "familyName", "formatted", "middleName")),
    *(f"{ENT}:{attr}" for attr in ENTERPRISE_ATTRIBUTES),
]
WHOLE_PATHS = ["name", "emails", "phoneNumbers", "addresses", "roles", ENT]
ODD_PATHS = [
    "nosuch",
    "name.nosuch",
    f"{ENT}:nosuch",
    f"{CUSTOM}:costCode",
    "groups",
    "id",
    "emails.value",
    'emails[value eq "a@x.org"].type',
    'emails[type eq "work" and primary eq true].value',
    "emails[type eq work].value",
    'emails[type  eq "work"].value',
    "members",
    f"{CORE}:title",
]


@st.composite
def entry_path(
    draw: st.DrawFn, with_sub: bool = True, attrs: tuple[str, ...] = (), odd_types: bool = True
) -> str:
    attr = draw(st.sampled_from(attrs or sorted(ENTRY_SUBS)))
    kind = draw(st.sampled_from(TYPES + (["", "é", 'a"b'] if odd_types else [])))
    path = f"{draw(cased(attr))}[{draw(cased('type'))} {draw(cased('eq'))} {json.dumps(kind)}]"
    if with_sub:
        path += "." + draw(cased(draw(st.sampled_from(ENTRY_SUBS[attr]))))
    return path


PATHS = st.one_of(
    st.sampled_from(PLAIN_PATHS).flatmap(cased),
    entry_path(),
    entry_path(with_sub=False),
    st.sampled_from(WHOLE_PATHS).flatmap(cased),
    st.sampled_from(ODD_PATHS),
)
SCALARS = st.one_of(
    st.sampled_from(["", " ", "x@contoso.com", "True", "false", "FALSE", "m-1", "https://a.b/"]),
    st.text(max_size=6),
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
)
GOOD_STRINGS = st.sampled_from(["x@contoso.com", "Ada", "", "+1 555 0100", "E-7"])
VALUES = st.one_of(
    GOOD_STRINGS,
    GOOD_STRINGS,
    GOOD_STRINGS,
    SCALARS,
    SCALARS,
    st.fixed_dictionaries({"value": SCALARS}),
    st.lists(st.fixed_dictionaries({"value": SCALARS}, optional={"$ref": st.none()}), max_size=2),
    st.lists(SCALARS, max_size=2),
    st.dictionaries(st.sampled_from(["givenName", "department", "value"]), SCALARS, max_size=2),
)
MISSING = object()
OPS = ["add", "replace", "remove", "Add", "Replace", "Remove"]


@st.composite
def operation(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from([*OPS * 5, "merge"]))
    pathless = draw(st.integers(0, 3)) == 0
    if pathless and op.casefold() == "remove" and draw(st.integers(0, 5)):
        op = draw(st.sampled_from(["add", "replace"]))
    if pathless:
        path: Any = draw(st.sampled_from([MISSING, MISSING, "", None]))
        keys = st.one_of(PATHS, st.sampled_from(["id", "schemas", "meta", "Id"]))
        value: Any = draw(
            st.one_of(
                st.dictionaries(keys, st.one_of(VALUES, st.just(USER_ID)), min_size=0, max_size=4),
                VALUES,
            )
        )
    else:
        path = 5 if draw(st.integers(0, 30)) == 0 else draw(PATHS)
        value = MISSING if draw(st.integers(0, 9)) == 0 else draw(VALUES)
    item = {draw(cased("op")): op}
    if path is not MISSING:
        item[draw(cased("path"))] = path
    if value is not MISSING:
        item[draw(cased("value"))] = value
    return item


@st.composite
def user_doc(draw: st.DrawFn) -> dict[str, Any]:
    kinds = st.sampled_from(["work", "home", "other", "mobile", "Weird"])
    entry = st.fixed_dictionaries(
        {"type": kinds}, optional={"value": st.sampled_from(["a@x.org", "smtp:b@x.org"])}
    )
    emails: list[dict[str, Any]] = draw(st.lists(entry, max_size=3))
    if draw(st.booleans()) and emails:
        emails[draw(st.integers(0, len(emails) - 1))]["primary"] = True
    optional = {
        "title": st.sampled_from(["Engineer", ""]),
        "active": st.booleans(),
        "displayName": st.just("Ada"),
        "name": st.fixed_dictionaries({}, optional={"givenName": st.just("Ada")}),
        "emails": st.just(emails),
        "phoneNumbers": st.lists(entry, max_size=2),
        "addresses": st.lists(
            st.fixed_dictionaries({"type": kinds}, optional={"locality": st.just("Paris")}),
            max_size=2,
        ),
        ENT: st.fixed_dictionaries(
            {},
            optional={
                "department": st.just("Sales"),
                "employeeNumber": st.just("E-1"),
                "manager": st.just({"value": "m-0"}),
            },
        ),
        CUSTOM: st.just({"costCode": "42"}),
    }
    doc = draw(st.fixed_dictionaries({"userName": st.just("ada@contoso.com")}, optional=optional))
    return parse_user(doc)


@st.composite
def patch_body(draw: st.DrawFn, ops: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    patch: dict[str, Any] = {draw(cased("Operations")): draw(st.lists(ops, min_size=1, max_size=4))}
    if draw(st.booleans()):
        patch["schemas"] = [PATCH]
    return patch


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=user_doc(), patch=patch_body(operation()))
def test_fast_and_general_user_paths_agree(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    fast = outcome(lambda: apply_user_patch(doc, patch, USER_ID))
    general = outcome(lambda: _general_user_patch(doc, patch, USER_ID))
    try:
        path = "fast" if _fast_user_patch(doc, _operations(patch), USER_ID) else "general"
    except ScimError:
        path = "envelope"
    event(f"{path} path: {fast[0]}")
    assert fast == general


@st.composite
def common_operation(draw: st.DrawFn) -> dict[str, Any]:
    """What the fast path is for: well-formed ops of the shapes Entra and Okta send."""
    plain = [p for p in PLAIN_PATHS if p not in ("profileUrl", "password", "userName")]
    entries = entry_path(attrs=("emails", "phoneNumbers", "addresses", "ims"), odd_types=False)
    path = draw(st.one_of(st.sampled_from(plain).flatmap(cased), entries))
    if "[" in path and path.rsplit(".", 1)[-1].casefold() in ("primary", "type"):
        path = path.rsplit(".", 1)[0] + ".value"
    op = draw(st.sampled_from(["add", "replace", "Add", "Replace"]))
    if path.casefold() == "active":
        value: Any = draw(st.sampled_from([True, False, "True", "false"]))
    elif path.casefold() in ("manager", f"{ENT}:manager".casefold()):
        value = draw(
            st.sampled_from(["m-1", {"value": "m-2"}, [{"$ref": None, "value": "m-3"}], "", []])
        )
    else:
        value = draw(GOOD_STRINGS)
    if draw(st.integers(0, 4)) == 0:
        return {"op": "remove", "path": path}
    if draw(st.integers(0, 3)) == 0:
        return {"op": op.lower(), "value": {path: value}}
    return {"op": op, "path": path, "value": value}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=user_doc(), patch=patch_body(common_operation()))
def test_common_user_operations_take_the_fast_path(
    doc: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert _fast_user_patch(doc, _operations(patch), USER_ID) is not None
    assert outcome(lambda: apply_user_patch(doc, patch, USER_ID)) == outcome(
        lambda: _general_user_patch(doc, patch, USER_ID)
    )


# --- groups ----------------------------------------------------------------------------------

ENTRA_GROUP = parse_group(
    {"schemas": [GROUP, MS_GROUP], "externalId": "8aa1", "displayName": "Sales"}
)[0]

MEMBER_BODIES = [
    # Entra legacy
    [
        {
            "op": "Add",
            "path": "members",
            "value": [{"$ref": None, "value": f"u{i}"} for i in range(10)],
        }
    ],
    [{"op": "Remove", "path": "members", "value": [{"value": "u1"}]}],
    [{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}],
    # Entra compliant
    [{"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}],
    [{"op": "remove", "path": 'members[value eq "u1"]'}],
    [{"op": "remove", "path": 'members[value eq "u1" or value eq "u2"]'}],
    [{"op": "replace", "path": "members", "value": [{"value": "u9"}]}],
    [{"op": "replace", "path": "members", "value": []}],
    [{"op": "remove", "path": "members"}],
    [{"op": "add", "value": {"members": [{"value": "u3"}]}}],
    # Okta
    [{"op": "add", "path": "members", "value": [{"value": "u1", "display": "ada@contoso.com"}]}],
    [{"op": "remove", "path": 'members[value eq "00u1ab2cd3EF4gh5i6j7"]'}],
    # Mixed spellings
    [
        {"op": "Add", "path": "Members", "value": [{"value": "u1"}]},
        {"op": "REMOVE", "path": f'{GROUP}:members[value eq "u1"]'},
        {"op": "add", "path": "members", "value": [{"value": "u2", "type": "User"}, "u3"]},
    ],
]


@pytest.mark.parametrize("ops", MEMBER_BODIES)
def test_member_patches_take_the_fast_path_and_agree(ops: list[dict[str, Any]]) -> None:
    patch = body(*ops)
    assert _member_plan(_operations(patch)) is not None, "not the fast path"
    fast = plan_group_patch(ENTRA_GROUP, patch, GROUP_ID)
    assert fast == _general_group_patch(ENTRA_GROUP, patch, GROUP_ID)
    assert fast.doc is ENTRA_GROUP


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "displayName", "value": "Sales EMEA"}],
        [{"op": "replace", "value": {"id": GROUP_ID, "displayName": "Sales EMEA"}}],
        [
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "replace", "path": "externalId", "value": "x"},
        ],
        [{"op": "add", "value": {"members": [{"value": "u1"}], "displayName": "New"}}],
    ],
)
def test_other_group_patches_take_the_general_path(ops: list[dict[str, Any]]) -> None:
    patch = body(*ops)
    assert _member_plan(_operations(patch)) is None
    assert plan_group_patch(ENTRA_GROUP, patch, GROUP_ID) == _general_group_patch(
        ENTRA_GROUP, patch, GROUP_ID
    )


IDS = st.one_of(
    st.sampled_from(["u1", "u2", "", "a]b", "a[b", "é", 'a"b', "a\\b", "a\tb", "x y"]),
    st.text(max_size=5),
)


@st.composite
def member_filter(draw: st.DrawFn) -> str:
    ids = draw(st.lists(IDS, min_size=1, max_size=3))
    ascii_only = draw(st.booleans())
    terms = [
        f"{draw(cased('value'))} {draw(cased('eq'))} {json.dumps(i, ensure_ascii=ascii_only)}"
        for i in ids
    ]
    joiners = [draw(st.sampled_from([" or ", " OR ", " and ", "  or "])) for _ in terms[1:]]
    text = terms[0] + "".join(j + t for j, t in zip(joiners, terms[1:], strict=True))
    text = draw(st.sampled_from([text, f" {text}", f"({text})", text.replace("value", "display")]))
    prefix = draw(st.sampled_from(["", f"{GROUP}:", f"{GROUP.upper()}:"]))
    suffix = draw(st.sampled_from(["", "", "", ".value", "]"]))
    return f"{prefix}{draw(cased('members'))}[{text}]{suffix}"


MEMBER_VALUES = st.one_of(
    st.none(),
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {"value": IDS},
                optional={
                    "$ref": st.none(),
                    "type": st.sampled_from(["User", "group", "Robot"]),
                    "display": st.sampled_from(["Ada", 5]),
                },
            ),
            IDS,
            st.just({"display": "no id"}),
            st.integers(),
        ),
        max_size=3,
    ),
    st.fixed_dictionaries({"value": IDS}),
    st.just("u1"),
)


@st.composite
def member_operation(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from([*OPS * 5, "merge"]))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        item: dict[str, Any] = {
            "op": op,
            "path": "displayName",
            "value": draw(st.sampled_from(["S2", ""])),
        }
    elif kind == 1:
        value = draw(
            st.sampled_from(
                [
                    {"members": []},
                    {"Members": [{"value": "u1"}]},
                    {"members": None},
                    {"members": [], "displayName": "S3"},
                    {"id": GROUP_ID, "displayName": "S4"},
                    "members",
                    {},
                ]
            )
        )
        item = {"op": op, "value": value}
    else:
        path = draw(
            st.one_of(
                member_filter(),
                st.sampled_from(
                    [
                        "members",
                        "Members",
                        "MEMBERS",
                        f"{GROUP}:members",
                        "members.value",
                        "member",
                        "urn:custom:members",
                        "owner",
                    ]
                ),
            )
        )
        item = {draw(cased("op")): op, draw(cased("path")): path}
        value = MISSING if draw(st.integers(0, 4)) == 0 else draw(MEMBER_VALUES)
        if value is not MISSING:
            item[draw(cased("value"))] = value
    return item


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patch=patch_body(member_operation()))
def test_fast_and_general_group_plans_agree(patch: dict[str, Any]) -> None:
    fast = outcome(lambda: plan_group_patch(ENTRA_GROUP, patch, GROUP_ID))
    general = outcome(lambda: _general_group_patch(ENTRA_GROUP, patch, GROUP_ID))
    try:
        path = "general" if _member_plan(_operations(patch)) is None else "fast"
    except ScimError as exc:
        path = "fast" if exc.detail.startswith("Operations[") and "(" in exc.detail else "envelope"
    event(f"{path} path: {fast[0]}")
    assert fast == general
