"""The fast path of parse_user / parse_group (scimgate.scim.fast_payloads) against the
scim2-models path it stands in for: on what IdPs send it must be taken, and on any body,
whatever it returns must be what scim2-models returns, and any error must still be raised."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scimgate.scim import payloads
from scimgate.scim.errors import ScimError
from scimgate.scim.fast_payloads import plain_dump
from scimgate.scim.patch import apply_user_patch
from scimgate.scim.payloads import ScimGroup, ScimUser
from tests.unit.test_payloads import ENTRA_CREATE as ENTRA_WITH_QUIRKS

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CUSTOM = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

Parse = Callable[[Any], Any]


@contextmanager
def fast_results() -> Iterator[list[dict[str, Any] | None]]:
    """What plain_dump answered, call by call, in the block (None: not taken)."""
    results: list[dict[str, Any] | None] = []
    original = payloads.plain_dump

    def spy(model: Any, core: dict[str, Any]) -> dict[str, Any] | None:
        results.append(result := original(model, core))
        return result

    with mock.patch.object(payloads, "plain_dump", spy):
        yield results


def outcome(parse: Parse, body: Any) -> tuple[Any, ...]:
    """A parse's result and its JSON text (key order included), or the error it raised."""
    try:
        result = parse(copy.deepcopy(body))
    except ScimError as exc:
        return ("error", exc.status, exc.scim_type, exc.detail)
    except Exception as exc:  # the same crash on both paths is still agreement
        return ("crash", type(exc).__name__, str(exc))
    return ("ok", result, json.dumps(result, default=repr))


def compare(parse: Parse, models_only: Parse, body: Any) -> str:
    """Assert that ``parse`` (fast path first) and ``models_only`` agree on ``body``;
    return which path parse took and how it ended, e.g. "fast path, ok"."""
    with fast_results() as fast:
        got = outcome(parse, body)
    expected = outcome(models_only, body)
    assert got == expected
    accepted = [doc for doc in fast if doc is not None]
    if expected[0] != "ok":
        assert accepted == [], "the fast path took a body scim2-models refuses"
    return f"{'fast' if accepted else 'slow'} path, {expected[0]}"


def compare_user(body: Any) -> str:
    return compare(payloads.parse_user, payloads._parse_user_models, body)


def compare_group(body: Any) -> str:
    return compare(payloads.parse_group, payloads._parse_group_models, body)


# -- (a) a corpus of what IdPs send: taken by the fast path, same result ---------------------

# Entra's create with the default attribute mappings (bench/loadgen.py user_body), as the
# quirk-free twin of test_payloads' body ("True", nulls), and with a manager.
ENTRA_CREATE: dict[str, Any] = {
    **ENTRA_WITH_QUIRKS,
    "active": True,
    "title": "Engineer",
    "phoneNumbers": [{"type": "work", "value": "+1 425 555 0100"}],
    "addresses": [{"type": "work", "locality": "Redmond", "country": "US"}],
    ENT: {"department": "Sales", "employeeNumber": "E-1", "manager": {"value": "some-id"}},
}

