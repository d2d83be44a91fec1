"""Webhooks: what events exist, how endpoints are checked, how deliveries are signed.

Deliveries follow the Standard Webhooks specification (standardwebhooks.com), so any of
its libraries verifies them: headers `webhook-id` (the event id, the same on every
retry: deduplicate on it), `webhook-timestamp` (Unix seconds) and `webhook-signature`
(`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the endpoint's secret, which is
`whsec_` + base64 of 32 random bytes, shown once at creation).

Secrets are stored only sealed (AES-GCM under a key derived from SAAS_SECRETS_KEY, the
endpoint id as associated data), since the sender, unlike a key check, needs the secret
itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.domain import validation
from server.domain.errors import DomainError, Kind, invalid_argument

EVENT_TYPES = ("team.credits_low", "team_key.expiring", "job.completed", "job.failed", "job.expired")
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
MAX_ATTEMPTS = 12
# Delay before attempt n+1 after n failed ones: 5 s, 30 s, 2 min, 10 min, 30 min, then
# hourly, about 7 hours in all before the delivery is marked failed.
_DELAYS = (5, 30, 120, 600, 1800)
_LAST_DELAY = 3600


def retry_delay_seconds(failed_attempts: int) -> float | None:
    """Seconds until the next attempt after `failed_attempts`; None: give up."""
    if failed_attempts >= MAX_ATTEMPTS:
        return None
    return float(_DELAYS[failed_attempts - 1] if failed_attempts <= len(_DELAYS) else _LAST_DELAY)


@dataclass(frozen=True)
class EndpointSpec:
    url: str
    event_types: tuple[str, ...]
    organization_id: str | None
    description: str


def endpoint_spec(url: str, event_types: list[str], organization_id: str, description: str) -> EndpointSpec:
    """Validate an endpoint an operator asked for, naming the first bad field."""
    if not url:
        raise invalid_argument("url", "is required")
    if len(url) > MAX_URL_LENGTH:
        raise invalid_argument("url", f"must be at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_argument("url", "must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise invalid_argument("url", "must not carry credentials; verify the signature instead")
    if not event_types:
        raise invalid_argument("event_types", f"must name at least one of {', '.join(EVENT_TYPES)}")
    for index, kind in enumerate(event_types):
        if kind not in EVENT_TYPES:
            raise invalid_argument(f"event_types[{index}]", f"must be one of {', '.join(EVENT_TYPES)}")
    if organization_id:
        validation.identifier("organization_id", organization_id)
    validation.text("description", description)
    return EndpointSpec(url, tuple(dict.fromkeys(event_types)), organization_id or None, description)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_prefix(secret: str) -> str:
    """What lists show of a secret: enough to tell two apart, too little to use."""
    return secret[: len(SECRET_PREFIX) + 4]


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value of one delivery."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


class SecretBox:
    """Seals and opens endpoint secrets with AES-GCM; the endpoint id is bound as AAD, so
    a sealed secret copied to another endpoint's row does not open."""

    def __init__(self, passphrase: str) -> None:
        # SAAS_SECRETS_KEY is a random string of 32 characters or more: one SHA-256 makes
        # it a 256-bit key (a password-stretching KDF adds nothing to a random key).
        self._aead = AESGCM(hashlib.sha256(passphrase.encode()).digest())

    def seal(self, endpoint_id: uuid.UUID, secret: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret.encode(), endpoint_id.bytes)

    def open(self, endpoint_id: uuid.UUID, sealed: bytes) -> str:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], endpoint_id.bytes).decode()
        except InvalidTag:
            raise SecretUnreadable(endpoint_id) from None


class SecretUnreadable(Exception):
    """A sealed secret that this SAAS_SECRETS_KEY does not open (the key changed)."""


def not_configured() -> DomainError:
    return DomainError(
        Kind.FAILED_PRECONDITION,
        "WEBHOOKS_NOT_CONFIGURED",
        "webhooks need SAAS_SECRETS_KEY (a random string of at least 32 characters) to seal their signing "
        "secrets; set it on every server process and restart",
    )
