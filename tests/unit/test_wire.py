"""server.api.wire: the free-form parameters of a call request decoded from its bytes, in
the order the client wrote them (upb's Struct gives map entries in hash order)."""

from __future__ import annotations

import contextlib
import math
import random
import struct

import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError

from saaslitellm.v1 import chat_pb2, job_service_pb2
from server.api import convert, wire
from server.domain.errors import DomainError

# ---------------------------------------------------------------- a tiny encoder, in order


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def value(item) -> bytes:
    if item is None:
        return varint(1 << 3) + varint(0)
    if isinstance(item, bool):
        return varint(4 << 3) + varint(int(item))
    if isinstance(item, int | float):
        return varint(2 << 3 | 1) + struct.pack("<d", float(item))
    if isinstance(item, str):
        return field(3, item.encode())
    if isinstance(item, dict):
        return field(5, encode_struct(item))
    return field(6, b"".join(field(1, value(v)) for v in item))


def encode_struct(items: dict) -> bytes:
    """A Struct whose map entries are in the dict's order (what upb's own encoder is not)."""
    return b"".join(field(1, field(1, key.encode()) + field(2, value(v))) for key, v in items.items())


ORDERED = {"step1": 1, "step2": 2, "step3": 3, "final_answer": 4, "zeta": 5, "alpha": 6}


def test_the_bug_upb_gives_map_entries_out_of_order():
    """Why wire.py exists: if upb ever keeps the order, it can go (the test then says so)."""
    orders = set()
    for n in range(20):
        keys = {f"k{n}_{i}": i for i in range(12)}
        parsed = struct_pb2.Struct.FromString(encode_struct(keys))
        orders.add(list(parsed.fields.keys()) == list(keys))
        assert wire.decode_struct(encode_struct(keys)) == keys
        assert list(wire.decode_struct(encode_struct(keys))) == list(keys)
    assert orders != {True}


def test_order_is_kept_at_every_depth():
    document = {
        "type": "json_schema",
        "json_schema": {
            "name": "steps",
            "schema": {
                "type": "object",
                "properties": {"step3": {"type": "string"}, "step1": {"type": "string"}, "final_answer": {}},
                "required": ["step3", "step1", "final_answer"],
            },
        },
    }
    decoded = wire.decode_struct(encode_struct(document))
    assert decoded == document
    assert list(decoded["json_schema"]["schema"]["properties"]) == ["step3", "step1", "final_answer"]
    assert list(decoded["json_schema"]) == ["name", "schema"]
    assert list(decoded) == ["type", "json_schema"]


def test_every_value_kind_and_the_int_float_rule():
    document = {
        "null": None,
        "true": True,
        "false": False,
        "int": 5,
        "negative": -3,
        "zero": 0,
        "float": 0.5,
        "integral_float": 5.0,
        "big_exact": 2**53 - 1,
        "too_big_for_int": 2.0**53,
        "text": "héllo ✓",
        "empty_text": "",
        "empty_object": {},
        "empty_list": [],
        "list": [1, "two", None, [3.5, {"b": 1, "a": 2}], {"z": False}],
    }
    decoded = wire.decode_struct(encode_struct(document))
    assert decoded == document
    assert type(decoded["int"]) is int and type(decoded["integral_float"]) is int
    assert type(decoded["float"]) is float and type(decoded["too_big_for_int"]) is float
    assert list(decoded["list"][3][1]) == ["b", "a"]
    # The same values as the parsed message gives (json_format, then _plain), key order aside.
    assert decoded == convert.struct_to_dict(struct_pb2.Struct.FromString(encode_struct(document)))


def test_a_value_with_no_kind_is_null_and_a_value_decodes_alone():
    assert wire.decode_struct(field(1, field(1, b"k"))) == {"k": None}  # an entry without value
    assert wire.decode_struct(field(1, field(2, value(1)))) == {"": 1}  # an entry without key
    assert wire.decode_value(b"") is None
    assert wire.decode_value(value({"b": [1, 2], "a": "x"})) == {"b": [1, 2], "a": "x"}


def test_repeated_entries_and_fields_merge_as_protobuf_does():
    # A key written twice keeps its first place and takes the last value (a map entry).
    twice = encode_struct({"a": 1, "b": 2}) + encode_struct({"a": 3})
    assert wire.decode_struct(twice) == {"a": 3, "b": 2}
    assert wire.decode_struct(twice) == convert.struct_to_dict(struct_pb2.Struct.FromString(twice))
    # A struct_value written twice in one Value merges; a list_value extends.
    merged = value({"x": 1}) + value({"y": 2})
    assert wire.decode_value(merged) == {"x": 1, "y": 2}
    assert wire.decode_value(value([1]) + value([2])) == [1, 2]
    assert wire.decode_value(value([1]) + value("last")) == "last"