USERS: dict[str, dict[str, Any]] = {
    "entra_create": ENTRA_CREATE,
    "entra_without_manager": {**ENTRA_CREATE, ENT: {"department": "Sales", "employeeNumber": "7"}},
    "entra_nulls": {**ENTRA_WITH_QUIRKS, "active": False},
    "entra_nulls_and_custom_extension": {
        "schemas": [CORE, ENT, CUSTOM],
        "externalId": "alice",
        "userName": "Alice@contoso.com",
        "active": False,
        "displayName": "Älice Ünïcode ✓",
        "emails": [
            {"primary": True, "type": "work", "value": "Alice@contoso.com"},
            {"type": "other", "value": "smtp:alice@contoso.onmicrosoft.com"},
        ],
        "name": {"givenName": "Älice", "familyName": None, "formatted": ""},
        "phoneNumbers": [
            {"type": "work", "value": "+1 425 555 0100"},
            {"type": "mobile", "value": "+1 206 555 0101"},
            {"type": "fax", "value": "+1 425 555 0102"},
        ],
        "addresses": [
            {
                "type": "work",
                "streetAddress": "1 Microsoft Way",
                "locality": "Redmond",
                "region": "WA",
                "postalCode": "98052",
                "country": "US",
            },
            {"type": "other", "formatted": "Building 92"},
        ],
        "roles": [],
        "nickName": None,
        ENT: {"department": "Sales", "costCenter": None, "manager": "m-1"},
        CUSTOM: {"costCode": "42", "badges": ["a"], "gone": None},
    },
    "entra_manager_as_list": {
        "schemas": [CORE, ENT],
        "userName": "b@contoso.com",
        ENT: {"manager": [{"$ref": None, "value": "m-2"}], "employeeNumber": "7"},
    },
    "entra_minimal_cloud_only": {"schemas": [CORE], "userName": "c@contoso.com", "active": True},
    "okta_create": {
        "schemas": [CORE],
        "userName": "isaac.brock@example.com",
        "name": {"givenName": "Isaac", "familyName": "Brock"},
        "emails": [{"primary": True, "value": "isaac.brock@example.com", "type": "work"}],
        "displayName": "Isaac Brock",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    },
    "okta_put": {
        "schemas": [CORE],
        "id": "23a35c27-23d3-4c03-b4c5-6443c09e7173",
        "userName": "test.user@okta.local",
        "name": {"givenName": "Another", "middleName": "Q", "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Another User",
        "locale": "en-US",
        "profileUrl": "https://okta.local/profiles/test.user",
        "externalId": "00u1dhhb1fkIGP7RL1d8",
        "active": False,
        "meta": {"resourceType": "User", "version": 'W/"3"'},
    },
    "onelogin": {
        "schemas": [CORE, ENT],
        "userName": "kate@onelogin.example",
        "externalId": "123456",
        "name": {"givenName": "Kate", "familyName": "Smith", "honorificPrefix": "Dr."},
        "emails": [{"value": "kate@onelogin.example", "primary": True}],
        "title": "CTO",
        "userType": "Employee",
        "preferredLanguage": "en-GB",
        "timezone": "Europe/London",
        "profileUrl": "https://onelogin.example/profiles/kate",
        "phoneNumbers": [{"value": "+44 20 7946 0000", "type": "work", "primary": True}],
        ENT: {"organization": "Acme", "division": "R&D", "costCenter": "CC-1", "department": "x"},
    },
    "jumpcloud": {
        "schemas": [CORE, ENT],
        "userName": "jdoe",
        "displayName": "John Doe",
        "name": {"formatted": "John Doe", "givenName": "John", "familyName": "Doe"},
        "emails": [{"value": "jdoe@example.org", "type": "work", "primary": True}],
        "addresses": [
            {
                "type": "home",
                "streetAddress": "100 Universal City Plaza",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "US",
                "primary": True,
            }
        ],
        "phoneNumbers": [{"type": "mobile", "value": "555-555-4444"}],
        "ims": [{"type": "skype", "value": "jdoe.skype"}],
        "entitlements": [{"value": "vpn", "display": "VPN access"}],
        "roles": [{"value": "admin", "display": "Admin", "type": "app", "primary": True}],
        "active": True,
        ENT: {"employeeNumber": "701984", "manager": {"value": "m-3", "displayName": "Boss"}},
    },
}

# What a PATCH re-validates: a stored canonical document with the changes applied.
_STORED = payloads.parse_user(copy.deepcopy(ENTRA_CREATE))
USERS |= {
    "patched_title_and_surname": {
        **_STORED,
        "title": "Senior Engineer",
        "name": {**_STORED["name"], "familyName": "B-2"},
    },
    "patched_mail_mobile_number": {
        **_STORED,
        "emails": [{"value": "b@contoso.com", "type": "work", "primary": True}],
        "phoneNumbers": [*_STORED["phoneNumbers"], {"value": "+1 206 555 0100", "type": "mobile"}],
        ENT: {**_STORED[ENT], "employeeNumber": "E-9"},
    },
    "patched_deactivated": {**_STORED, "active": False},
    "patched_manager_removed": {**_STORED, ENT: {"department": "Sales"}},
    "patched_custom_extension": {**_STORED, "schemas": [CORE, ENT, CUSTOM], CUSTOM: {"a": "1"}},
}

GROUPS: dict[str, dict[str, Any]] = {
    # bench/loadgen.py group_body
    "entra_create": {
        "schemas": [GROUP, MS_GROUP],
        "externalId": "8aa1c1a6-7a43-4c2e-9a1f-0d1f1e3c4b5a",
        "displayName": "Sales",
        "meta": {"resourceType": "Group"},
    },
    "entra_patched": {"schemas": [GROUP, MS_GROUP], "externalId": "8aa1", "displayName": "EMEA"},
    "okta_with_members": {
        "schemas": [GROUP],
        "displayName": "Engineering",
        "members": [{"value": "u-1", "display": "Ada"}, {"value": "u-2", "type": "User"}],
    },
    "okta_put": {"schemas": [GROUP], "id": "g-1", "displayName": "Ops", "members": []},
    "no_schemas": {"displayName": "Support"},
}


@pytest.mark.parametrize("name", USERS)
def test_idp_user_bodies_take_the_fast_path(name: str) -> None:
    assert compare_user(USERS[name]) == "fast path, ok"


@pytest.mark.parametrize("name", GROUPS)
def test_idp_group_bodies_take_the_fast_path(name: str) -> None:
    assert compare_group(GROUPS[name]) == "fast path, ok"


def test_canonical_documents_take_the_fast_path() -> None:
    for body in USERS.values():
        assert compare_user(payloads.parse_user(copy.deepcopy(body))) == "fast path, ok"
    for body in GROUPS.values():
        assert compare_group(payloads.parse_group(copy.deepcopy(body))[0]) == "fast path, ok"


# Casing variations, coercions, odd shapes and errors stay with scim2-models.
LEFT_TO_MODELS: list[dict[str, Any]] = [
    {"userName": "u", "active": "True"},
    {"userName": "u", "active": 1},
    {"userName": "u", "emails": [{"type": "Work", "value": "u@x.org"}]},
    {"userName": "u", "emails": [{"type": "internal", "value": "u@x.org"}]},
    {"userName": "u", "UserName": "v"},
    {"UserName": "u"},
    {"userName": "u", "name": {"GivenName": "U"}},
    {"userName": "u", "name": {"given_name": "U"}},
    {"userName": "u", "schemas": [CORE, ENT.upper()], ENT: {"department": "x"}},
    {"userName": "u", ENT.upper(): {"department": "x"}},
    {"userName": "u", ENT: {"manager": "m", "schemas": [ENT]}},
    {"userName": "u", "profileUrl": "not a url"},
    {"userName": "u", "x509Certificates": [{"value": "YWJj"}]},
    {"userName": "u", "emails": [{"value": "a", "primary": True}, {"value": "b", "primary": True}]},
    {"userName": "u", "emails": [{"value": "a", "$ref": "x"}]},
    {"userName": "u", "emails": {"value": "a"}},
    {"userName": "u", "nosuch": 1},
]


@pytest.mark.parametrize("body", LEFT_TO_MODELS, ids=lambda body: json.dumps(body)[:60])
def test_what_the_fast_path_leaves_to_scim2_models(body: dict[str, Any]) -> None:
    assert compare_user(body).startswith("slow path")


def test_plain_dump_vouches_only_for_what_the_model_accepts() -> None:
    """plain_dump on its own (parse_user checks userName before it is called)."""
    assert plain_dump(ScimUser, {"schemas": [CORE]}) is None  # userName is required
    assert plain_dump(ScimUser, {"userName": "u"}) is None  # no schemas
    assert plain_dump(ScimUser, {"schemas": [ENT, CORE], "userName": "u"}) is None
    assert plain_dump(ScimUser, {"schemas": [CORE, ENT], "userName": "u", ENT: {}}) == {
        "schemas": [CORE],
        "userName": "u",
    }
    assert plain_dump(ScimGroup, {"schemas": [GROUP], "displayName": "G"}) == {
        "schemas": [GROUP],
        "displayName": "G",
    }


@pytest.mark.parametrize("dialect", ["legacy", "compliant"])
def test_patch_results_take_the_fast_path_and_agree(dialect: str) -> None:
    """Entra's incremental PATCHes (bench/loadgen.py): the document each one re-validates
    is parsed on the fast path, and the result is what the scim2-models path gives."""
    mail, mobile = "b@contoso.com", "+1 206 555 0100"
    if dialect == "legacy":
        ops = [
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": mail},
            {"op": "Replace", "path": "name.familyName", "value": "B-2"},
            {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": mobile},
            {"op": "Replace", "path": "title", "value": "Senior Engineer"},
            {"op": "Replace", "path": f"{ENT}:employeeNumber", "value": "E-9"},
            {"op": "Add", "path": "manager", "value": [{"$ref": None, "value": "m-9"}]},
        ]
    else:
        ops = [
            {
                "op": "replace",
                "value": {"name.familyName": "B-2", f"{ENT}:employeeNumber": "E-9"},
            },
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": mail},
            {"op": "add", "path": 'phoneNumbers[type eq "mobile"].value', "value": mobile},
            {"op": "add", "path": f"{ENT}:manager", "value": "m-9"},
        ]
    for body in [{"schemas": [PATCH], "Operations": ops}, {"Operations": [ops[-1]]}]:
        with fast_results() as fast:
            new = apply_user_patch(_STORED, copy.deepcopy(body))
        assert fast
        assert all(doc is not None for doc in fast)
        with mock.patch.object(payloads, "plain_dump", return_value=None):
            assert apply_user_patch(_STORED, copy.deepcopy(body)) == new


# -- (b) generated bodies: the fast path never disagrees with scim2-models -------------------

# Bodies are the corpus above, less some attributes, plus generated ones: calm (names spelled
# right, values of the right type, nulls, empties, unicode and "True" allowed), calm with one
# change at any depth (see change_one_thing), or wild (odd values and names anywhere).

ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1, 2),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(["True", "false", "1", "yes", "", " "]),
    st.just([]),
    st.just({}),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.sampled_from(["value", "x"]), st.text(max_size=3), max_size=2),
)
"""Values of the wrong type, nulls and empties, for any attribute."""

