"""Generated SCIM requests over real HTTP, on both backends: Entra-shaped bodies with
attributes, PATCH operations, paths, members and filters drawn from what IdPs send and
from anything JSON can hold. Whatever comes in, the answer is a success or an RFC 7644
§3.12 error, never a 5xx; and a refused write changes nothing (the resource reads back
as it was, same ``ETag``).

``SCIMGATE_FUZZ_EXAMPLES`` sets the number of examples per test (default 40)."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import (
    ADSCIM_GROUP,
    CUSTOM_EXT,
    ENTERPRISE,
    ENTRA_FLAG,
    ERROR_SCHEMA,
    PATCH_SCHEMA,
    SCIM_JSON,
    create_group,
    create_user,
    get_resource,
    group_body,
    media_type,
    user_body,
)
from tests.live import Directory

EXAMPLES = int(os.environ.get("SCIMGATE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

# -- what IdPs send, and what they might ---------------------------------------------------

USER_ATTRIBUTES = [
    "userName",
    "displayName",
    "externalId",
    "active",
    "title",
    "nickName",
    "preferredLanguage",
    "locale",
    "timezone",
    "userType",
    "name",
    "emails",
    "phoneNumbers",
    "addresses",
    "roles",
    "entitlements",
    "x509Certificates",
    "password",
    "schemas",
    "id",
    "meta",
    "groups",
    ENTERPRISE,
    CUSTOM_EXT,
]
USER_PATHS = [
    *USER_ATTRIBUTES,
    "name.givenName",
    "name.familyName",
    'emails[type eq "work"].value',
    'emails[type eq "work"]',
    "emails[primary eq true].value",
    'phoneNumbers[type eq "mobile"].value',
    'addresses[type eq "work"].streetAddress',
    f"{ENTERPRISE}:manager",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:manager.value",
    f"{CUSTOM_EXT}:costCenter",
    "urn:ietf:params:scim:schemas:core:2.0:User:displayName",
    'emails[type eq "work" and primary eq true].value',
    'emails[value co "@"]',
    "members",
    "name.",
    "[",
    "emails[",
    "",
]
GROUP_PATHS = [
    "members",
    "displayName",
    "externalId",
    'members[value eq "{member}"]',
    'members[value eq "{member}"].display',
    "members[value eq 1]",
    "members.value",
    "id",
    "meta",
    'members[display co "a"]',
    f"{ADSCIM_GROUP}:x",
    "",
]
OPS = ["add", "replace", "remove", "Add", "Replace", "Remove", "ADD", "copy", "", None]

texts = st.text(max_size=24) | st.sampled_from(
    [
        "",
        " ",
        "True",
        "False",
        "null",
        "@",
        "a@contoso.com",
        "\u0000",
        "김",
        "\U0001f600",
        "x" * 300,
    ]
)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | texts
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["value", "type", "primary", "display", "$ref", "givenName"]) | texts,
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)
multi_values = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "value": json_values,
            "type": st.sampled_from(["work", "home", "mobile", "other"]) | json_values,
            "primary": st.booleans() | st.sampled_from(["True", "false", "yes"]),
            "display": json_values,
        },
    ),
    max_size=3,
)
values = json_values | multi_values


def _dumps(body: Any) -> bytes:
    """``json.dumps`` as IdPs write JSON; NaN and Infinity come out as such (not JSON)."""
    return json.dumps(body).encode()


def _assert_answered(response: httpx.Response) -> None:
    """A success, or an RFC 7644 §3.12 error with the SCIM media type; never a 5xx."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        assert media_type(response) == SCIM_JSON, response.headers
        error = response.json()
        assert ERROR_SCHEMA in error["schemas"], error
        assert error["status"] == str(response.status_code), error
        assert isinstance(error.get("detail"), str) and error["detail"], error


def _url(directory: Directory, path: str, flag: bool) -> str:
    return directory.url(path) + (f"?{ENTRA_FLAG}" if flag else "")


def _same_or_changed(directory: Directory, path: str, before: dict[str, Any], ok: bool) -> None:
    """A refused write left the resource as it was; any answer leaves it readable."""
    after = get_resource(directory, path)
    if not ok:
        assert after == before, "a refused write changed the resource"


