"""Directory bearer tokens: generated, hashed and checked here and nowhere else.

A token is ``scimgate_`` + 43 base64url characters (256 random bits), so secret scanners
can recognise a leaked one by its prefix. Only its SHA-256 is stored: with 256 bits of
entropy a slow password hash adds nothing, and a fast hash keeps every request cheap.
Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "scimgate_"


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_hint(token: str) -> str:
    """A harmless, recognisable fragment for listings: the prefix and last 4 characters."""
    return f"{TOKEN_PREFIX}…{token[-4:]}"


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token).encode(), stored_hash.encode())
