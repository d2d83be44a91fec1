"""The free-form parameters (google.protobuf.Struct: response_format, tools, tool_choice,
extra_body...) reach the provider with their keys in the order the client wrote them,
through Envoy's JSON transcoding and through native gRPC.

upb gives a parsed Struct's entries in hash order, so a json_schema whose properties are
`step1, step2, step3, final_answer` would otherwise reach the provider reordered, and
OpenAI's structured outputs generate keys in schema order ("reasoning before answer")."""

from __future__ import annotations

import json
import struct
import uuid

import grpc
import requests
from google.protobuf import struct_pb2

from saaslitellm.v1 import chat_pb2, job_service_pb2

STEPS = ["step1", "step2", "step3", "final_answer", "zeta", "alpha", "mid", "beta"]
PARAMETERS = ["zeta", "city", "alpha", "days", "units", "b", "a"]


def schema_format() -> dict:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "reasoned_answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {name: {"type": "string", "description": f"the {name}"} for name in STEPS},
                "required": STEPS,
                "additionalProperties": False,
            },
        },
    }


def tool() -> dict:
    return {
        "type": "function",
        "function": {
            "name": "plan_trip",
            "description": "Plans a trip",
            "parameters": {
                "type": "object",
                "properties": {name: {"type": "string"} for name in PARAMETERS},
                "required": PARAMETERS,
            },
        },
    }


def tool_choice() -> dict:
    return {"type": "function", "function": {"name": "plan_trip"}}


def received_by_provider(stack, marker: str) -> dict:
    entries = requests.get(f"{stack.fake_url}/_fake/requests", timeout=5).json()["requests"]
    (body,) = [e["body"] for e in entries if marker in json.dumps(e["body"]["messages"])]
    return body


def assert_in_order(body: dict) -> None:
    schema = body["response_format"]["json_schema"]
    assert list(schema["schema"]["properties"]) == STEPS
    assert list(schema) == ["name", "strict", "schema"]
    assert list(schema["schema"]) == ["type", "properties", "required", "additionalProperties"]
    function = body["tools"][0]["function"]
    assert list(function["parameters"]["properties"]) == PARAMETERS
    assert list(function) == ["name", "description", "parameters"]
    assert list(body["tool_choice"]) == ["type", "function"]


def assert_extra_body_in_order(body: dict) -> None:
    """extra_body's keys reach the provider as its own parameters (LiteLLM passes them on)."""
    assert [key for key in body if key in ("zz_provider_option", "aa_option")] == ["zz_provider_option", "aa_option"]
    assert body["zz_provider_option"] == {"y": 1, "x": 2.5} and list(body["zz_provider_option"]) == ["y", "x"]


def test_rest_parameters_reach_the_provider_in_the_clients_order(stack, api, team):
    marker = uuid.uuid4().hex
    job = requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=team.headers, timeout=10).json()
    body = {
        "messages": [{"role": "user", "content": f"plan it {marker}"}],
        "response_format": schema_format(),
        "tools": [tool()],
        "tool_choice": tool_choice(),
        "extra_body": {"zz_provider_option": {"y": 1, "x": 2.5}, "aa_option": True},
    }
    # json.dumps keeps the dicts' order: these bytes are what Envoy transcodes.
    reply = requests.post(
        f"{api}/jobs/{job['job_id']}/llm-call",
        data=json.dumps(body),
        headers={**team.headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    received = received_by_provider(stack, marker)
    assert_in_order(received)
    assert_extra_body_in_order(received)


def test_rest_stream_parameters_reach_the_provider_in_the_clients_order(stack, api, team):
    marker = uuid.uuid4().hex
    body = {
        "job_type": "t",
        "messages": [{"role": "user", "content": f"plan it {marker}"}],
        "response_format": schema_format(),
        "tools": [tool()],
        "tool_choice": tool_choice(),
    }
    with requests.post(
        f"{api}/jobs/create-and-call-stream",
        data=json.dumps(body),
        headers={**team.headers, "Content-Type": "application/json"},
        timeout=30,
        stream=True,
    ) as reply:
        assert reply.status_code == 200, reply.text
        events = [json.loads(line[6:]) for line in reply.iter_lines() if line.startswith(b"data: ")]
    assert events[-1]["done"] is True and "error" not in events[-1], events[-1]
    assert_in_order(received_by_provider(stack, marker))


# ---------------------------------------------------------------- native gRPC, bytes by hand
# The Python protobuf runtime (upb) would itself serialize a Struct in hash order, so the
# request's free-form fields are encoded here, in order, after the upb-encoded rest (two
# encodings concatenated merge: protobuf's rule).


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _value(item) -> bytes:
    if item is None:
        return _varint(1 << 3) + _varint(0)
    if isinstance(item, bool):
        return _varint(4 << 3) + _varint(int(item))
    if isinstance(item, int | float):
        return _varint(2 << 3 | 1) + struct.pack("<d", float(item))
    if isinstance(item, str):
        return _field(3, item.encode())
    if isinstance(item, dict):
        return _field(5, _struct(item))
    return _field(6, b"".join(_field(1, _value(v)) for v in item))


def _struct(items: dict) -> bytes:
    return b"".join(_field(1, _field(1, key.encode()) + _field(2, _value(v))) for key, v in items.items())


def test_grpc_parameters_reach_the_provider_in_the_senders_order(stack, team):
    marker = uuid.uuid4().hex
    request = job_service_pb2.CreateAndCallRequest(
        job_type="t",
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=f"plan it {marker}"))],
    )
    fields = job_service_pb2.CreateAndCallRequest.DESCRIPTOR.fields_by_name
    data = (
        request.SerializeToString()
        + _field(fields["response_format"].number, _struct(schema_format()))
        + _field(fields["tools"].number, _struct(tool()))
        + _field(fields["tool_choice"].number, _value(tool_choice()))
        + _field(fields["extra_body"].number, _struct({"zz_provider_option": {"y": 1, "x": 2.5}, "aa_option": True}))
    )
    with grpc.insecure_channel(stack.grpc_target) as channel:
        call = channel.unary_unary(
            "/saaslitellm.v1.JobService/CreateAndCall",
            request_serializer=None,  # the bytes as they are
            response_deserializer=job_service_pb2.CreateAndCallResponse.FromString,
        )
        reply = call(data, metadata=(("authorization", f"Bearer {team.key}"),), timeout=30)
    assert reply.call_id
    body = received_by_provider(stack, marker)
    assert_in_order(body)
    assert_extra_body_in_order(body)