def test_unknown_fields_are_skipped():
    unknown = (
        varint(9 << 3)
        + varint(300)  # varint
        + varint(10 << 3 | 1)
        + b"\0" * 8  # fixed64
        + field(11, b"ignored")  # length-delimited
        + varint(12 << 3 | 5)
        + b"\0" * 4  # fixed32
        + varint(13 << 3 | 3)
        + varint(1 << 3)
        + varint(7)
        + varint(13 << 3 | 4)  # a group
        + varint(1 << 3)
        + varint(1)  # Struct.fields with the wrong wire type: unknown to upb too
    )
    entry = field(1, field(1, b"k") + field(2, unknown + value("v")))
    data = unknown + entry + unknown
    assert wire.decode_struct(data) == {"k": "v"}
    assert wire.decode_struct(data) == convert.struct_to_dict(struct_pb2.Struct.FromString(data))
    # A map entry with an unknown field is no entry for upb (it keeps it as unknown bytes).
    odd = field(1, unknown + field(1, b"odd") + field(2, value(1))) + field(1, field(1, b"k") + field(2, value(2)))
    assert wire.decode_struct(odd) == {"k": 2}
    assert wire.decode_struct(odd) == convert.struct_to_dict(struct_pb2.Struct.FromString(odd))
    assert wire.decode_value(field(6, unknown + field(1, value(1)))) == [1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x0a", "ends inside a varint"),
        (b"\x0a\x05\x0a\x01", "runs past the end"),
        (field(1, field(1, b"\xff\xfe")), "UTF-8"),
        (b"\x00", "field number 0"),
        (field(1, field(2, b"\x11\x00\x00")), "ends inside a number"),
        (b"\x0f", "wire type 7"),
        (b"\x0c", "wire type 4"),  # an end-group tag outside a group
        (b"\x1b\x08\x01", "ends inside a group"),
        (b"\x1b\x24", "another field number"),
        (b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
    ],
)
def test_malformed_bytes_are_a_clear_error(data, message):
    with pytest.raises(wire.WireError, match=message):
        wire.decode_struct(data)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(number):
    with pytest.raises(wire.NonFiniteNumber):
        wire.decode_value(varint(2 << 3 | 1) + struct.pack("<d", number))


# ---------------------------------------------------------------- a call request


def call_request(**parsed_fields) -> tuple[job_service_pb2.LLMCallRequest, bytes]:
    """LLMCallRequest bytes with free-form fields in the given order, appended to the
    upb-encoded rest (concatenated encodings merge: that is protobuf's rule)."""
    base = job_service_pb2.LLMCallRequest(job_id="j", messages=[chat_pb2.ChatMessage(role="user")])
    base.messages[0].content.string_value = "hi"
    numbers = job_service_pb2.LLMCallRequest.DESCRIPTOR.fields_by_name
    data = base.SerializeToString()
    for name, item in parsed_fields.items():
        for element in item if name == "tools" else [item]:
            payload = value(element) if name == "tool_choice" else encode_struct(element)
            data += field(numbers[name].number, payload)
    return job_service_pb2.LLMCallRequest.FromString(data), data


SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {n: {"type": "string"} for n in ("step1", "step2", "step3", "final_answer", "zeta", "alpha")},
            "required": ["step1", "step2", "step3", "final_answer", "zeta", "alpha"],
            "additionalProperties": False,
        },
    },
}
TOOL = {
    "type": "function",
    "function": {
        "name": "book",
        "parameters": {"type": "object", "properties": {"zeta": {"type": "string"}, "alpha": {"type": "integer"}}},
    },
}


def decoded(request, data) -> dict:
    names = [n for n in wire.ORDERED_FIELDS if (request.tools if n == "tools" else request.HasField(n))]
    return wire.decode_fields(data, request.DESCRIPTOR, names)