BOOLEAN = st.one_of(st.booleans(), st.booleans(), st.sampled_from(["True", "False", "false"]))
"""Entra's legacy dialect sends "True" and "False": scim2-models takes them."""
TEXT = st.one_of(
    st.sampled_from(
        [
            *["", " ", "a@contoso.com", "smtp:a@contoso.com", "Ünïcode ✓", "\x00", "\ud800"],
            *["work", "True", "https://example.com/u/1", "/Users/1", "not a url", "ftp://x"],
        ]
    ),
    st.text(max_size=12),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=5,
)
URLS = ["https://example.com/u/1", "/Users/1", "HTTPS://Example.com/a b", "urn:x", "mailto:a@b"]
URLS += ["x", "not a url", "https://", "example.com/u", "https://ex ample.com"]  # invalid
# Another case of the enterprise URN in schemas is refused by scim2-models.
SCHEMA_URIS = [CORE, ENT, CUSTOM, MS_GROUP, "urn:x", GROUP, ENT.upper(), ENT.lower(), CORE.lower()]
MANAGERS = [None, "", "m-1", {"value": "m-1"}, {"value": "m-1", "$ref": None, "displayName": "B"}]
MANAGERS += [[{"$ref": None, "value": "m-1"}], []]
ODD_MANAGERS = [["a", "b"], {"displayName": "Boss"}, 7]


