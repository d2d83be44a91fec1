"""Pure rules of the admin API: pages, team updates, key rotation, the key cache,
usage reports and audit snapshots."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from server.domain import analytics, audit, pagination, tenancy
from server.domain.credits import TeamStatus
from server.domain.errors import DomainError
from server.domain.tenancy import CreatedKey, KeyState, TeamKey
from server.services.auth import KeyCache, KeyChanges
from server.storage.keys import KeyOwner

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def field_of(error: DomainError) -> str:
    return error.metadata.get("field", "")


# ------------------------------------------------------------------------ pagination


def test_page_tokens_round_trip_and_are_tied_to_their_filters():
    first = pagination.page_request(2, "", {"status": "active"})
    page = pagination.page(["a", "b", "c"], first, lambda item: (item,))
    assert page.items == ("a", "b") and page.next_page_token
    second = pagination.page_request(2, page.next_page_token, {"status": "active"})
    assert second.after == ("b",)
    with pytest.raises(DomainError) as caught:
        pagination.page_request(2, page.next_page_token, {"status": "archived"})
    assert field_of(caught.value) == "page_token"
    last = pagination.page(["x"], second, lambda item: (item,))
    assert last.next_page_token == ""


@pytest.mark.parametrize("token", ["%%%", "bm90IGpzb24", "eyJhIjogMX0"])
def test_forged_page_tokens_are_invalid_arguments(token):
    with pytest.raises(DomainError) as caught:
        pagination.page_request(10, token, {})
    assert field_of(caught.value) == "page_token"


@pytest.mark.parametrize(
    ("position", "types"),
    [([2**63], (int,)), ([-(2**63) - 1], (int,)), (["a\x00"], (str,)), (["\ud800"], (str,))],
)
def test_a_forged_position_postgresql_cannot_take_is_an_invalid_argument_not_a_crash(position, types):
    """A bigint out of range, a text with NUL or a lone surrogate (which JSON's escapes
    spell) failed in PostgreSQL or on its way there: 500 INTERNAL."""
    forged = json.dumps({"a": position, "f": pagination.fingerprint({})})
    request = pagination.page_request(10, base64.urlsafe_b64encode(forged.encode()).decode(), {})
    with pytest.raises(DomainError) as caught:
        pagination.after(request, *types)
    assert field_of(caught.value) == "page_token"
    edge = json.dumps({"a": [2**63 - 1], "f": pagination.fingerprint({})})
    assert pagination.after(pagination.page_request(10, base64.urlsafe_b64encode(edge.encode()).decode(), {}), int)


def test_a_forged_token_with_the_right_filters_is_still_checked():
    filters = {"team_id": "t"}
    forged = json.dumps({"a": [1, {"x": 2}], "f": pagination.fingerprint(filters)})
    token = base64.urlsafe_b64encode(forged.encode()).decode()
    request = pagination.page_request(10, token, filters)
    for types in ((str,), (str, str), (int,)):
        with pytest.raises(DomainError) as caught:
            pagination.after(request, *types)
        assert field_of(caught.value) == "page_token"


def test_page_size_defaults_and_is_capped():
    assert pagination.page_request(0, "", {}).size == pagination.DEFAULT_PAGE_SIZE
    assert pagination.page_request(10**6, "", {}).size == pagination.MAX_PAGE_SIZE


# ----------------------------------------------------------------------- team update


def test_team_update_keeps_what_was_not_sent():
    changes = tenancy.team_update(markup_percent="12.5000", status="PAUSED", default_model="")
    assert changes.columns() == {"markup_percent": Decimal("12.5"), "status": "paused", "default_model": None}
    assert tenancy.team_update().columns() == {}
    assert tenancy.team_update(calls_per_minute=0).columns() == {"calls_per_minute": 0}  # 0 removes the limit


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"credits_per_dollar": "1e400"}, "credits_per_dollar"),
        ({"credits_per_dollar": "-3"}, "credits_per_dollar"),
        ({"credits_per_dollar": "0.0000001"}, "credits_per_dollar"),
        ({"markup_percent": "Infinity"}, "markup_percent"),
        ({"markup_percent": "10001"}, "markup_percent"),
        ({"tokens_per_credit": 0}, "tokens_per_credit"),
        ({"credits_overdraft_limit": 2_000_000_000}, "credits_overdraft_limit"),
        ({"calls_per_minute": -1}, "calls_per_minute"),
        ({"calls_per_minute": 1_000_001}, "calls_per_minute"),
        ({"status": "ARCHIVED"}, "status"),
        ({"default_model": "bad name"}, "default_model"),
        ({"team_alias": "tab\there"}, "team_alias"),
    ],
)
def test_bad_team_updates_name_their_field(fields, field):
    with pytest.raises(DomainError) as caught:
        tenancy.team_update(**fields)
    assert field_of(caught.value) == field


def test_overdraft_cannot_drop_below_what_the_team_owes():
    team = _team(allocated=10, used=12, reserved=0)
    tenancy.ensure_overdraft_covers(team, 2)
    with pytest.raises(DomainError) as caught:
        tenancy.ensure_overdraft_covers(team, 1)
    assert caught.value.reason == "TEAM_OVERDRAWN"


def _team(allocated: int, used: int, reserved: int) -> tenancy.Team:
    from server.domain.credits import Balance, Rates

    return tenancy.Team(
        team_id="t",
        organization_id="o",
        team_alias="",
        status=TeamStatus.ACTIVE,
        rates=Rates(),
        default_model=None,
        metadata={},
        balance=Balance(allocated=allocated, used=used, reserved=reserved),
        created_at=NOW,
        updated_at=NOW,
    )


# -------------------------------------------------------------------------- key rules


def _key(**fields) -> TeamKey:
    values = {"key_id": uuid.uuid4(), "team_id": "t", "name": "default", "key_prefix": "sk-abc", "created_at": NOW}
    return TeamKey(**{**values, **fields})


def test_key_states_and_rotation_rules():
    assert _key().state(NOW) == KeyState.ACTIVE
    assert _key(expires_at=NOW).state(NOW) == KeyState.EXPIRED
    assert _key(revoked_at=NOW, expires_at=NOW).state(NOW) == KeyState.REVOKED
    tenancy.ensure_rotatable(_key(expires_at=NOW + timedelta(seconds=1)), NOW)
    for stale in (_key(revoked_at=NOW), _key(expires_at=NOW), _key(replaced_by=uuid.uuid4())):
        with pytest.raises(DomainError) as caught:
            tenancy.ensure_rotatable(stale, NOW)
        assert caught.value.reason == "KEY_NOT_ACTIVE"


def test_the_grace_period_never_extends_an_expiry():
    hour = timedelta(hours=1)
    assert tenancy.end_of_grace(_key(), NOW, hour) == NOW + hour
    assert tenancy.end_of_grace(_key(expires_at=NOW + timedelta(minutes=5)), NOW, hour) == NOW + timedelta(minutes=5)
    assert tenancy.rotation_grace(None) == timedelta(hours=24) and tenancy.rotation_grace(0) == timedelta(0)
    with pytest.raises(DomainError):
        tenancy.rotation_grace(-1)
    with pytest.raises(DomainError):
        tenancy.key_expiry("expires_at", NOW + timedelta(days=4000), NOW)


# -------------------------------------------------------------------------- key cache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _owner(team_id: str = "t") -> KeyOwner:
    return KeyOwner(key_id=uuid.uuid4(), team_id=team_id, key_prefix="sk-x", expires_at=None, revoked_at=None)


def test_the_cache_trusts_an_entry_for_at_most_its_ttl():
    clock = Clock()
    cache = KeyCache(ttl_seconds=30, clock=clock)
    cache.set_live(True)
    cache.put(b"k", _owner(), cache.generation)
    assert cache.get(b"k") is not None
    clock.now += 29.9
    assert cache.get(b"k") is not None
    clock.now += 0.2
    assert cache.get(b"k") is None and len(cache) == 0


def test_the_cache_is_off_while_notifications_cannot_arrive():
    cache = KeyCache(ttl_seconds=30, clock=Clock())
    cache.put(b"k", _owner(), cache.generation)
    assert cache.get(b"k") is None  # not live yet: nothing stored
    cache.set_live(True)
    cache.put(b"k", _owner(), cache.generation)
    cache.set_live(False)
    assert cache.get(b"k") is None and len(cache) == 0


def test_a_lookup_that_raced_an_invalidation_is_not_stored():
    cache = KeyCache(ttl_seconds=30, clock=Clock())
    cache.set_live(True)
    started = cache.generation
    cache.invalidate_team("t")
    cache.put(b"k", _owner("t"), started)  # read before the revocation committed
    assert cache.get(b"k") is None


def test_notifications_drop_only_the_named_team_and_are_acknowledged():
    cache = KeyCache(ttl_seconds=30, max_entries=3, clock=Clock())
    cache.set_live(True)
    spawned = []
    changes = KeyChanges(db=None, cache=cache, spawn=spawned.append)
    for index, team in enumerate(["a", "b", "b", "c"]):
        cache.put(bytes([index]), _owner(team), cache.generation)
    assert len(cache) == 3 and cache.get(bytes([0])) is None  # least recently used went first
    changes.on_change('{"team_id": "b", "nonce": "n1"}')
    assert len(cache) == 1 and cache.get(bytes([3])) is not None
    assert [coro.__name__ for coro in spawned] == ["_acknowledge"]
    changes.on_change("not json")
    assert len(cache) == 0 and len(spawned) == 1
    for coro in spawned:
        coro.close()


# ----------------------------------------------------------------------------- reports


def test_date_ranges():
    today = date(2026, 3, 31)
    default = analytics.date_range("", "", today)
    assert (default.start, default.end) == (date(2026, 3, 2), today)
    for start, end, field in (
        ("2026-04-01", "2026-03-01", "start_date"),
        ("2025-01-01", "2026-03-01", "start_date"),
        ("", "0001-01-29", "end_date"),  # the default 30 days would start before year 1 (was a 500)
    ):
        with pytest.raises(DomainError) as caught:
            analytics.date_range(start, end, today)
        assert field_of(caught.value) == field
    earliest = analytics.date_range("", "0001-01-30", today)
    assert (earliest.start, earliest.end) == (date(1, 1, 1), date(1, 1, 30))


def test_reports_rank_job_types_and_teams_by_provider_cost():
    def figures(cost: str, calls: int = 1) -> analytics.UsageFigures:
        return analytics.UsageFigures(
            calls=calls, provider_cost_usd=Decimal(cost), billed_cost_usd=Decimal(cost) * 2, credits_charged=4
        )

    day = date(2026, 1, 1)
    rows = [
        analytics.UsageRow(None, None, None, figures("3")),
        analytics.UsageRow(day, None, None, figures("3")),
        analytics.UsageRow(None, "cheap", None, figures("1", calls=9)),
        analytics.UsageRow(None, "dear", None, figures("2")),
        analytics.UsageRow(day, "cheap", None, figures("1")),
        analytics.UsageRow(day, "dear", None, figures("2")),
        analytics.UsageRow(None, None, "team-b", figures("2.5")),
        analytics.UsageRow(None, None, "team-a", figures("0.5")),
    ]
    report = analytics.build_report(analytics.DateRange(day, day), rows, top=1)
    assert [name for name, _ in report.job_types] == ["dear"]
    assert [(d, t) for d, t, _ in report.daily_job_types] == [(day, "dear")]
    assert [name for name, _ in report.teams] == ["team-b"]
    assert report.totals.margin_usd == Decimal(3) and report.totals.provider_cost_usd_per_credit == Decimal("0.75")


# ------------------------------------------------------------------------------- audit


def test_snapshots_are_json_and_never_hold_a_secret():
    key = _key(expires_at=NOW)
    snap = audit.snapshot(CreatedKey(key=key, secret="sk-very-secret"))
    assert snap == {"key": audit.snapshot(key)}
    assert snap["key"]["expires_at"] == NOW.isoformat() and snap["key"]["key_id"] == str(key.key_id)
    assert "sk-very-secret" not in str(snap)


@pytest.mark.parametrize("position", [None, "a", 1, {"x": 1}])
def test_a_token_whose_position_is_not_a_list_is_not_ours_whatever_its_filters(position):
    """Its filters may be right: it is forged, not one issued for other filters."""
    forged = json.dumps({"a": position, "f": pagination.fingerprint({})})
    with pytest.raises(DomainError) as caught:
        pagination.page_request(10, base64.urlsafe_b64encode(forged.encode()).decode(), {})
    assert field_of(caught.value) == "page_token" and "not a token this API issued" in caught.value.message
