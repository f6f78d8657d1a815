"""The host app's acceptance rules for incoming users, per directory.

SaaS vendors publish what their app accepts ("userName required, no special characters,
max 1024; a work email is required"). A directory can carry those rules; a SCIM write that
breaks one is refused with a detail naming the attribute and the rule, so the IdP admin can
fix the attribute mapping from the provisioning log, and nothing is stored.

Rules document (JSON)::

    {"required": ["emails[type eq \\"work\\"].value", "name.familyName"],
     "max_lengths": {"userName": 1024, "displayName": 256},
     "user_name_pattern": "^[A-Za-z0-9@._-]+$",
     "allowed_email_domains": ["contoso.com"]}

Attribute paths are SCIM paths: dotted sub-attributes, ``urn:…:attr`` for extensions, and
``attr[type eq "x"].sub`` to pick typed elements of a multi-valued attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from scimgate.errors import InvalidInput

_VALUE_PATH = re.compile(
    r'^(?P<attr>[^\[\]]+)\[\s*type\s+eq\s+"(?P<type>[^"]*)"\s*\](?:\.(?P<sub>.+))?$', re.I
)
_MAX_PATTERN = 500


@dataclass(frozen=True)
class Rules:
    required: tuple[str, ...] = ()
    max_lengths: dict[str, int] = field(default_factory=dict)
    user_name_pattern: str | None = None
    allowed_email_domains: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "required": list(self.required),
            "max_lengths": dict(self.max_lengths),
            "user_name_pattern": self.user_name_pattern,
            "allowed_email_domains": list(self.allowed_email_domains),
        }


def parse_rules(raw: Any) -> Rules:
    """Validate a rules document (as stored, or as sent by an operator)."""
    if raw is None:
        return Rules()
    if not isinstance(raw, dict):
        raise InvalidInput("rules must be a JSON object")
    unknown = set(raw) - {"required", "max_lengths", "user_name_pattern", "allowed_email_domains"}
    if unknown:
        raise InvalidInput(f"unknown rule(s): {', '.join(sorted(unknown))}")
    required = raw.get("required") or []
    if not isinstance(required, list) or not all(isinstance(p, str) and p for p in required):
        raise InvalidInput("required must be a list of attribute paths")
    max_lengths = raw.get("max_lengths") or {}
    if not isinstance(max_lengths, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
        for k, v in max_lengths.items()
    ):
        raise InvalidInput("max_lengths must map attribute paths to positive integers")
    pattern = raw.get("user_name_pattern")
    if pattern is not None:
        if not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN:
            raise InvalidInput(f"user_name_pattern must be a regex of at most {_MAX_PATTERN} chars")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidInput(
                f"user_name_pattern is not a valid regular expression: {exc}"
            ) from exc
    domains = raw.get("allowed_email_domains") or []
    if not isinstance(domains, list) or not all(isinstance(d, str) and d for d in domains):
        raise InvalidInput("allowed_email_domains must be a list of domain names")
    return Rules(
        required=tuple(required),
        max_lengths=dict(max_lengths),
        user_name_pattern=pattern,
        allowed_email_domains=tuple(d.lower().lstrip("@") for d in domains),
    )


def _get(mapping: Any, key: str) -> Any:
    if not isinstance(mapping, dict):
        return None
    for k, v in mapping.items():
        if k.lower() == key.lower():
            return v
    return None


def values_at(doc: dict[str, Any], path: str) -> list[Any]:
    """Every value a SCIM path designates in a document (empty when absent)."""
    typed = _VALUE_PATH.match(path)
    type_filter: str | None = None
    if typed:
        path, type_filter, sub = typed["attr"], typed["type"], typed["sub"]
        if sub:
            path = f"{path}.{sub}"
    if path.lower().startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        current: list[Any] = [_get(doc, urn)]
        names = attr.split(".")
    else:
        current, names = [doc], path.split(".")
    for depth, name in enumerate(names):
        found: list[Any] = []
        for item in current:
            value = _get(item, name)
            items = value if isinstance(value, list) else [value]
            if depth == 0 and type_filter is not None:
                items = [
                    i for i in items if str(_get(i, "type") or "").lower() == type_filter.lower()
                ]
            found.extend(i for i in items if i is not None)
        current = found
    return [v for v in current if v not in ("", [], {})]


def violations(rules: Rules, doc: dict[str, Any]) -> list[str]:
    """Every rule a user document breaks, each as a message naming attribute and rule."""
    suffix = " (a rule of this application; adjust the attribute mapping in your IdP)"
    found: list[str] = []
    for path in rules.required:
        if not values_at(doc, path):
            found.append(f"{path} is required{suffix}")
    for path, limit in rules.max_lengths.items():
        for value in values_at(doc, path):
            if isinstance(value, str) and len(value) > limit:
                found.append(
                    f"{path} is {len(value)} characters long; at most {limit} allowed{suffix}"
                )
    if rules.user_name_pattern is not None:
        user_name = str(doc.get("userName", ""))
        if not re.fullmatch(rules.user_name_pattern, user_name):
            found.append(
                f"userName {user_name!r} does not match the pattern "
                f"{rules.user_name_pattern!r}{suffix}"
            )
    if rules.allowed_email_domains:
        allowed = ", ".join(rules.allowed_email_domains)
        for email in values_at(doc, "emails.value"):
            domain = str(email).rpartition("@")[2].lower()
            if domain not in rules.allowed_email_domains:
                found.append(
                    f"emails value {email!r} is not in an allowed domain ({allowed}){suffix}"
                )
    return found


def check(rules: Rules, doc: dict[str, Any], before: dict[str, Any] | None = None) -> None:
    """Raise InvalidInput for the first rule ``doc`` breaks.

    With ``before`` (an update), only violations the update introduces count: a user
    stored before a rule existed can still be deactivated or otherwise updated, so rules
    never block deprovisioning.
    """
    found = violations(rules, doc)
    if found and before is not None:
        existing = set(violations(rules, before))
        found = [v for v in found if v not in existing]
    if found:
        raise InvalidInput(found[0])
