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


LOADS_CASES = [
    '{"userName":"ada@contoso.com","active":true,"n":null,"f":1.5,"e":[]}',
    '{"n": 9223372036854775807, "m": -9223372036854775808}',
    '{"n": 18446744073709551615, "m": -9223372036854775809}',
    '{"n": 1180591620717411303425}',
    '{"f": 0.12345678901234567890123, "g": 1e-7, "h": -0.0, "i": 1E5}',
    '{"s": "\\ud800 lone", "t": "\\ud83d\\ude00"}',
    '{"a": 1, "a": 2}',
    '{"deep": [[[[[{"x": "é"}]]]]]}',
    '{"x": 1e400}',
]


@pytest.mark.parametrize("text", LOADS_CASES)
def test_loads_reads_what_the_standard_library_reads(text: str) -> None:
    expected = json.loads(text)
    for given in (text, text.encode()):
        got = jsoncodec.loads(given)
        assert got == expected and repr(got) == repr(expected)


@pytest.mark.parametrize(
    "raw",
    [b'{"x": NaN}', b"\xef\xbb\xbf{}", '{"é": 1}'.encode("utf-16"), b'{"x": }', b"\xff{}"],
    ids=["nan", "bom", "utf-16", "syntax", "bad-utf-8"],
)
def test_loads_falls_back_to_the_standard_library_with_its_options(raw: bytes) -> None:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} refused")

    try:
        expected: Any = json.loads(raw, parse_constant=refuse)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        with pytest.raises(type(exc)):
            jsoncodec.loads(raw, parse_constant=refuse)
    else:
        assert jsoncodec.loads(raw, parse_constant=refuse) == expected


def test_an_ordinary_document_is_read_by_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"userName": "ada@contoso.com", "id": "01a24271-d76d-770c-95f8-abbd8f33ba1b", "n": 7}
    monkeypatch.setattr(jsoncodec.json, "loads", _no_fallback)
    assert jsoncodec.loads(json.dumps(doc)) == doc
    assert jsoncodec.loads(json.dumps(doc).encode()) == doc
