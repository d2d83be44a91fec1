"""Webhook signing, sealing and checks (server/domain/webhooks.py): pure functions."""

from __future__ import annotations

import base64
import itertools
import uuid

import pytest

from server.domain import webhooks
from server.domain.errors import DomainError, Kind


def test_signatures_match_the_standard_webhooks_test_vector():
    # The specification's published example: receivers verify us with any of its libraries.
    signature = webhooks.sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_new_secrets_are_32_random_bytes_and_lists_show_only_a_prefix():
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert secret != webhooks.new_secret()
    assert webhooks.secret_prefix(secret) == secret[:10]


def test_sealed_secrets_open_only_with_the_key_and_for_their_endpoint():
    box = webhooks.SecretBox("k" * 32)
    endpoint, other = uuid.uuid4(), uuid.uuid4()
    sealed = box.seal(endpoint, "whsec_abc")
    assert b"whsec_abc" not in sealed and box.seal(endpoint, "whsec_abc") != sealed  # a fresh nonce each time
    assert box.open(endpoint, sealed) == "whsec_abc"
    with pytest.raises(webhooks.SecretUnreadable):
        box.open(other, sealed)  # copied to another endpoint's row
    with pytest.raises(webhooks.SecretUnreadable):
        webhooks.SecretBox("x" * 32).open(endpoint, sealed)  # the key changed


def test_retries_back_off_then_give_up():
    delays = [webhooks.retry_delay_seconds(n) for n in range(1, webhooks.MAX_ATTEMPTS + 1)]
    assert delays[:6] == [5, 30, 120, 600, 1800, 3600] and delays[-1] is None
    assert all(a <= b for a, b in itertools.pairwise(delays[:-1]))
    assert 6 * 3600 < sum(delays[:-1]) < 8 * 3600  # "about 7 hours", as documented


@pytest.mark.parametrize(
    ("url", "events", "field"),
    [
        ("", ["job.failed"], "url"),
        ("example.com/hooks", ["job.failed"], "url"),
        ("file:///etc/passwd", ["job.failed"], "url"),
        ("https://u:p@example.com/", ["job.failed"], "url"),
        ("https://example.com/" + "x" * 2048, ["job.failed"], "url"),
        ("https://example.com/", [], "event_types"),
        ("https://example.com/", ["job.failed", "job.done"], "event_types[1]"),
    ],
)
def test_bad_endpoints_name_the_field(url, events, field):
    with pytest.raises(DomainError) as raised:
        webhooks.endpoint_spec(url, events, "", "")
    assert raised.value.violations[0].field == field


@pytest.mark.parametrize(
    "url",
    [
        "http://exa mple.com/x",
        "https://a b/",
        "https://example.com/a b",
        " https://example.com/",
        "https://example.com/\t",
        "https://example.com/\u00a0",
        "https://example.com/x\ny",
        "https://example.com/\x00",
        "https://example.com/\u200b",
        'https://example.com/"x"',
        "https://example.com/<x>",
        "https://example.com/a\\b",
        "https://example.com/{x}",
        "https://example.com/a|b",
        "https://example.com/a^b",
        "https://example.com/a`b",
        "https://example.com/100%",
        "https://example.com/%zz",
    ],
)
def test_urls_with_characters_no_url_may_hold_are_refused_naming_url(url):
    with pytest.raises(DomainError) as raised:
        webhooks.endpoint_spec(url, ["job.failed"], "", "")
    assert raised.value.kind is Kind.INVALID_ARGUMENT
    assert [v.field for v in raised.value.violations] == ["url"]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks?a=1&b=%20x#frag",
        "https://example.com/a;b,c!$'()*+=~_-.@:",
        "https://bücher.example/hooks",
        "https://example.com/caf%C3%A9",
    ],
)
def test_urls_written_as_urls_may_be_are_accepted(url):
    assert webhooks.endpoint_spec(url, ["job.failed"], "", "").url == url


def test_an_endpoint_keeps_its_events_once_each_in_order():
    spec = webhooks.endpoint_spec("https://example.com/h", ["job.failed", "team.credits_low", "job.failed"], "", "d")
    assert spec.event_types == ("job.failed", "team.credits_low") and spec.organization_id is None


def test_the_dashboard_offers_the_servers_event_types():
    """The dashboard's form lists the event types itself (dashboard/src/api.ts); it must
    list the ones the server accepts, no more, no fewer."""
    import re

    from server.domain.webhooks import EVENT_TYPES
    from tests.conftest import ROOT

    source = (ROOT / "dashboard" / "src" / "api.ts").read_text()
    listed = re.search(r"WEBHOOK_EVENT_TYPES = \[(.*?)\] as const", source, re.S)
    assert listed is not None
    assert tuple(re.findall(r'"([^"]+)"', listed.group(1))) == EVENT_TYPES


LABEL_63 = "a" * 63


@pytest.mark.parametrize(
    ("url", "why"),
    [
        # The resolver encodes the host under IDNA before any lookup, and fails on these:
        # every delivery would fail, so the endpoint is refused when created.
        ("http://" + "a" * 70 + ".com/", "has a host name label of 70 characters; DNS takes at most 63"),
        ("https://hooks." + "b" * 64 + "/", "label of 64 characters"),
        ("http://a..com/", "must not have an empty label in its host name"),
        ("http://.a.com/", "must not have an empty label"),
        ("http://a.com../", "must not have an empty label"),
        ("http://./", "must have a host name"),
        ("https://" + "ü" * 60 + ".example/", "IDNA cannot encode"),  # over 63 in its xn-- form
        ("https://\u034f.example/", "IDNA cannot encode"),  # a label IDNA maps to nothing
        ("https://" + ".".join([LABEL_63] * 4) + "/", "has a host name of 255 characters; DNS takes at most 253"),
        # Ports the HTTP client cannot connect to
        ("http://example.com:99999/", "must have a port from 1 to 65535"),
        ("http://example.com:65536/", "must have a port from 1 to 65535"),
        ("http://example.com:abc/", "must have a port from 1 to 65535"),
        ("http://example.com:+1/", "must have a port from 1 to 65535"),
        ("http://example.com:0/", "must have a port from 1 to 65535"),
        ("http://[2606:4700::1111]:70000/", "must have a port from 1 to 65535"),
    ],
)
def test_hosts_that_cannot_be_looked_up_and_bad_ports_are_refused_naming_url(url, why):
    for allow_private_targets in (False, True):  # no use to any receiver, private or not
        with pytest.raises(DomainError) as raised:
            webhooks.endpoint_spec(url, ["job.failed"], "", "", allow_private_targets=allow_private_targets)
        assert raised.value.kind is Kind.INVALID_ARGUMENT
        assert [v.field for v in raised.value.violations] == ["url"]
        assert raised.value.message.startswith("url: ") and why in raised.value.message, raised.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://" + LABEL_63 + ".com/",
        "https://" + ".".join([LABEL_63] * 3 + ["a" * 61]) + "/",  # 253 characters
        "https://" + ".".join([LABEL_63] * 3 + ["a" * 61]) + "./",  # and the root's dot
        "https://example.com./hooks",
        "https://bücher.example/hooks",
        "https://example.com:1/",
        "https://example.com:65535/",
        "https://example.com:/",  # an empty port: the scheme's
        "https://[2606:4700:4700::1111]:8443/h",
        "https://_hooks.example.com/",
    ],
)
def test_hosts_dns_takes_and_ports_from_1_to_65535_are_accepted(url):
    assert webhooks.endpoint_spec(url, ["job.failed"], "", "").url == url
