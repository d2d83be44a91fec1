"""The audit log's peer: X-Forwarded-For is believed only from a trusted proxy
(SAAS_TRUSTED_PROXIES, e.g. Envoy, which appends the address it saw); any other connection
is recorded as its own address, whatever X-Forwarded-For it wrote."""

from __future__ import annotations

import pytest

from server.services.auth import Authenticator, TrustedProxies, peer_address
from server.settings import LOOPBACK, parse_trusted_proxies
from tests.conftest import ADMIN_KEY

ADMIN = {"x-admin-key": ADMIN_KEY}
ENVOY = "ipv4:10.0.0.7:40312"  # a gateway pod, in the trusted range below
CLIENT = "ipv4:10.1.0.9:51000"  # any other pod: not trusted


def peer(gRPC_peer: str | None, forwarded: str | None = None, trusted: str = "10.0.0.0/24, fd00::/64") -> str:
    auth = Authenticator(None, ADMIN_KEY, trusted_proxies=parse_trusted_proxies(trusted))  # type: ignore[arg-type]
    metadata = ADMIN if forwarded is None else {**ADMIN, "x-forwarded-for": forwarded}
    return auth.admin(metadata, gRPC_peer).peer


def test_a_trusted_proxy_s_last_forwarded_entry_is_the_peer():
    # Envoy appends the address it saw; what the client wrote before it is not believed.
    assert peer(ENVOY, "6.6.6.6, 203.0.113.5") == "203.0.113.5"
    assert peer(ENVOY, "203.0.113.5") == "203.0.113.5"
    assert peer(ENVOY, " 2001:DB8::5 ") == "2001:db8::5"


def test_an_untrusted_connection_is_recorded_as_itself_whatever_it_forwards():
    assert peer(CLIENT, "6.6.6.6") == CLIENT
    assert peer(CLIENT, "6.6.6.6, 203.0.113.5") == CLIENT
    assert peer("ipv4:127.0.0.1:5000", "6.6.6.6") == "ipv4:127.0.0.1:5000"  # loopback is not in this list


def test_without_forwarded_for_the_peer_is_the_connection():
    assert peer(ENVOY) == ENVOY
    assert peer(CLIENT) == CLIENT
    assert peer(None) == peer("") == ""  # context.peer() may be None
    assert peer(None, "6.6.6.6") == ""  # no connection address: not a trusted proxy either


@pytest.mark.parametrize("forwarded", ["", " ", "6.6.6.6,", "6.6.6.6, not-an-ip", "203.0.113.5:80", "[::1]", "x" * 500])
def test_a_malformed_last_entry_from_a_trusted_proxy_leaves_the_connection(forwarded):
    assert peer(ENVOY, forwarded) == ENVOY


def test_ipv6_peers_as_grpc_writes_them():
    # gRPC percent-encodes the brackets of an IPv6 peer.
    trusted = "ipv6:%5Bfd00::7%5D:40312"
    assert peer(trusted, "6.6.6.6, 2001:db8::5") == "2001:db8::5"
    assert peer("ipv6:%5Bfd00:1::7%5D:40312", "6.6.6.6") == "ipv6:%5Bfd00:1::7%5D:40312"
    assert peer("ipv6:[fd00::7]:40312", "203.0.113.5") == "203.0.113.5"  # unencoded, too


def test_an_ipv4_mapped_ipv6_peer_matches_the_ipv4_ranges():
    # A dual-stack socket may show an IPv4 client as ::ffff:a.b.c.d.
    assert peer("ipv6:%5B::ffff:10.0.0.7%5D:40312", "6.6.6.6, 203.0.113.5") == "203.0.113.5"
    assert peer("ipv6:%5B::ffff:10.1.0.9%5D:51000", "6.6.6.6") == "ipv6:%5B::ffff:10.1.0.9%5D:51000"
    # ... and an IPv4-mapped range written as such matches it too.
    assert peer("ipv6:%5B::ffff:10.1.0.9%5D:51000", "203.0.113.5", trusted="::ffff:10.1.0.0/120") == "203.0.113.5"


def test_a_unix_socket_peer_is_never_a_trusted_proxy():
    assert peer("unix:/run/saas.sock", "6.6.6.6") == "unix:/run/saas.sock"
    assert peer("unix:", "6.6.6.6", trusted="0.0.0.0/0, ::/0") == "unix:"


def test_the_default_trusts_loopback_only():
    auth = Authenticator(None, ADMIN_KEY, trusted_proxies=LOOPBACK)  # type: ignore[arg-type]
    envoy_on_this_host = {**ADMIN, "x-forwarded-for": "6.6.6.6, 192.0.2.2"}
    for loopback in (
        "ipv4:127.0.0.1:5000",
        "ipv4:127.0.0.2:5000",
        "ipv6:%5B::1%5D:5000",
        "ipv6:%5B::ffff:127.0.0.1%5D:1",
    ):
        assert auth.admin(envoy_on_this_host, loopback).peer == "192.0.2.2", loopback
    assert auth.admin(envoy_on_this_host, "ipv4:10.0.0.7:5000").peer == "ipv4:10.0.0.7:5000"


def test_an_authenticator_told_nothing_trusts_nobody():
    auth = Authenticator(None, ADMIN_KEY)  # type: ignore[arg-type]
    assert auth.admin({**ADMIN, "x-forwarded-for": "6.6.6.6"}, "ipv4:127.0.0.1:5000").peer == "ipv4:127.0.0.1:5000"


@pytest.mark.parametrize(
    ("grpc_peer", "address"),
    [
        ("ipv4:127.0.0.1:54321", "127.0.0.1"),
        ("ipv6:%5B::1%5D:5000", "::1"),
        ("ipv6:[::1]:5000", "::1"),
        ("ipv6:%5Bfe80::1%25eth0%5D:5000", "fe80::1%eth0"),
        ("unix:/tmp/s.sock", None),
        ("unix-abstract:x", None),
        ("", None),
        ("ipv4:not-an-ip:1", None),
    ],
)
def test_peer_address_reads_grpc_s_peer_strings(grpc_peer, address):
    found = peer_address(grpc_peer)
    assert (None if found is None else str(found)) == address


def test_the_check_is_remembered_per_peer():
    proxies = TrustedProxies(parse_trusted_proxies("10.0.0.0/24"))
    for _ in range(3):
        assert proxies.trusts(ENVOY) and not proxies.trusts(CLIENT)
    info = proxies.trusts.cache_info()
    assert (info.misses, info.hits) == (2, 4)
