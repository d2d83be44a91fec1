"""Unit tests for fakeprovider.directives (pure parsing, no server)."""

from __future__ import annotations

import dataclasses

import pytest

from fakeprovider.directives import (
    DIRECTIVE_KEYS,
    Directive,
    DirectiveError,
    last_user_text,
    message_text,
    parse_directive,
)


def test_no_directive_returns_defaults_and_stripped_text() -> None:
    directive, text = parse_directive("  Hello world  ")
    assert directive == Directive()
    assert text == "Hello world"


def test_empty_directive_is_allowed() -> None:
    directive, text = parse_directive("Hi [fake] there")
    assert directive == Directive()
    assert text == "Hi there"


@pytest.mark.parametrize(
    ("source", "field", "expected"),
    [
        ("tokens=12", "tokens", 12),
        ("tokens=0", "tokens", 0),
        ("chunks=3", "chunks", 3),
        ("delay_ms=50", "delay_ms", 50),
        ("first_delay_ms=250", "first_delay_ms", 250),
        ("status=429", "status", 429),
        ("retry_after=7", "retry_after", 7),
        ("fail=primary", "fail", "primary"),
        ("drop_after=2", "drop_after", 2),
        ("stall_after=0", "stall_after", 0),
        ("usage=none", "usage", "none"),
        ("finish=length", "finish", "length"),
        ("finish=content_filter", "finish", "content_filter"),
        ("json=invalid", "json", "invalid"),
        ("json=mismatch", "json", "mismatch"),
        ("tool=get_weather", "tool", "get_weather"),
        ("echo=1", "echo", True),
        ("echo=false", "echo", False),
    ],
)
def test_each_key_parses(source: str, field: str, expected: object) -> None:
    directive, _ = parse_directive(f"[fake {source}]")
    assert getattr(directive, field) == expected


def test_every_documented_key_has_a_field() -> None:
    fields = {field.name for field in dataclasses.fields(Directive)}
    assert set(DIRECTIVE_KEYS) == fields


def test_several_keys_and_surrounding_text() -> None:
    directive, text = parse_directive("Tell me a story [fake tokens=40 chunks=4 delay_ms=20] please")
    assert (directive.tokens, directive.chunks, directive.delay_ms) == (40, 4, 20)
    assert text == "Tell me a story please"


def test_first_occurrence_wins_and_later_ones_stay_in_text() -> None:
    directive, text = parse_directive("a [fake tokens=3] b [fake tokens=9] c")
    assert directive.tokens == 3
    assert text == "a b [fake tokens=9] c"


def test_directive_at_start_and_end_is_removed_cleanly() -> None:
    assert parse_directive("[fake echo=1]\nline one\nline two")[1] == "line one\nline two"
    assert parse_directive("line one\nline two [fake echo=1]")[1] == "line one\nline two"


def test_similar_text_is_not_a_directive() -> None:
    directive, text = parse_directive("[faker tokens=3] [fakes]")
    assert directive == Directive()
    assert text == "[faker tokens=3] [fakes]"


def test_unknown_key_is_rejected_naming_the_key() -> None:
    with pytest.raises(DirectiveError) as caught:
        parse_directive("[fake tokns=5]")
    assert caught.value.key == "tokns"
    assert "tokns" in str(caught.value)


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ("tokens=abc", "tokens"),
        ("tokens=-1", "tokens"),
        ("tokens=1.5", "tokens"),
        ("chunks=0", "chunks"),
        ("status=200", "status"),
        ("status=600", "status"),
        ("fail=backup", "fail"),
        ("usage=all", "usage"),
        ("finish=maybe", "finish"),
        ("json=yes", "json"),
        ("echo=2", "echo"),
        ("delay_ms=", "delay_ms"),
        ("tokens", "tokens"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(source: str, key: str) -> None:
    with pytest.raises(DirectiveError) as caught:
        parse_directive(f"hi [fake {source}]")
    assert caught.value.key == key
    assert f"'{key}'" in str(caught.value)


def test_duplicate_key_is_rejected() -> None:
    with pytest.raises(DirectiveError) as caught:
        parse_directive("[fake tokens=1 tokens=2]")
    assert caught.value.key == "tokens"


def test_unterminated_directive_is_rejected() -> None:
    with pytest.raises(DirectiveError, match="not terminated"):
        parse_directive("hello [fake tokens=3")


def test_first_delay_defaults_to_delay() -> None:
    assert parse_directive("[fake delay_ms=30]")[0].first_delay == 30
    assert parse_directive("[fake delay_ms=30 first_delay_ms=5]")[0].first_delay == 5
    assert Directive().first_delay == 0


def test_failure_status() -> None:
    assert Directive().failure_status("fake-gpt") is None
    assert Directive(status=503).failure_status("anything") == 503
    primary = Directive(fail="primary")
    assert primary.failure_status("fake-gpt") == 500
    assert primary.failure_status("fake-gpt-backup") is None
    assert Directive(fail="primary", status=429).failure_status("fake-gpt") == 429


def test_directive_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Directive().tokens = 3  # type: ignore[misc]


def test_message_text_handles_strings_parts_and_none() -> None:
    assert message_text("plain") == "plain"
    parts = [
        {"type": "text", "text": "look at"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this [fake echo=1]"},
    ]
    assert message_text(parts) == "look at\nthis [fake echo=1]"
    assert message_text(None) == ""
    assert message_text(42) == ""


def test_last_user_text_uses_the_last_user_message() -> None:
    messages = [
        {"role": "system", "content": "[fake status=500]"},
        {"role": "user", "content": "first [fake tokens=1]"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second [fake tokens=2]"}]},
        {"role": "tool", "content": "[fake tokens=3]", "tool_call_id": "x"},
    ]
    assert last_user_text(messages) == "second [fake tokens=2]"
    assert last_user_text([{"role": "system", "content": "x"}]) == ""
