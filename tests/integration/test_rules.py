"""Directory rules: what the host app accepts. A violating write gets a SCIM 400
invalidValue naming the attribute and the rule, and nothing is stored."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from scimgate.directory.rules import Rules, check, parse_rules, values_at
from scimgate.errors import InvalidInput
from tests.live import Directory, LiveServer

RULES = {
    "required": ['emails[type eq "work"].value', "name.familyName"],
    "max_lengths": {"userName": 40},
    "user_name_pattern": r"^[A-Za-z0-9@._-]+$",
    "allowed_email_domains": ["contoso.com"],
}


def _user(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"u{uuid.uuid4().hex[:8]}@contoso.com",
        "name": {"familyName": "Doe"},
        "emails": [{"type": "work", "value": "j@contoso.com", "primary": True}],
    }
    body.update(overrides)
    return body


@pytest.fixture()
def ruled(server: LiveServer, directory: Directory) -> Directory:
    out = server.cli("directory", "rules", directory.id, "--set", json.dumps(RULES))
    assert out["rules"]["max_lengths"] == {"userName": 40}
    return directory


@pytest.mark.parametrize(
    ("overrides", "culprit"),
    [
        ({"emails": [{"type": "home", "value": "j@contoso.com"}]}, 'emails[type eq "work"].value'),
        ({"name": {"givenName": "J"}}, "name.familyName"),
        ({"userName": "x" * 30 + "@contoso.com"}, "userName"),
        ({"userName": "bad name@contoso.com"}, "does not match the pattern"),
        ({"emails": [{"type": "work", "value": "j@evil.example"}]}, "allowed domain"),
    ],
)
def test_a_violating_create_is_refused_and_nothing_stored(
    ruled: Directory, overrides: dict[str, Any], culprit: str
) -> None:
    body = _user(**overrides)
    r = ruled.client.post(ruled.url("/Users"), json=body)
    assert r.status_code == 400, r.text
    error = r.json()
    assert error["scimType"] == "invalidValue"
    assert culprit in error["detail"]
    found = ruled.client.get(
        ruled.url("/Users"), params={"filter": f'userName eq "{body["userName"]}"'}
    ).json()
    assert found["totalResults"] == 0


def test_patch_and_put_are_checked_too(ruled: Directory) -> None:
    created = ruled.client.post(ruled.url("/Users"), json=_user())
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    bad_patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": "name.familyName"}],
    }
    r = ruled.client.patch(ruled.url(f"/Users/{uid}"), json=bad_patch)
    assert r.status_code == 400 and "name.familyName" in r.json()["detail"]
    r = ruled.client.put(ruled.url(f"/Users/{uid}"), json=_user(userName="a b@contoso.com"))
    assert r.status_code == 400 and "pattern" in r.json()["detail"]
    still = ruled.client.get(ruled.url(f"/Users/{uid}")).json()
    assert still["name"]["familyName"] == "Doe"
    assert still["meta"]["version"] == created.json()["meta"]["version"]


def test_clearing_rules_accepts_again(server: LiveServer, ruled: Directory) -> None:
    server.cli("directory", "rules", ruled.id, "--clear")
    r = ruled.client.post(ruled.url("/Users"), json=_user(userName="any name@else.example"))
    assert r.status_code == 201, r.text


def test_values_at_understands_scim_paths() -> None:
    doc = {
        "userName": "a",
        "emails": [{"type": "work", "value": "w@x"}, {"type": "home", "value": "h@x"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
    }
    assert values_at(doc, "emails.value") == ["w@x", "h@x"]
    assert values_at(doc, 'emails[type eq "home"].value') == ["h@x"]
    assert values_at(doc, 'EMAILS[type eq "WORK"].VALUE') == ["w@x"]
    assert values_at(
        doc, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
    ) == ["R&D"]
    assert values_at(doc, "title") == []
    check(Rules(required=("userName",)), doc)


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"nosuch": 1},
        {"required": "userName"},
        {"max_lengths": {"userName": 0}},
        {"user_name_pattern": "("},
        {"allowed_email_domains": [1]},
    ],
)
def test_invalid_rule_documents_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_rules(bad)


def test_rules_never_block_deprovisioning_of_existing_users(
    server: LiveServer, directory: Directory
) -> None:
    """Regression: a user stored before a rule existed could not be deactivated
    (PATCH active=False got 400 'required'). Updates are refused only when they introduce
    a violation."""
    created = directory.client.post(directory.url("/Users"), json=_user(emails=None))
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    server.cli("directory", "rules", directory.id, "--set", json.dumps(RULES))
    disable = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    r = directory.client.patch(directory.url(f"/Users/{uid}"), json=disable)
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    # …but a change that introduces a new violation is still refused.
    rename = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "bad name@contoso.com"}],
    }
    r = directory.client.patch(directory.url(f"/Users/{uid}"), json=rename)
    assert r.status_code == 400 and "pattern" in r.json()["detail"]