@st.composite
def user_documents(draw: st.DrawFn) -> dict[str, Any]:
    body = user_body()
    for key in draw(st.lists(st.sampled_from(STRINGS), max_size=3)):
        body[key] = draw(texts)  # the right kind: mostly accepted
    for key in draw(st.lists(st.sampled_from(USER_ATTRIBUTES) | texts, max_size=1)):
        body[key] = draw(values)
    for key in draw(st.lists(st.sampled_from(list(body)), max_size=1)):
        body.pop(key, None)
    return body


STRINGS = ["displayName", "title", "nickName", "externalId", "name.givenName", "userType"]


def plausible_user_operations(member: str) -> st.SearchStrategy[dict[str, Any]]:
    """Operations as IdPs send them, with values of the right kind or nearly."""
    op = st.sampled_from(["add", "replace", "Add", "Replace"])
    return st.one_of(
        st.fixed_dictionaries({"op": op, "path": st.sampled_from(STRINGS), "value": texts}),
        st.fixed_dictionaries(
            {
                "op": op,
                "path": st.just("active"),
                "value": st.booleans() | st.sampled_from(["True", "False", "false", "yes"]),
            }
        ),
        st.fixed_dictionaries(
            {
                "op": op,
                "path": st.sampled_from(USER_PATHS[USER_PATHS.index("name.givenName") :]),
                "value": texts | st.fixed_dictionaries({"value": texts}),
            }
        ),
        st.fixed_dictionaries(
            {"op": op, "value": st.dictionaries(st.sampled_from([*STRINGS, "active"]), texts)}
        ),
        st.fixed_dictionaries(
            {"op": st.sampled_from(["remove", "Remove"]), "path": st.sampled_from(USER_PATHS)}
        ),
        st.fixed_dictionaries(
            {"op": op, "path": st.just(f"{ENTERPRISE}:manager"), "value": st.just(member)}
        ),
    )


def plausible_group_operations(member: str) -> st.SearchStrategy[dict[str, Any]]:
    op = st.sampled_from(["add", "replace", "remove", "Add", "Replace", "Remove"])
    members = st.lists(
        st.fixed_dictionaries(
            {"value": st.just(member) | texts}, optional={"display": texts, "$ref": st.none()}
        ),
        max_size=3,
    )
    return st.one_of(
        st.fixed_dictionaries({"op": op, "path": st.just("members"), "value": members}),
        st.fixed_dictionaries(
            {"op": op, "path": st.just(f'members[value eq "{member}"]')}, optional={"value": texts}
        ),
        st.fixed_dictionaries({"op": op, "path": st.just("displayName"), "value": texts}),
        st.fixed_dictionaries(
            {
                "op": op,
                "value": st.fixed_dictionaries(
                    {}, optional={"displayName": texts, "id": st.just(member), "members": members}
                ),
            }
        ),
    )


@st.composite
def operations(draw: st.DrawFn, paths: list[str], member: str) -> list[dict[str, Any]]:
    ops = []
    plausible = (
        plausible_group_operations(member)
        if paths[0] == "members"
        else plausible_user_operations(member)
    )
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 3)):
            ops.append(draw(plausible))
            continue
        op: dict[str, Any] = {}
        name = draw(st.sampled_from(OPS))
        if name is not None:
            op["op"] = name
        if draw(st.booleans()):
            op["path"] = draw(st.sampled_from(paths) | texts).replace("{member}", member)
        if draw(st.booleans()):
            op["value"] = draw(
                values
                | st.just([{"value": member}])
                | st.dictionaries(st.sampled_from(USER_ATTRIBUTES), values, max_size=2)
            )
        ops.append(op)
    return ops


@st.composite
def patch_bodies(draw: st.DrawFn, paths: list[str], member: str) -> Any:
    ops = draw(operations(paths, member))
    body: Any = {"schemas": [PATCH_SCHEMA], "Operations": ops}
    shape = draw(st.integers(0, 19))  # mostly well-formed envelopes
    if shape == 0:
        body["schemas"] = draw(json_values)
    elif shape == 1:
        body["Operations"] = draw(json_values)
    elif shape == 2:
        body = draw(json_values)
    return body


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")


