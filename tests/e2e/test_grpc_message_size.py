"""Native gRPC through Envoy has the server's message limit (SAAS_MAX_MESSAGE_BYTES, 8 MiB),
as when called directly; the 4 MiB body limit is REST's alone."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import requests
from google.protobuf import struct_pb2

from saaslitellm.v1 import chat_pb2, job_service_pb2, job_service_pb2_grpc
from tests.e2e.conftest import RestTeam

MiB = 2**20
SERVER_LIMIT = 8 * MiB  # SAAS_MAX_MESSAGE_BYTES's default, the stack's


def llm_call(target: str, team: RestTeam, text_bytes: int) -> job_service_pb2.LLMCallResponse:
    options = [("grpc.max_send_message_length", 64 * MiB)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        metadata = (("authorization", f"Bearer {team.key}"),)
        job = stub.CreateJob(job_service_pb2.CreateJobRequest(job_type="t"), metadata=metadata, timeout=10)
        text = "a" * text_bytes + " [fake tokens=2]"
        message = chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))
        request = job_service_pb2.LLMCallRequest(job_id=job.job_id, model=team.alias, messages=[message])
        return stub.LLMCall(request, metadata=metadata, timeout=60)


def test_a_grpc_request_over_4_mib_passes_through_envoy(stack, team):
    response = llm_call(f"127.0.0.1:{stack.config.ports.envoy}", team, 5 * MiB)
    assert response.call_id


def test_a_grpc_request_over_the_servers_limit_is_resource_exhausted_through_envoy_as_directly(stack, team):
    refusals = []
    for target in (f"127.0.0.1:{stack.config.ports.envoy}", stack.grpc_target):
        with pytest.raises(grpc.RpcError) as raised:
            llm_call(target, team, SERVER_LIMIT + MiB)
        refusals.append((raised.value.code(), raised.value.details()))
    through_envoy, direct = refusals
    assert through_envoy[0] == grpc.StatusCode.RESOURCE_EXHAUSTED, through_envoy
    assert str(SERVER_LIMIT) in through_envoy[1] and not through_envoy[1].startswith("{"), through_envoy
    assert through_envoy == direct


def test_a_rest_body_over_4_mib_is_still_413(api, team):
    def chunks() -> Iterator[bytes]:  # no Content-Length: the buffer filter's limit, not the transcoder's
        for _ in range(5):
            yield b" " * MiB

    headers = {**team.headers, "Content-Type": "application/json"}
    response = requests.post(f"{api}/jobs/create", data=chunks(), headers=headers, timeout=30)
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == 3 and body["message"] == "request body too large (the limit is 4 MiB)", body
    assert [detail["reason"] for detail in body["details"]] == ["INVALID_REQUEST"], body
