"""Which webhook targets are refused unless SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS is set
(server/domain/webhooks.py): every spelling of a host on this machine or a private
network, at creation; public hosts pass."""

from __future__ import annotations

import pytest

from server.domain import webhooks
from server.domain.errors import DomainError
from server.settings import Settings, SettingsError

REFUSED = [
    # IPv4: loopback, link-local (cloud metadata), private, CGNAT, unspecified, multicast, broadcast
    ("http://127.0.0.1:9901/quitquitquit", "a loopback address (127.0.0.1)"),
    ("http://127.255.255.254/", "a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address (169.254.169.254)"),
    ("http://10.1.2.3/", "a private address"),
    ("http://172.16.0.1/", "a private address"),
    ("http://192.168.0.10:8080/h", "a private address"),
    ("http://100.64.0.1/", "a private address"),
    ("http://0.0.0.0/", "an unspecified address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://255.255.255.255/", "a private address"),
    ("http://240.0.0.1/", "a private address"),
    # IPv4 written as a resolver (inet_aton) or the WHATWG URL standard reads it
    ("http://2130706433/", "a loopback address (127.0.0.1)"),
    ("http://0x7f000001/", "a loopback address (127.0.0.1)"),
    ("http://0x7F.1/", "a loopback address (127.0.0.1)"),
    ("http://0177.0.0.1/", "a loopback address (127.0.0.1)"),
    ("http://127.1/", "a loopback address (127.0.0.1)"),
    ("http://127.0.0.1./", "a loopback address (127.0.0.1)"),
    ("http://0/", "an unspecified address (0.0.0.0)"),
    ("http://2852039166/", "a link-local address (169.254.169.254)"),
    ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "a loopback address (127.0.0.1)"),  # fullwidth digits
    ("http://127。0。0。1/", "a loopback address (127.0.0.1)"),
    ("http://1.2.3.4.5/", "a host that ends in a number without being a valid IPv4 address"),
    ("http://256.0.0.1/", "a host that ends in a number"),
    # IPv6, and IPv6 that carries an IPv4 address
    ("http://[::1]:8080/", "a loopback address (::1)"),
    ("http://[::]/", "an unspecified address"),
    ("http://[fe80::1]/", "a link-local address"),
    ("http://[fe80::1%25eth0]/", "a link-local address"),
    ("http://[fd00::1]/", "a private address"),
    ("http://[fec0::1]/", "a reserved address"),
    ("http://[ff02::1]/", "a multicast address"),
    ("http://[::ffff:127.0.0.1]/", "a loopback address"),
    ("http://[::ffff:a9fe:a9fe]/", "a link-local address"),
    ("http://[::127.0.0.1]/", "a loopback address"),
    ("http://[64:ff9b::a9fe:a9fe]/", "a link-local address"),
    ("http://[2002:7f00:1::]/", "a loopback address"),
    # names local by definition, in any case, with a trailing dot
    ("http://localhost:8003/api", "a local host name (localhost)"),
    ("http://LOCALHOST./", "a local host name (localhost)"),
    ("http://api.localhost/", "a local host name (api.localhost)"),
    ("http://ⓛocalhost/", "a local host name (localhost)"),  # IDNA maps it to localhost
    ("http://printer.local/", "a local host name"),
    ("http://router.home.arpa/", "a local host name"),
    ("http://metadata.google.internal/computeMetadata/v1/", "a local host name"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_hosts_on_this_machine_or_a_private_network_are_refused_naming_the_url(url, why):
    with pytest.raises(DomainError) as raised:
        webhooks.endpoint_spec(url, ["job.failed"], "", "")
    error = raised.value
    assert error.violations[0].field == "url"
    assert error.message.startswith(f"url: must not point at {why}"), error.message
    assert "SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS=true" in error.message
    # Allowed on request (make dev, the tests), except what is no address at all.
    if "ends in a number" not in why:
        assert webhooks.endpoint_spec(url, ["job.failed"], "", "", allow_private_targets=True).url == url


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/saas",
        "http://93.184.215.14:8080/h",
        "https://1.1/",  # 1.0.0.1, public
        "https://[2606:4700:4700::1111]/h",
        "https://[64:ff9b::808:808]/h",  # NAT64 of 8.8.8.8
        "https://localhost.example.com/",
        "https://internal.example.com/",
        "https://example.localhost.com/",
        "https://host-127.0.0.1.example.com/",
    ],
)
def test_public_hosts_are_accepted(url):
    assert webhooks.endpoint_spec(url, ["job.failed"], "", "").url == url


def test_a_malformed_ipv6_url_is_refused_naming_the_url():
    with pytest.raises(DomainError) as raised:
        webhooks.endpoint_spec("http://[::1/", ["job.failed"], "", "")
    assert raised.value.violations[0].field == "url"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("10.0.0.7", "a private address"),
        ("::ffff:10.0.0.7", "a private address"),
        ("0.0.0.0", "an unspecified address"),
        ("not an address", "a host that is not a valid IP address"),
    ],
)
def test_resolved_addresses_that_are_not_public_are_refused(address, why):
    assert (webhooks.address_refusal(address) or "").startswith(why)


def test_public_resolved_addresses_pass():
    for address in ("93.184.215.14", "2606:4700:4700::1111", "8.8.8.8"):
        assert webhooks.address_refusal(address) is None


BASE = {"DATABASE_URL": "postgresql://u@127.0.0.1/db", "SAAS_ADMIN_KEY": "sk-admin-0123456789abcdef"}


def test_private_targets_are_refused_unless_the_operator_allows_them():
    assert Settings.from_env(BASE).webhook_allow_private_targets is False
    for value, allowed in [
        ("true", True),
        (" TRUE ", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("0", False),
    ]:
        settings = Settings.from_env({**BASE, "SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS": value})
        assert settings.webhook_allow_private_targets is allowed, value
    with pytest.raises(SettingsError, match="SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS must be true or false"):
        Settings.from_env({**BASE, "SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "sometimes"})