@FUZZ
@given(body=user_documents(), flag=st.booleans())
def test_generated_user_creates_and_replaces(
    directory: Directory, body: dict[str, Any], flag: bool
) -> None:
    created = directory.client.post(_url(directory, "/Users", flag), content=_dumps(body))
    _assert_answered(created)
    if created.status_code == 201:
        path = f"/Users/{created.json()['id']}"
        assert get_resource(directory, path) == created.json()
    user = create_user(directory)
    path = f"/Users/{user['id']}"
    # A userName the create took would collide (409): the replacement keeps the user's.
    name = user["userName"] if created.status_code == 201 else body.get("userName")
    replacement = {**body, "userName": name}
    replaced = directory.client.put(_url(directory, path, flag), content=_dumps(replacement))
    _assert_answered(replaced)
    _same_or_changed(directory, path, user, replaced.status_code == 200)


@FUZZ
@given(data=st.data(), flag=st.booleans())
def test_generated_user_patches(directory: Directory, data: st.DataObject, flag: bool) -> None:
    user = create_user(directory)
    path = f"/Users/{user['id']}"
    body = data.draw(patch_bodies(USER_PATHS, user["id"]))
    response = directory.client.patch(_url(directory, path, flag), content=_dumps(body))
    _assert_answered(response)
    _same_or_changed(directory, path, user, response.status_code in (200, 204))
    if response.status_code == 200:
        assert get_resource(directory, path) == response.json()


@FUZZ
@given(data=st.data(), flag=st.booleans())
def test_generated_group_patches(directory: Directory, data: st.DataObject, flag: bool) -> None:
    member = create_user(directory)["id"]
    group = create_group(directory, members=[{"value": member}])
    path = f"/Groups/{group['id']}"
    body = data.draw(patch_bodies(GROUP_PATHS, member))
    response = directory.client.patch(_url(directory, path, flag), content=_dumps(body))
    _assert_answered(response)
    _same_or_changed(directory, path, group, response.status_code in (200, 204))
    created = directory.client.post(
        _url(directory, "/Groups", flag),
        content=_dumps(
            group_body(
                **data.draw(
                    st.dictionaries(
                        st.sampled_from(["displayName", "members", "externalId", "schemas", "id"])
                        | texts,
                        values,
                        max_size=2,
                    )
                )
            )
        ),
    )
    _assert_answered(created)


filter_parts = st.sampled_from(
    [
        "userName",
        "emails",
        "emails.value",
        'emails[type eq "work"]',
        "name.givenName",
        "active",
        "meta.created",
        "meta.lastModified",
        "members",
        "displayName",
        f"{ENTERPRISE}:employeeNumber",
        " eq ",
        " ne ",
        " co ",
        " sw ",
        " gt ",
        " pr",
        " and ",
        " or ",
        "not (",
        "(",
        ")",
        "[",
        "]",
        '"a"',
        '"2026-01-01T00:00:00Z"',
        "true",
        "null",
        "1",
        "1e999",
        '"\\"',
        "'",
    ]
)
comparisons = st.builds(
    "{} {} {}".format,
    st.sampled_from(
        [
            "userName",
            "displayName",
            "emails.value",
            'emails[type eq "work"].value',
            "externalId",
            "active",
            "meta.lastModified",
            "members.value",
            f"{ENTERPRISE}:employeeNumber",
        ]
    ),
    st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ"]),
    texts.map(json.dumps)
    | st.sampled_from(["true", "false", "null", "1", '"2026-01-01T00:00:00Z"']),
)
filters = (
    st.lists(comparisons, min_size=1, max_size=3).map(" and ".join)
    | st.lists(comparisons, min_size=2, max_size=3).map(lambda c: f"not ({' or '.join(c)})")
    | st.lists(filter_parts | texts, min_size=1, max_size=8).map("".join)
)


@FUZZ
@given(
    expression=filters,
    resource=st.sampled_from(["/Users", "/Groups"]),
    extra=st.dictionaries(
        st.sampled_from(
            ["sortBy", "sortOrder", "startIndex", "count", "attributes", "excludedAttributes"]
        ),
        texts | st.integers(-(2**40), 2**40).map(str),
        max_size=3,
    ),
)
def test_generated_list_queries(
    directory: Directory, expression: str, resource: str, extra: dict[str, str]
) -> None:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in {"filter": expression, **extra}.items())
    _assert_answered(directory.client.get(directory.url(f"{resource}?{query}")))

    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": expression,
        **extra,
    }
    _assert_answered(
        directory.client.post(directory.url(f"{resource}/.search"), content=_dumps(search))
    )