RARELY = st.sampled_from([True] + [False] * 9)  # (integers would favour the ends)


def spelled(name: str, wild: bool) -> st.SearchStrategy[str]:
    """An attribute name, as the schema spells it or (wild) mostly so."""
    if not wild:
        return st.just(name)
    return st.sampled_from([name, name, name, name.upper(), name.lower(), name.title()])


def maybe(valid: st.SearchStrategy[Any], wild: bool) -> st.SearchStrategy[Any]:
    """``valid``, or (wild) mostly so, sometimes an odd value."""
    return st.one_of(valid, valid, valid, ODD) if wild else valid


@st.composite
def objects(
    draw: st.DrawFn, attributes: dict[str, st.SearchStrategy[Any]], wild: bool
) -> dict[str, Any]:
    """An object holding a random subset of ``attributes``; wild, maybe with names in
    another case, an unknown name, or a name given twice."""
    names = draw(st.lists(st.sampled_from(sorted(attributes)), unique=True))
    value = {draw(spelled(name, wild)): draw(attributes[name]) for name in names}
    if wild and draw(RARELY):
        value[draw(st.sampled_from(["$ref", "nosuch", "primary", "Value"]))] = draw(TEXT)
    if wild and value and draw(RARELY):
        twice = draw(st.sampled_from(sorted(value)))
        value[draw(st.sampled_from([twice.upper(), twice.lower()]))] = value[twice]
    return value


