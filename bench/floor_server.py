"""`python -m bench.floor_server PORT UPSTREAM_URL`: the least a Python grpc.aio server can
do for an LLM call, to measure the floor of the architecture the product fixes.

It serves `JobService.LLMCall` and `LLMCallStream` on uvloop by forwarding the messages to
an OpenAI-compatible `UPSTREAM_URL` (the fake provider) with one aiohttp session, and
answers with the content; streams relay each chunk as it comes. Nothing else: no
authentication, no database, no accounting, no interceptors, no metrics, no logs. The
benchmark calls it in turn with the real server, so "real server - floor" is what our own
work (keys, the job's context, recording, metrics, logs) adds on top of what any grpc.aio
server with an HTTP client adds, on the same machine in the same run.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator

import aiohttp
import grpc
import uvloop
from grpc_health.v1 import health, health_pb2_grpc

from devstack.processes import free_port, port_in_use
from devstack.stack import Stack
from saaslitellm.v1 import job_service_pb2, job_service_pb2_grpc


class FloorServicer(job_service_pb2_grpc.JobServiceServicer):
    def __init__(self, upstream_url: str) -> None:
        self._url = upstream_url
        self._http: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._http = aiohttp.ClientSession()

    def _body(self, request: job_service_pb2.LLMCallRequest, *, stream: bool) -> str:
        messages = [{"role": m.role, "content": m.content.string_value} for m in request.messages]
        return json.dumps({"model": request.model or "fake-gpt", "messages": messages, "stream": stream})

    async def LLMCall(self, request, context) -> job_service_pb2.LLMCallResponse:
        async with self._http.post(self._url, data=self._body(request, stream=False)) as response:
            reply = json.loads(await response.read())
        answer = job_service_pb2.LLMCallResponse(call_id=str(uuid.uuid4()), job_id=request.job_id)
        answer.response.content = reply["choices"][0]["message"]["content"]
        return answer

    async def LLMCallStream(self, request, context) -> AsyncIterator[job_service_pb2.LLMCallStreamResponse]:
        yield job_service_pb2.LLMCallStreamResponse(call_id=str(uuid.uuid4()), job_id=request.job_id)
        async with self._http.post(self._url, data=self._body(request, stream=True)) as response:
            async for raw in response.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                choices = json.loads(data).get("choices") or [{}]
                content = (choices[0].get("delta") or {}).get("content")
                if content:
                    yield job_service_pb2.LLMCallStreamResponse(content=content)
        yield job_service_pb2.LLMCallStreamResponse(done=True, finish_reason="stop")


async def serve(port: int, upstream_url: str) -> None:
    servicer = FloorServicer(upstream_url)
    await servicer.open()
    server = grpc.aio.server()
    job_service_pb2_grpc.add_JobServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"floor server on 127.0.0.1:{port} -> {upstream_url}", flush=True)
    await server.wait_for_termination()


def start_beside(stack: Stack) -> str:
    """Run the floor server as a process of `stack` (it stops with the stack), forwarding to
    the stack's fake provider, like the stack's own server; its gRPC target once it listens."""
    port = free_port()
    command = [sys.executable, "-m", "bench.floor_server", str(port), f"{stack.fake_url}/v1/chat/completions"]
    stack.start_child("floor", command).wait_ready(lambda: port_in_use(port), timeout=30)
    return f"127.0.0.1:{port}"


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: python -m bench.floor_server PORT UPSTREAM_URL", file=sys.stderr)
        return 2
    uvloop.run(serve(int(sys.argv[1]), sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
