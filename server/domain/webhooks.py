"""Webhooks: what events exist, how endpoints are checked, how deliveries are signed.

Deliveries follow the Standard Webhooks specification (standardwebhooks.com), so any of
its libraries verifies them: headers `webhook-id` (the event id, the same on every
retry: deduplicate on it), `webhook-timestamp` (Unix seconds) and `webhook-signature`
(`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the endpoint's secret, which is
`whsec_` + base64 of 32 random bytes, shown once at creation).

Secrets are stored only sealed (AES-GCM under a key derived from SAAS_SECRETS_KEY, the
endpoint id as associated data), since the sender, unlike a key check, needs the secret
itself.

Targets: unless the operator allows private targets (SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS),
a webhook must not reach this machine or its network (loopback, link-local such as the
cloud metadata service at 169.254.169.254, private, unspecified, multicast or reserved
addresses), or an admin could make the server POST to internal services and read their
answers' status codes in the deliveries list. `host_refusal` refuses such hosts written
in a URL, in every form a resolver accepts (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`,
`localhost.`...), at creation and again before each send; `address_refusal` checks each
address a name resolves to when the sender connects (server/services/webhooks.py), so a
name that resolves to a private address, or starts to (DNS rebinding), is not delivered to.
"""

from __future__ import annotations

import base64
import encodings.idna
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.domain import validation
from server.domain.errors import DomainError, Kind, invalid_argument

EVENT_TYPES = (
    "team.credits_low",
    "team_key.expiring",
    "job.completed",
    "job.failed",
    "job.expired",
    "job.late_charge",
    "job.refunded",
)
JOB_REFUNDED = "job.refunded"
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
# What DNS (and the resolver's IDNA encoding) takes: labels of 1 to 63 characters, names
# of at most 253, counted in their ASCII (xn--) form.
MAX_LABEL_LENGTH = 63
MAX_HOST_NAME_LENGTH = 253
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


