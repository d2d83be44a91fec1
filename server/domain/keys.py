"""Virtual keys: random, shown once, stored only as a SHA-256 digest.

Keys carry 256 bits of randomness, so a fast unsalted digest is enough: there is nothing
to brute-force. The prefix (`sk-` and 8 more characters) identifies a key in lists and logs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "sk-"
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8


@dataclass(frozen=True)
class NewKey:
    secret: str
    prefix: str
    digest: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"NewKey(prefix={self.prefix!r})"


def new_key() -> NewKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(secret=secret, prefix=secret[:DISPLAY_PREFIX_LENGTH], digest=digest(secret))


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def matches(secret: str, expected_digest: bytes) -> bool:
    """Constant-time comparison of a presented secret with a stored digest."""
    return hmac.compare_digest(digest(secret), expected_digest)
