"""The things the benchmark calls, one small async function per request kind.

Every request checks its answer (status and the field that proves it worked) and raises
`RequestFailed` otherwise, so a fast error is never counted as a fast success. REST goes
through aiohttp (one ClientSession, keep-alive), gRPC through grpc.aio (one channel per
target; HTTP/2 multiplexes the in-flight calls).

Why aiohttp and not httpx for the load: on these machines httpx 0.28 costs 2-5 ms of client
CPU per request (its pool scans every connection per request, and httpcore 1.0.9 retries a
failing `import sniffio` on every request when sniffio is not installed), against 0.4-0.7 ms
for aiohttp; with httpx the load generator itself was the bottleneck at 32 in flight.

The LiteLLM proxy is called with the same body our server sends it (the model and the
messages; fallbacks and retries are the server's, see server/upstream/litellm.py `payload`),
so "full stack minus LiteLLM direct" compares like with like.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import grpc
from google.protobuf import struct_pb2

from saaslitellm.v1 import chat_pb2, job_pb2, job_service_pb2, job_service_pb2_grpc

PROMPT = "Summarise this short benchmark document in one line, please."
MODEL = "fake-gpt"
FALLBACKS = ["fake-gpt-backup"]


class RequestFailed(RuntimeError):
    """A request did not succeed (wrong status or an answer without its content)."""


def messages(text: str = PROMPT) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def stream_prompt(chunks: int, delay_ms: int) -> str:
    """A prompt the fake answers in exactly `chunks` content chunks, `delay_ms` apart."""
    return f"Tell a story [fake tokens={chunks * 2} chunks={chunks} delay_ms={delay_ms}]"


async def _json(response: aiohttp.ClientResponse, what: str) -> dict:
    if response.status != 200:
        raise RequestFailed(f"{what}: HTTP {response.status}: {(await response.text())[:200]}")
    return await response.json()


async def _post(client: aiohttp.ClientSession, url: str, body: dict, headers: dict, what: str) -> dict:
    async with client.post(url, json=body, headers=headers) as response:
        return await _json(response, what)


async def _sse_data(response: aiohttp.ClientResponse, what: str) -> AsyncIterator[str]:
    """The `data:` payloads of a Server-Sent Events response, as each line arrives."""
    if response.status != 200:
        raise RequestFailed(f"{what}: HTTP {response.status}: {(await response.text())[:200]}")
    async for raw in response.content:
        line = raw.decode().strip()
        if line.startswith("data:"):
            yield line[5:].strip()


# ---------------------------------------------------------------------------- tenants
@dataclass(frozen=True)
class Tenant:
    """A team made for the benchmark: its key and the alias it calls."""

    team_id: str
    key: str
    alias: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)


async def create_tenant(client: aiohttp.ClientSession, api_url: str, admin_key: str, credits: int) -> Tenant:
    """Organization, access group, alias (fake-gpt with a fallback) and team, via the admin API."""
    suffix = uuid.uuid4().hex[:8]
    org, group, alias, team = f"bench-org-{suffix}", f"bench-grp-{suffix}", f"Bench{suffix}", f"bench-team-{suffix}"
    headers = {"X-Admin-Key": admin_key}

    async def admin(path: str, body: dict) -> dict:
        return await _post(client, f"{api_url}/api{path}", body, headers, path)

    await admin("/organizations/create", {"organization_id": org, "name": "Benchmark"})
    await admin("/model-access-groups/create", {"group_name": group})
    await admin(
        "/models/create",
        {"model_alias": alias, "actual_model": MODEL, "fallback_models": FALLBACKS, "access_groups": [group]},
    )
    created = await admin(
        "/teams/create",
        {
            "organization_id": org,
            "team_id": team,
            "access_groups": [group],
            "credits_allocated": credits,
            "default_model": alias,
        },
    )
    return Tenant(team_id=team, key=created["virtual_key"], alias=alias)


# ---------------------------------------------------------------------------- providers
@dataclass(frozen=True)
class Provider:
    """An OpenAI-compatible endpoint called directly: the fake provider or the LiteLLM proxy."""

    base_url: str
    api_key: str = ""

    def body(self, text: str, *, stream: bool = False) -> dict:
        body: dict = {"model": MODEL, "messages": messages(text)}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return body

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def call(self, client: aiohttp.ClientSession, text: str = PROMPT) -> None:
        reply = await _post(client, f"{self.base_url}/v1/chat/completions", self.body(text), self.headers, "completion")
        if not reply["choices"][0]["message"]["content"]:
            raise RequestFailed("chat completion without content")

    async def stream(self, client: aiohttp.ClientSession, text: str) -> StreamTiming:
        timing = StreamTiming()
        async with client.post(
            f"{self.base_url}/v1/chat/completions", json=self.body(text, stream=True), headers=self.headers
        ) as response:
            async for data in _sse_data(response, "stream"):
                if data == "[DONE]":
                    timing.done = True
                    break
                chunk = json.loads(data)
                choices = chunk.get("choices") or [{}]
                timing.event(bool((choices[0].get("delta") or {}).get("content")))
        return timing.finish()


# ---------------------------------------------------------------------------- our API, REST
@dataclass(frozen=True)
class Rest:
    """Our REST API through Envoy."""

    api_url: str
    tenant: Tenant

    async def create_job(self, client: aiohttp.ClientSession) -> str:
        url = f"{self.api_url}/api/jobs/create"
        return (await _post(client, url, {"job_type": "benchmark"}, self.tenant.headers, "create job"))["job_id"]

    async def call(self, client: aiohttp.ClientSession, job_id: str, text: str = PROMPT) -> str:
        url = f"{self.api_url}/api/jobs/{job_id}/llm-call"
        body = await _post(client, url, {"messages": messages(text)}, self.tenant.headers, "llm call")
        if not body["response"]["content"]:
            raise RequestFailed("llm call without content")
        return body["call_id"]

    async def complete(self, client: aiohttp.ClientSession, job_id: str, status: str = "completed") -> None:
        url = f"{self.api_url}/api/jobs/{job_id}/complete"
        done = await _post(client, url, {"status": status}, self.tenant.headers, "complete job")
        if done["status"] != status.upper():
            raise RequestFailed(f"job not {status}")

    async def get_job(self, client: aiohttp.ClientSession, job_id: str) -> None:
        async with client.get(f"{self.api_url}/api/jobs/{job_id}", headers=self.tenant.headers) as response:
            found = await _json(response, "get job")
        if found["job_id"] != job_id:
            raise RequestFailed("get job answered another job")

    async def flow(self, client: aiohttp.ClientSession) -> None:
        job_id = await self.create_job(client)
        await self.call(client, job_id)
        await self.complete(client, job_id)

    async def stream(self, client: aiohttp.ClientSession, job_id: str, text: str) -> StreamTiming:
        timing = StreamTiming()
        async with client.post(
            f"{self.api_url}/api/jobs/{job_id}/llm-call-stream",
            json={"messages": messages(text)},
            headers=self.tenant.headers,
        ) as response:
            async for data in _sse_data(response, "stream"):
                event = json.loads(data)
                if event.get("error"):
                    raise RequestFailed(f"stream error: {event['error']}")
                timing.event(bool(event.get("content")))
                if event.get("done"):
                    timing.done = True
        return timing.finish()


# ---------------------------------------------------------------------------- our API, gRPC
def _chat_message(text: str) -> chat_pb2.ChatMessage:
    return chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))


@dataclass
class Grpc:
    """Our gRPC API, on a server process directly or through Envoy."""

    target: str
    tenant: Tenant
    channel: grpc.aio.Channel | None = None
    stub: job_service_pb2_grpc.JobServiceStub | None = None

    async def open(self) -> Grpc:
        self.channel = grpc.aio.insecure_channel(self.target)
        self.stub = job_service_pb2_grpc.JobServiceStub(self.channel)
        return self

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()

    async def create_job(self) -> str:
        job = await self.stub.CreateJob(
            job_service_pb2.CreateJobRequest(job_type="benchmark"), metadata=self.tenant.grpc_metadata, timeout=60
        )
        return job.job_id

    async def call(self, job_id: str, text: str = PROMPT) -> str:
        reply = await self.stub.LLMCall(
            job_service_pb2.LLMCallRequest(job_id=job_id, messages=[_chat_message(text)]),
            metadata=self.tenant.grpc_metadata,
            timeout=60,
        )
        if not reply.response.content:
            raise RequestFailed("llm call without content")
        return reply.call_id

    async def complete(self, job_id: str, status: str = "completed") -> None:
        wanted = job_pb2.Job.Status.Value(status.upper())
        done = await self.stub.CompleteJob(
            job_service_pb2.CompleteJobRequest(job_id=job_id, status=wanted),
            metadata=self.tenant.grpc_metadata,
            timeout=60,
        )
        if done.status != wanted:
            raise RequestFailed(f"job not {status}")

    async def flow(self) -> None:
        job_id = await self.create_job()
        await self.call(job_id)
        await self.complete(job_id)

    async def stream(self, job_id: str, text: str) -> StreamTiming:
        timing = StreamTiming()
        async for event in self.stub.LLMCallStream(
            job_service_pb2.LLMCallStreamRequest(job_id=job_id, messages=[_chat_message(text)]),
            metadata=self.tenant.grpc_metadata,
            timeout=60,
        ):
            if event.HasField("error"):
                raise RequestFailed(f"stream error: {event.error.message}")
            timing.event(bool(event.content))
            if event.done:
                timing.done = True
        return timing.finish()


# ---------------------------------------------------------------------------- streaming
@dataclass
class StreamTiming:
    """When each event of one stream arrived, in seconds after the request was sent."""

    started: float = field(default_factory=time.perf_counter)
    first_event: float | None = None
    content: list[float] = field(default_factory=list)
    total: float = 0.0
    done: bool = False

    def event(self, has_content: bool) -> None:
        now = time.perf_counter() - self.started
        if self.first_event is None:
            self.first_event = now
        if has_content:
            self.content.append(now)

    def finish(self) -> StreamTiming:
        self.total = time.perf_counter() - self.started
        if not self.done:
            raise RequestFailed("stream ended without its final event")
        return self

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.content, self.content[1:], strict=False)]