def test_decode_fields_takes_the_fields_by_descriptor_in_order():
    choice = {"type": "function", "function": {"name": "book"}}
    request, data = call_request(
        response_format=SCHEMA_FORMAT,
        tools=[TOOL, {"type": "function", "function": {"name": "other"}}],
        tool_choice=choice,
        logit_bias={"50256": -100, "1": 5},
        extra_body={"zz": 1, "aa": {"y": 1, "x": 2}},
    )
    found = decoded(request, data)
    assert found["response_format"] == SCHEMA_FORMAT
    assert list(found["response_format"]["json_schema"]["schema"]["properties"]) == list(ORDERED)
    assert found["tools"][0] == TOOL and found["tools"][1]["function"]["name"] == "other"
    assert list(found["tools"][0]["function"]["parameters"]["properties"]) == ["zeta", "alpha"]
    assert found["tool_choice"] == choice and list(found["tool_choice"]) == ["type", "function"]
    assert list(found["logit_bias"]) == ["50256", "1"]
    assert list(found["extra_body"]) == ["zz", "aa"] and list(found["extra_body"]["aa"]) == ["y", "x"]


def test_a_singular_field_written_twice_merges():
    request, data = call_request(extra_body={"b": 1})
    data += field(27, encode_struct({"a": 2, "b": 3}))
    request = job_service_pb2.LLMCallRequest.FromString(data)
    assert decoded(request, data) == {"extra_body": {"b": 3, "a": 2}}
    assert convert.struct_to_dict(request.extra_body) == {"b": 3, "a": 2}


def test_wire_error_names_the_field():
    request, data = call_request(extra_body={"n": 1})
    bad = data + field(27, field(1, field(2, varint(2 << 3 | 1) + struct.pack("<d", math.nan))))
    with pytest.raises(wire.NonFiniteNumber) as raised:
        decoded(request, bad)
    assert raised.value.field == "extra_body"


# ---------------------------------------------------------------- through the handler plumbing


def received(request_type, data):
    """What ErrorInterceptor's handler plumbing does with a call request's bytes."""
    seen = {}

    def behavior(request, context):
        seen["chat"] = convert.chat_request(request)
        seen["again"] = wire.take_bytes(request)  # released once taken
        return seen

    deserializer = wire.with_bytes(request_type.FromString)
    return wire.handing_bytes(behavior)(deserializer(data), None)


def test_chat_request_keeps_the_order_of_the_received_bytes():
    _, data = call_request(response_format=SCHEMA_FORMAT, tools=[TOOL], extra_body={"zz": 1, "aa": 2})
    seen = received(job_service_pb2.LLMCallRequest, data)
    params = seen["chat"].params
    assert list(params["response_format"]["json_schema"]["schema"]["properties"]) == list(ORDERED)
    assert list(params["tools"][0]["function"]["parameters"]["properties"]) == ["zeta", "alpha"]
    assert params["zz"] == 1 and params["aa"] == 2
    assert seen["again"] is None


def test_chat_request_without_its_bytes_falls_back_to_the_parsed_message():
    request, _ = call_request(response_format=SCHEMA_FORMAT, tools=[TOOL], tool_choice="auto")
    params = convert.chat_request(request).params
    assert params["response_format"] == SCHEMA_FORMAT and params["tools"] == [TOOL]
    assert params["tool_choice"] == "auto"


def test_chat_request_refuses_a_nan_naming_the_field():
    _, data = call_request(extra_body={"n": 1})
    data += field(27, field(1, field(1, b"m") + field(2, varint(2 << 3 | 1) + struct.pack("<d", math.nan))))
    with pytest.raises(DomainError) as raised:
        received(job_service_pb2.LLMCallRequest, data)
    assert raised.value.violations[0].field == "extra_body.m"  # where, as in any other JSON field
    assert raised.value.violations[0].description == convert.NOT_FINITE


def test_only_call_requests_keep_their_bytes():
    keeping = {
        name
        for name, method in job_service_pb2.DESCRIPTOR.services_by_name["JobService"].methods_by_name.items()
        if wire.keeps_bytes(getattr(job_service_pb2, method.input_type.name).FromString)
    }
    assert keeping == {"LLMCall", "LLMCallStream", "EstimateCall", "CreateAndCall", "CreateAndCallStream"}
    assert not wire.keeps_bytes(None) and not wire.keeps_bytes(lambda data: data)


def test_decodes_what_upb_decodes_from_mangled_bytes():
    """Bytes upb accepts decode to the same values (order aside); others raise WireError only."""
    rng = random.Random(7)
    base = encode_struct(SCHEMA_FORMAT) + encode_struct({"list": [1, 2.5, None, True, {"k": "v"}], "e": {}})
    agreed = 0
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = bytes(data)
        try:
            expected = convert.struct_to_dict(struct_pb2.Struct.FromString(data))
        except (DecodeError, ValueError):
            with contextlib.suppress(wire.WireError):
                wire.decode_struct(data)
            continue
        assert wire.decode_struct(data) == expected
        agreed += 1
    assert agreed > 100