def multi_valued(types: list[str], wild: bool, **more: st.SearchStrategy[Any]) -> Any:
    """A multi-valued attribute; ``types`` are the canonical values of its ``type`` (which
    scim2-models folds to, from another case), none for a free-form ``type``."""
    kind = TEXT
    if types:
        canonical = st.sampled_from(types)
        others = st.sampled_from([types[0].title(), types[-1].upper(), "internal", ""])
        kind = st.one_of(canonical, canonical, canonical, others)
    # An address has no value or display: those are then unknown names, for wild bodies.
    plain = wild or not more
    entry = objects(
        {
            **({"value": maybe(TEXT, wild), "display": maybe(TEXT, wild)} if plain else {}),
            "type": maybe(kind, wild),
            "primary": maybe(BOOLEAN, wild),
            **more,
        },
        wild,
    )
    return maybe(st.lists(maybe(entry, wild), max_size=3), wild)


@cache
def user_attributes(wild: bool) -> st.SearchStrategy[dict[str, Any]]:
    string = maybe(st.none() | TEXT, wild)
    name_parts = ["formatted", "familyName", "givenName", "middleName", "honorificPrefix"]
    enterprise = ["employeeNumber", "costCenter", "organization", "division", "department"]
    attributes = {
        "schemas": maybe(
            st.lists(st.sampled_from(SCHEMA_URIS), max_size=4),
            wild,
        ),
        **{
            name: string
            for name in [
                *["externalId", "displayName", "nickName", "title", "userType"],
                *["preferredLanguage", "locale", "timezone", "password", "id"],
            ]
        },
        "profileUrl": maybe(st.sampled_from(URLS) | (TEXT if wild else st.nothing()), wild),
        "active": maybe(BOOLEAN, wild),
        "name": maybe(objects({part: string for part in name_parts}, wild), wild),
        "emails": multi_valued(["work", "home", "other"], wild),
        "phoneNumbers": multi_valued(["work", "home", "mobile", "fax", "pager", "other"], wild),
        "ims": multi_valued(["aim", "gtalk", "skype", "xmpp"], wild),
        **({"photos": multi_valued(["photo", "thumbnail"], wild)} if wild else {}),
        "addresses": multi_valued(
            ["work", "home", "other"],
            wild,
            **{
                part: string
                for part in [
                    *["formatted", "streetAddress", "locality", "region", "postalCode"],
                    "country",
                ]
            },
        ),
        "entitlements": multi_valued([], wild),
        "roles": multi_valued([], wild),
        **({"x509Certificates": multi_valued([], wild)} if wild else {}),
        "groups": maybe(st.just([{"value": "g-1"}]), wild),
        "meta": maybe(st.just({"resourceType": "User"}), wild),
        ENT: maybe(
            objects(
                {
                    **{name: string for name in enterprise},
                    "manager": st.sampled_from(MANAGERS + (ODD_MANAGERS if wild else [])),
                    **({"schemas": st.just([ENT])} if wild else {}),
                },
                wild,
            ),
            wild,
        ),
        CUSTOM: maybe(st.dictionaries(st.text(max_size=4), JSON, max_size=3), wild),
    }
    return objects(attributes, wild)


@cache
def group_attributes(wild: bool) -> st.SearchStrategy[dict[str, Any]]:
    member = objects(
        {
            "value": maybe(TEXT, wild),
            "type": maybe(st.sampled_from(["User", "Group", "user", "Robot"]), wild),
            "display": maybe(TEXT, wild),
            "$ref": st.none(),
        },
        wild,
    )
    attributes = {
        "schemas": maybe(st.lists(st.sampled_from([GROUP, GROUP, MS_GROUP, CORE, "urn:x"])), wild),
        "externalId": maybe(st.none() | TEXT, wild),
        "members": maybe(st.lists(maybe(member, wild), max_size=3), wild),
        "id": TEXT,
        "meta": maybe(st.just({"resourceType": "Group"}), wild),
        CUSTOM: maybe(st.dictionaries(st.text(max_size=4), JSON, max_size=3), wild),
        **({"groups": TEXT} if wild else {}),
    }
    return objects(attributes, wild)


