"""orjson must serve the documents scimgate really writes; the standard library is only the
fallback for what orjson cannot hold, with the same output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scimgate.scim.payloads import parse_user
from scimgate.store import jsoncodec

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _no_fallback(*_args: Any, **_kwargs: Any) -> str:
    raise AssertionError("the standard-library fallback ran")


def test_an_enterprise_user_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = parse_user(
        {
            "schemas": [USER, ENTERPRISE],
            "userName": "ada@contoso.com",
            ENTERPRISE: {"department": "R&D", "employeeNumber": "7"},
        }
    )
    assert any(type(k) is not str for k in doc), "scim2-models keys the extension by URN"
    expected = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    monkeypatch.setattr(jsoncodec.json, "dumps", _no_fallback)
    assert jsoncodec.dumps_bytes(doc).decode() == expected
    assert json.loads(jsoncodec.dumps(doc)) == json.loads(expected)


def test_big_integers_fall_back_with_the_same_value() -> None:
    doc = {"n": 2**70, "s": "é"}
    assert json.loads(jsoncodec.dumps(doc)) == doc
    assert jsoncodec.dumps_bytes(doc) == '{"n":1180591620717411303424,"s":"é"}'.encode()
