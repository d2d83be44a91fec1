"""Unit tests for fakeprovider.replies (pure reply generation, no server)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from fakeprovider.directives import Directive, InvalidRequestError, parse_directive
from fakeprovider.replies import (
    VOCABULARY,
    apply_stop,
    build_reply,
    count_words,
    default_reply_text,
    generated_text,
    invalid_json_text,
    mismatching_value,
    prompt_tokens,
    split_chunks,
    truncate_words,
    value_for_schema,
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}


def reply_for(content: str, **body: Any):
    """build_reply for a one-message request, parsing the directive."""
    directive, text = parse_directive(content)
    return build_reply({"messages": [{"role": "user", "content": content}], **body}, directive, text)


# Token rule -----------------------------------------------------------------


def test_count_words_splits_on_any_whitespace() -> None:
    assert count_words("") == 0
    assert count_words("  one\ttwo\nthree  ") == 3


def test_prompt_tokens_counts_words_plus_one_per_message() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi there"}, {"type": "image_url"}]},
        {"role": "assistant", "content": None, "tool_calls": []},
    ]
    assert prompt_tokens(messages) == (2 + 1) + (2 + 1) + (0 + 1)
    assert prompt_tokens([]) == 1


# Text content ----------------------------------------------------------------


def test_default_reply_quotes_first_six_words() -> None:
    assert default_reply_text("one two three four five six seven") == (
        "Hello from fake! You said: one two three four five six"
    )
    assert default_reply_text("") == "Hello from fake! You said:"


def test_generated_text_is_deterministic_and_seeded() -> None:
    first = generated_text(25, "seed text")
    assert first == generated_text(25, "seed text")
    assert first != generated_text(25, "other seed")
    words = first.split(" ")
    assert len(words) == 25 and all(word in VOCABULARY for word in words)
    assert generated_text(0, "x") == ""
    assert generated_text(10, "x").startswith(generated_text(3, "x"))


def test_generated_text_is_stable_across_processes() -> None:
    # Pinned value: fails if someone swaps crc32 for the randomised hash().
    assert generated_text(4, "Hello there") == "india zephyr india alpha"


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 8, 20])
def test_split_chunks_concatenates_back_and_is_even(count: int) -> None:
    text = " ".join(f"w{i}" for i in range(7)) + " "
    pieces = split_chunks(text, count)
    assert "".join(pieces) == text
    assert len(pieces) == min(count, 7)
    sizes = [len(piece.split()) for piece in pieces]
    assert max(sizes) - min(sizes) <= 1


def test_split_chunks_edge_cases() -> None:
    assert split_chunks("", 8) == []
    assert split_chunks("   ", 8) == ["   "]
    assert split_chunks("  lead\nand  gaps", 2) == ["  lead\nand", "  gaps"]


def test_truncate_words_and_stop() -> None:
    assert truncate_words("a b  c d", 3) == ("a b  c", True)
    assert truncate_words("a b", 5) == ("a b", False)
    assert truncate_words("a b", 2) == ("a b", False)
    assert truncate_words("a b", 0) == ("", True)
    assert apply_stop("one two three", ["three", "two"]) == ("one ", True)
    assert apply_stop("one two", ["zzz", ""]) == ("one two", False)


# build_reply -------------------------------------------------------------------


def test_build_reply_default_and_tokens() -> None:
    reply = reply_for("Hello there my friend")
    assert reply.content == "Hello from fake! You said: Hello there my friend"
    assert reply.finish_reason == "stop"
    assert reply.prompt_tokens == 5
    assert reply.completion_tokens == 9

    reply = reply_for("Hello [fake tokens=17]")
    assert reply.completion_tokens == 17 == count_words(reply.content or "")
    assert reply.content == generated_text(17, "Hello")


def test_build_reply_echo_strips_directive() -> None:
    reply = reply_for("Keep  this\ntext [fake echo=1] intact")
    assert reply.content == "Keep  this\ntext intact"


def test_build_reply_stop_then_max_tokens() -> None:
    words = generated_text(10, "Hi").split()
    stopped = reply_for("Hi [fake tokens=10]", stop=words[4])
    assert stopped.content == generated_text(10, "Hi")[: generated_text(10, "Hi").find(words[4])]
    assert stopped.finish_reason == "stop"

    limited = reply_for("Hi [fake tokens=10]", max_tokens=3)
    assert limited.content == " ".join(words[:3])
    assert (limited.finish_reason, limited.completion_tokens) == ("length", 3)

    preferred = reply_for("Hi [fake tokens=10]", max_tokens=8, max_completion_tokens=2)
    assert preferred.completion_tokens == 2

    not_reached = reply_for("Hi [fake tokens=3]", max_tokens=3)
    assert not_reached.finish_reason == "stop"


def test_build_reply_finish_override() -> None:
    assert reply_for("x [fake finish=content_filter]").finish_reason == "content_filter"
    assert reply_for("x [fake tokens=9 finish=length]").finish_reason == "length"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"stop": 5}, "stop"),
        ({"stop": ["a", 1]}, "stop"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_completion_tokens": "3"}, "max_completion_tokens"),
        ({"tools": "nope", "tool_choice": "required"}, "tools"),
    ],
)
def test_build_reply_rejects_bad_parameters(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        reply_for("x", **body)
    assert caught.value.param == param


# Tools -------------------------------------------------------------------------


def test_tool_call_via_directive(check_schema: Callable[..., list[str]]) -> None:
    reply = reply_for("weather? [fake tool=get_weather]", tools=[TIME_TOOL, WEATHER_TOOL])
    assert reply.content is None and reply.tool_call is not None
    assert reply.tool_call.name == "get_weather"
    assert reply.tool_call.id.startswith("call_") and len(reply.tool_call.id) == 29
    arguments = json.loads(reply.tool_call.arguments)
    assert check_schema(arguments, WEATHER_TOOL["function"]["parameters"]) == []
    assert arguments["city"] == "London"
    assert reply.finish_reason == "tool_calls"
    assert reply.completion_tokens == count_words(reply.tool_call.arguments)
    again = reply_for("weather? [fake tool=get_weather]", tools=[TIME_TOOL, WEATHER_TOOL])
    assert again.tool_call == reply.tool_call


def test_tool_choice_required_named_and_auto() -> None:
    tools = [TIME_TOOL, WEATHER_TOOL]
    required = reply_for("x", tools=tools, tool_choice="required")
    assert required.tool_call is not None and required.tool_call.name == "get_time"
    assert required.tool_call.arguments == "{}" and required.completion_tokens == 1
    named = reply_for("x", tools=tools, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert named.tool_call is not None and named.tool_call.name == "get_weather"
    assert reply_for("x", tools=tools, tool_choice="auto").tool_call is None
    assert reply_for("x", tools=tools).tool_call is None


def test_unknown_tool_is_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="nope") as caught:
        reply_for("x [fake tool=nope]", tools=[WEATHER_TOOL])
    assert caught.value.param == "tool"
    with pytest.raises(InvalidRequestError):
        reply_for("x [fake tool=get_weather]")
    with pytest.raises(InvalidRequestError):
        reply_for("x", tool_choice="required")


# JSON ---------------------------------------------------------------------------


def test_schema_generation_for_pydantic_like_schema(
    person_schema: dict[str, Any], check_schema: Callable[..., list[str]]
) -> None:
    value = value_for_schema(person_schema)
    assert check_schema(value, person_schema) == []
    assert value["name"] == "Ada Lovelace"
    assert value["email"] == "user@example.com"
    assert value["contact"] == "user@example.com"
    assert value["age"] == 36
    assert value["role"] == "admin"
    assert value["manager"] is None  # recursion into Person is cut
    assert value["nickname"] == "example nickname"  # optional included, non-null branch
    assert value["address"]["city"] == "London"
    assert value["kind"] == "person"
    assert len(value["tags"]) == 2 and len(set(value["uniq"])) == 3
    assert value["even"] % 2 == 0 and value["even"] > 41
    assert value_for_schema(person_schema) == value  # deterministic


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "minLength": 30},
        {"type": "string", "maxLength": 3},
        {"type": "integer", "minimum": 100},
        {"type": "integer", "exclusiveMaximum": 0},
        {"type": "number", "minimum": 0, "maximum": 1},
        {"type": "number", "exclusiveMinimum": 10},
        {"type": ["null", "boolean"]},
        {"type": "array", "items": {"type": "integer"}, "maxItems": 0},
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "uuid"},
        {"oneOf": [{"type": "null"}, {"const": 3}]},
        {"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]}], "type": "object"},
        {
            "type": "object",
            "properties": {"Node": {"$ref": "#/definitions/N"}},
            "definitions": {"N": {"type": "boolean"}},
        },
        {},
    ],
)
def test_schema_generation_keyword_coverage(schema: dict[str, Any], check_schema: Callable[..., list[str]]) -> None:
    assert check_schema(value_for_schema(schema), schema) == []


def test_recursive_schema_terminates(check_schema: Callable[..., list[str]]) -> None:
    schema = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                    "parent": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                },
                "required": ["value", "children", "parent"],
            }
        },
        "$ref": "#/$defs/Node",
    }
    value = value_for_schema(schema)
    assert value == {"value": 42, "children": [], "parent": None}
    assert check_schema(value, schema) == []


def test_mismatch_and_invalid(person_schema: dict[str, Any], check_schema: Callable[..., list[str]]) -> None:
    wrong = mismatching_value(person_schema)
    assert "name" not in wrong  # first required property removed
    errors = check_schema(wrong, person_schema)
    assert any("missing required 'name'" in error for error in errors)
    assert any("is not of type" in error for error in errors)
    json.dumps(wrong)  # still valid JSON

    text = json.dumps(value_for_schema(person_schema))
    with pytest.raises(ValueError):
        json.loads(invalid_json_text(text))
    with pytest.raises(ValueError):
        json.loads(invalid_json_text("36"))


def test_json_replies() -> None:
    schema_format = {
        "type": "json_schema",
        "json_schema": {
            "name": "person",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
                "additionalProperties": False,
            },
        },
    }
    reply = reply_for("who? [fake tokens=50]", response_format=schema_format)
    assert json.loads(reply.content or "") == {"name": "Ada Lovelace", "age": 36}
    assert reply.completion_tokens == count_words(reply.content or "")

    invalid = reply_for("who? [fake json=invalid]", response_format=schema_format).content or ""
    assert invalid.startswith('{"name": ')
    with pytest.raises(ValueError):
        json.loads(invalid)

    mismatch = json.loads(reply_for("who? [fake json=mismatch]", response_format=schema_format).content or "")
    assert mismatch == {"age": "not the expected type"}

    obj = reply_for("hello you", response_format={"type": "json_object"})
    assert json.loads(obj.content or "") == {"result": "Hello from fake! You said: hello you"}
    not_obj = reply_for("x [fake json=mismatch]", response_format={"type": "json_object"})
    assert not isinstance(json.loads(not_obj.content or ""), dict)

    text = reply_for("x [fake json=invalid]", response_format={"type": "text"})
    assert text.content == "Hello from fake! You said: x"


def test_reply_stream_pieces() -> None:
    reply = reply_for("Hi [fake tokens=20]")
    assert len(reply.stream_pieces(None)) == 8
    assert len(reply.stream_pieces(3)) == 3
    assert "".join(reply.stream_pieces(7)) == reply.content
    assert reply_for("Hi [fake tokens=0]").stream_pieces(None) == []
    assert Directive().chunks is None
