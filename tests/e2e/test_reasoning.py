"""A reasoning model's thinking (`reasoning_content`) reaches the client on every surface:
REST (SSE) and native gRPC through Envoy, and /v1 through the OpenAI SDK; streamed as it
arrives, before the answer, and kept in a plain call's answer. Everything goes through
Envoy -> server -> LiteLLM -> fake provider (`[fake reasoning=N]`)."""

from __future__ import annotations

import json

import grpc
import openai
import psycopg
import requests
from google.protobuf import struct_pb2

from saaslitellm.v1 import chat_pb2, job_service_pb2, job_service_pb2_grpc
from tests.e2e.conftest import RestTeam

PROMPT = "think first [fake reasoning=4 tokens=3 chunks=3]"


def create_job(api: str, team: RestTeam) -> str:
    response = requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=team.headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


def the_reasoning(stack) -> str:
    """What the fake provider reasons for PROMPT, read from it directly."""
    body = {"model": "fake-gpt", "messages": [{"role": "user", "content": PROMPT}]}
    reply = requests.post(f"{stack.fake_url}/v1/chat/completions", json=body, timeout=10).json()
    return reply["choices"][0]["message"]["reasoning_content"]


def rest_stream(api: str, team: RestTeam, job_id: str, text: str) -> requests.Response:
    return requests.post(
        f"{api}/jobs/{job_id}/llm-call-stream",
        json={"messages": [{"role": "user", "content": text}]},
        headers=team.headers,
        stream=True,
        timeout=30,
    )


def kinds(deltas: list[dict]) -> list[str]:
    """`reasoning` or `content` for each delta that carries either, in order."""
    return [
        "reasoning" if d.get("reasoning_content") else "content"
        for d in deltas
        if d.get("reasoning_content") or d.get("content")
    ]


def test_rest_streams_each_reasoning_delta_before_the_content(stack, api, team):
    job_id = create_job(api, team)
    with rest_stream(api, team, job_id, PROMPT) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith(b"data: ")]
    deltas = [event["choices"][0]["delta"] for event in events if event.get("choices")]
    # Four events of reasoning, each on its own (one per provider chunk, not batched), then the answer.
    assert kinds(deltas) == ["reasoning"] * 4 + ["content"] * 3, events
    assert "".join(d.get("reasoning_content", "") for d in deltas) == the_reasoning(stack)
    reasoning_events = [e for e in events if e.get("choices") and e["choices"][0]["delta"].get("reasoning_content")]
    assert all(not e.get("content") for e in reasoning_events), reasoning_events  # the answer's text is apart
    assert events[-1]["done"] is True and events[-1]["usage"]["completion_tokens"] == 7, events[-1]


def test_reasoning_is_forwarded_while_the_answer_is_still_to_come(stack, api, team):
    # The provider sends its reasoning, then nothing: the client has it all the same.
    job_id = create_job(api, team)
    with rest_stream(api, team, job_id, "think [fake reasoning=3 stall_after=0]") as response:
        reasoning = []
        for line in response.iter_lines():
            if line.startswith(b"data: "):
                event = json.loads(line[6:])
                delta = event["choices"][0]["delta"] if event.get("choices") else {}
                if delta.get("reasoning_content"):
                    reasoning.append(delta["reasoning_content"])
                if len(reasoning) == 3:
                    break
    assert len("".join(reasoning).split()) == 3, reasoning


def test_a_reasoning_delta_is_the_calls_first_token_and_not_its_recorded_content(stack, api, team):
    # The answer comes 800 ms after the reasoning: the first token is the reasoning's.
    job_id = create_job(api, team)
    with rest_stream(api, team, job_id, "think [fake reasoning=2 tokens=2 first_delay_ms=800]") as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith(b"data: ")]
    answer = "".join(event.get("content", "") for event in events)
    assert events[-1]["done"] is True and len(answer.split()) == 2, events
    with psycopg.connect(stack.postgres.url) as conn:
        first_token_ms, latency_ms, content = conn.execute(
            "SELECT first_token_ms, latency_ms, content FROM llm_calls WHERE job_id = %s", (job_id,)
        ).fetchone()
    assert first_token_ms < 800 <= latency_ms, (first_token_ms, latency_ms)
    assert content in (None, answer), content  # the reasoning is returned, never stored


def test_a_rest_calls_answer_carries_its_reasoning(stack, api, team):
    job_id = create_job(api, team)
    response = requests.post(
        f"{api}/jobs/{job_id}/llm-call",
        json={"messages": [{"role": "user", "content": PROMPT}]},
        headers=team.headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    answer = response.json()["response"]
    assert answer["reasoning_content"] == the_reasoning(stack), answer
    assert len(answer["content"].split()) == 3 and answer["reasoning_content"] not in answer["content"], answer


def grpc_call(stack, team: RestTeam, rpc: str, request_type: type):
    with grpc.insecure_channel(f"127.0.0.1:{stack.config.ports.envoy}") as channel:
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        metadata = (("authorization", f"Bearer {team.key}"),)
        job = stub.CreateJob(job_service_pb2.CreateJobRequest(job_type="t"), metadata=metadata, timeout=10)
        message = chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=PROMPT))
        request = request_type(job_id=job.job_id, model=team.alias, messages=[message])
        result = getattr(stub, rpc)(request, metadata=metadata, timeout=30)
        return result if rpc == "LLMCall" else list(result)


def test_native_grpc_streams_reasoning_before_content(stack, team):
    events = grpc_call(stack, team, "LLMCallStream", job_service_pb2.LLMCallStreamRequest)
    deltas = [event.choices[0].delta for event in events if event.choices]
    order = [
        "reasoning" if d.HasField("reasoning_content") else "content"
        for d in deltas
        if d.HasField("reasoning_content") or d.HasField("content")
    ]
    assert order == ["reasoning"] * 4 + ["content"] * 3, events
    assert "".join(d.reasoning_content for d in deltas) == the_reasoning(stack)
    assert events[-1].done


def test_a_native_grpc_calls_answer_carries_its_reasoning(stack, team):
    response = grpc_call(stack, team, "LLMCall", job_service_pb2.LLMCallRequest)
    assert response.response.reasoning_content == the_reasoning(stack), response
    assert len(response.response.content.split()) == 3


def sdk(stack, team: RestTeam) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=team.key, max_retries=0)


def test_the_openai_sdk_sees_reasoning_in_the_message(stack, team):
    completion = sdk(stack, team).chat.completions.create(
        model=team.alias, messages=[{"role": "user", "content": PROMPT}]
    )
    message = completion.choices[0].message
    assert message.model_extra["reasoning_content"] == the_reasoning(stack), message
    assert len(message.content.split()) == 3


def test_the_openai_sdk_sees_reasoning_deltas_before_content(stack, team):
    stream = sdk(stack, team).chat.completions.create(
        model=team.alias, messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    deltas = [chunk.choices[0].delta.model_dump() for chunk in stream if chunk.choices]
    assert kinds(deltas) == ["reasoning"] * 4 + ["content"] * 3, deltas
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == the_reasoning(stack)