@st.composite
def bodies(
    draw: st.DrawFn,
    corpus: dict[str, dict[str, Any]],
    attributes: Callable[[bool], st.SearchStrategy[dict[str, Any]]],
    required: str,
) -> Any:
    """A body of the corpus, less some attributes, with generated ones added or replaced;
    calm, with one change, or wild. ``required`` (userName, displayName) stays in calm ones."""
    mode = draw(st.sampled_from(["calm", "wild", *["one change"] * 4]))
    wild = mode == "wild"
    body = copy.deepcopy(draw(st.sampled_from(list(corpus.values()))))
    for key in draw(st.lists(st.sampled_from(sorted(body)), unique=True)):
        if key != required:
            del body[key]
    body.update(copy.deepcopy(draw(attributes(wild))))
    if wild:
        name = body.pop(required)
        if not draw(RARELY):
            body[draw(spelled(required, wild))] = name if draw(st.booleans()) else draw(ODD)
    if mode == "one change":
        change_one_thing(draw, body)
    return body


KEYWORDS = {CORE.casefold(), ENT.casefold(), GROUP.casefold(), "work", "home", "mobile", "other"}
"""Strings scim2-models reads in any case: schema URIs, canonical ``type`` values."""
CHANGES = ["another type"] * 3 + ["another string", "dropped", "recased value"]
CHANGES += ["recased keyword", "recased name", "given twice", "unknown name", "repeated"]
CHANGES += ["made primary"]


def other_types(value: Any) -> list[Any]:
    """Values of another JSON type than ``value``, the string forms of a boolean first."""
    if isinstance(value, bool):
        return [str(value), str(value).lower(), int(value), None, [], {}]
    if isinstance(value, str):
        return [0, 1, 2.5, True, False, None, [], {}, [value], {"value": value}]
    return [None, "", "x", "True", 0, True, [], {}, [value]]


def change_one_thing(draw: st.DrawFn, body: dict[str, Any]) -> None:
    """Change one value or name, at any depth: another type (``"True"`` for true), another
    string, another case, a name given twice or unknown, an entry dropped, repeated or made
    primary."""
    places: list[tuple[Any, Any]] = []

    def walk(container: Any) -> None:
        keys = list(container) if isinstance(container, dict) else range(len(container))
        for key in keys:
            places.append((container, key))
            if isinstance(container[key], dict | list):
                walk(container[key])

    def fits(change: str, container: Any, key: Any) -> bool:
        value = container[key]
        if change in ("another string", "recased value"):
            return isinstance(value, str)
        if change == "recased keyword":
            return isinstance(value, str) and value.casefold() in KEYWORDS
        if change in ("recased name", "given twice", "unknown name"):
            return isinstance(container, dict)
        if change in ("repeated", "made primary"):  # an entry (maybe a second primary)
            return isinstance(container, list) and isinstance(value, dict)
        return True

    walk(body)
    change = draw(st.sampled_from(CHANGES))
    # Any place, or one holding a value of some type (each type as likely: booleans are few).
    candidates: dict[str, list[tuple[Any, Any]]] = {}
    for container, key in places:
        if fits(change, container, key):
            candidates.setdefault(type(container[key]).__name__, []).append((container, key))
    if not candidates:
        return
    if draw(st.booleans()):
        kind = draw(st.sampled_from(sorted(candidates)))
        container, key = draw(st.sampled_from(candidates[kind]))
    else:
        container, key = draw(st.sampled_from([p for ps in candidates.values() for p in ps]))
    value = container[key]
    if change == "another type":
        container[key] = draw(st.sampled_from(other_types(value)))
    elif change == "another string":
        container[key] = draw(TEXT)
    elif change == "dropped":
        del container[key]
    elif change in ("recased value", "recased keyword"):
        container[key] = draw(st.sampled_from([value.upper(), value.lower(), value.title()]))
    elif change == "recased name":
        container[draw(st.sampled_from([key.upper(), key.lower()]))] = container.pop(key)
    elif change == "given twice":
        container[key.lower() if key != key.lower() else key.upper()] = value
    elif change == "unknown name":
        container["nosuch"] = value
    elif change == "made primary":
        value["primary"] = True
    else:
        container.append(copy.deepcopy(value))


def generated(examples: int) -> Any:
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


@generated(600)
@given(bodies(USERS, user_attributes, "userName"))
def test_generated_user_bodies_agree(body: Any) -> None:
    """Whatever the fast path returns is what scim2-models returns; whatever scim2-models
    refuses, parse_user refuses with the same error (the fast path having declined)."""
    event(compare_user(body))


@generated(300)
@given(bodies(GROUPS, group_attributes, "displayName"))
def test_generated_group_bodies_agree(body: Any) -> None:
    event(compare_group(body))