def endpoint_spec(
    url: str,
    event_types: list[str],
    organization_id: str,
    description: str,
    *,
    allow_private_targets: bool = False,
) -> EndpointSpec:
    """Validate an endpoint an operator asked for, naming the first bad field. A host
    on this machine or a private network is refused unless `allow_private_targets`; a
    host DNS cannot take (`host_name_flaw`) and a port outside 1-65535 always are, since
    no delivery to them could ever be made."""
    if not url:
        raise invalid_argument("url", "is required")
    if len(url) > MAX_URL_LENGTH:
        raise invalid_argument("url", f"must be at most {MAX_URL_LENGTH} characters")
    flaw = url_text_flaw(url)
    if flaw:
        raise invalid_argument("url", flaw)
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise invalid_argument("url", "must be an absolute http:// or https:// URL") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise invalid_argument("url", "must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise invalid_argument("url", "must not carry credentials; verify the signature instead")
    try:
        port = parts.port
    except ValueError:  # not a number (`:abc`), or above 65535
        port = 0
    if port == 0:
        raise invalid_argument("url", "must have a port from 1 to 65535, or none (80 for http, 443 for https)")
    flaw = host_name_flaw(hostname)
    if flaw:
        raise invalid_argument("url", flaw)
    if not allow_private_targets:
        refusal = host_refusal(hostname)
        if refusal:
            raise invalid_argument("url", f"must not point at {refusal}; {PRIVATE_TARGETS_HINT}")
    if not event_types:
        raise invalid_argument("event_types", f"must name at least one of {', '.join(EVENT_TYPES)}")
    for index, kind in enumerate(event_types):
        if kind not in EVENT_TYPES:
            raise invalid_argument(f"event_types[{index}]", f"must be one of {', '.join(EVENT_TYPES)}")
    if organization_id:
        validation.identifier("organization_id", organization_id)
    validation.text("description", description)
    return EndpointSpec(url, tuple(dict.fromkeys(event_types)), organization_id or None, description)


# ASCII characters no part of a URL may hold as they are (RFC 3986; they must be
# percent-encoded): urlsplit keeps them, and the sender's URL parser would refuse or
# re-encode them, so the endpoint would never get what the operator saw.
_URL_FORBIDDEN = frozenset('"<>\\^`{|}')
_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def url_text_flaw(url: str) -> str | None:
    """Why `url` is not written as a URL may be, or None: a space or other whitespace, a
    control or invisible formatting character, one of `"<>\\^`{|}`, or a `%` not followed
    by two hex digits. Other non-ASCII characters (an internationalised host name or
    path) are left to the URL parser."""
    for char in url:
        if char.isspace():
            return "must not contain spaces or other whitespace (write a space in a path as %20)"
        if unicodedata.category(char).startswith("C"):
            return f"must not contain the control or formatting character U+{ord(char):04X}"
        if char in _URL_FORBIDDEN:
            return f"must not contain {char!r} (percent-encode it)"
    if _PERCENT_ESCAPE.search(url):
        return "has a '%' not followed by two hex digits (write a literal % as %25)"
    return None


def host_name_flaw(host: str) -> str | None:
    """Why a URL's host name cannot be looked up, or None: an empty label (`a..com`,
    `.a.com`), a label over 63 characters or a name over 253 (in their ASCII form), or a
    label IDNA cannot encode. The resolver encodes the name under IDNA before any lookup
    and fails on such a name, so every delivery to it would fail. The host is read as
    IDNA reads it (NFKC, fullwidth dots), as `host_refusal` does; an IPv6 literal is left
    to `host_refusal`."""
    name = unicodedata.normalize("NFKC", host).translate(_DOTS)
    if ":" in name:
        return None
    bare = name[:-1] if name.endswith(".") else name  # one trailing dot: the DNS root
    if not bare:
        return "must have a host name"
    encoded = []
    for label in bare.split("."):
        if not label:
            return "must not have an empty label in its host name (two dots in a row, or a leading dot)"
        try:
            ascii_label = label if label.isascii() else encodings.idna.ToASCII(label).decode("ascii")
        except UnicodeError as error:  # a label that maps to nothing, or too long once encoded
            return f"has a host name label IDNA cannot encode ({label[:70]!r}: {error})"
        if len(ascii_label) > MAX_LABEL_LENGTH:
            return f"has a host name label of {len(ascii_label)} characters; DNS takes at most {MAX_LABEL_LENGTH}"
        encoded.append(ascii_label)
    length = len(".".join(encoded))
    if length > MAX_HOST_NAME_LENGTH:
        return f"has a host name of {length} characters; DNS takes at most {MAX_HOST_NAME_LENGTH}"
    return None


PRIVATE_TARGETS_HINT = (
    "webhooks go only to public addresses unless the server sets SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS=true"
)
# Names that are this machine or a local network by definition: `localhost` and its
# subdomains (RFC 6761), mDNS `.local` (RFC 6762), `.home.arpa` (RFC 8375) and ICANN's
# private-use `.internal` (GCP's metadata.google.internal, for one).
_LOCAL_NAMES = ("localhost",)
_LOCAL_SUFFIXES = (".localhost", ".local", ".home.arpa", ".internal")
# What IDNA (and so the sender's URL parser) reads as a label separator.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64 (RFC 6052) and
# the deprecated IPv4-compatible form (::a.b.c.d).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)


def host_refusal(host: str) -> str | None:
    """Why a URL's host must not be delivered to, or None when it may be (a name's
    addresses are checked again once resolved, by `address_refusal`).

    Refused: IP literals that are not public (in any form a resolver reads as an IPv4
    address: `127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`, per the WHATWG URL
    standard and inet_aton), hosts that end in a number without being an address, and
    names local by definition (`localhost`, `*.localhost`, `*.local`, `*.home.arpa`,
    `*.internal`). The host is read as IDNA would read it (NFKC, fullwidth dots), since
    that is what the sender's URL parser connects to."""
    name = unicodedata.normalize("NFKC", host).translate(_DOTS).lower().strip("[]")
    if ":" in name:  # only an IPv6 literal has one
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return "a host that is not a valid IPv6 address"
        return address_refusal(address)
    bare = name[:-1] if name.endswith(".") else name
    if not bare:
        return "an empty host name"
    if bare in _LOCAL_NAMES or bare.endswith(_LOCAL_SUFFIXES):
        return f"a local host name ({bare})"
    number = _ipv4_number(bare)
    if number is _NOT_AN_ADDRESS:
        return "a host that ends in a number without being a valid IPv4 address"
    if number is not None:
        return address_refusal(number)
    return None


def address_refusal(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address must not be delivered to (loopback, link-local, private...), or None
    when it is a public unicast address. IPv6 forms that carry an IPv4 address (mapped,
    NAT64, 6to4, IPv4-compatible) are judged by that address."""
    if isinstance(address, str):
        try:
            address = ipaddress.ip_address(address)
        except ValueError:
            return "a host that is not a valid IP address"
    kind = _kind(address)
    return None if kind is None else f"{kind} ({address})"


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:  # fe80::1%eth0: the zone does not change what the address is
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
        if address in _LOCAL_NAT64:
            return "a private address"
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and (address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1)):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _kind(embedded)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private or address in _SHARED:
        return "a private address"
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    if address.is_reserved or site_local or not address.is_global:
        return "a reserved address"
    return None


class _NotAnAddress:
    pass


_NOT_AN_ADDRESS = _NotAnAddress()


def _ipv4_number(host: str) -> ipaddress.IPv4Address | _NotAnAddress | None:
    """The IPv4 address a host written as numbers stands for (the WHATWG URL standard's
    IPv4 parser, which also reads what inet_aton reads); None when the host does not end
    in a number (a name); _NOT_AN_ADDRESS when it does but is no valid address."""
    parts = host.split(".")
    if not _is_number(parts[-1]):
        return None
    numbers = [_number(part) for part in parts]
    if len(parts) > 4 or None in numbers:
        return _NOT_AN_ADDRESS
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(parts)):
        return _NOT_AN_ADDRESS
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _is_number(part: str) -> bool:
    return (part.isascii() and part.isdigit()) or (part[:2] in ("0x", "0X") and _number(part) is not None)


def _number(part: str) -> int | None:
    """One part of a numeric IPv4 host: decimal, 0x hexadecimal or 0-prefixed octal."""
    if not part or not part.isascii():
        return None
    base, digits = 10, part
    if part[:2] in ("0x", "0X"):
        base, digits = 16, part[2:] or "0"
    elif len(part) > 1 and part[0] == "0":
        base, digits = 8, part[1:]
    try:
        return int(digits, base) if digits.isalnum() else None
    except ValueError:
        return None


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
