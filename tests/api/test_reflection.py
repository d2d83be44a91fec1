"""Server reflection (grpcurl): every symbol described, and open reflection streams, which
need no key, hold nothing the calls need (server/api/reflection.py)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import create_team
from tests.api.test_job_flow import user

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")


async def describe(port: int, symbol: str) -> tuple[int, str, str]:
    """grpcurl's exit code, output and errors (run beside the server, which shares this loop)."""
    process = await asyncio.create_subprocess_exec(
        GRPCURL,
        "-plaintext",
        "-max-time",
        "10",
        f"127.0.0.1:{port}",
        "describe",
        symbol,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("symbol", "said"),
    [
        ("saaslitellm.v1.JobService.CreateJob", "is a method"),
        ("saaslitellm.v1.JobService.LLMCallStream", "is a method"),
        ("saaslitellm.v1.AdminService.CreateTeam", "is a method"),
        ("grpc.health.v1.Health.Check", "is a method"),
        ("saaslitellm.v1.JobService", "is a service"),
        ("saaslitellm.v1.CreateJobRequest", "is a message"),
    ],
)
async def test_grpcurl_describes_every_kind_of_symbol(app, symbol, said):
    """A method was 'Symbol not found': the Python descriptor pool does not index them."""
    code, out, err = await describe(app.port, symbol)
    assert code == 0 and f"{symbol} {said}" in out, err


@pytest.mark.parametrize("symbol", ["saaslitellm.v1.JobService.NoSuchMethod", "saaslitellm.v1.NoSuchService.X"])
async def test_an_unknown_symbol_is_still_not_found(app, symbol):
    code, _, err = await describe(app.port, symbol)
    assert code != 0 and "Symbol not found" in err, err


async def test_open_reflection_streams_do_not_stall_calls(app, admin, jobs, channel):
    """The synchronous servicer held a thread of the loop's default executor per open
    stream: a few idle grpcurl sessions, no key needed, and every long prompt's token count
    (asyncio.to_thread) waited for them. 40 streams, more than that executor has threads."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    opened, streams = [], []
    for _ in range(40):
        requests: asyncio.Queue = asyncio.Queue()

        async def sent(queue=requests):
            while (request := await queue.get()) is not None:
                yield request

        stream = stub.ServerReflectionInfo(sent())
        await requests.put(reflection_pb2.ServerReflectionRequest(list_services=""))
        opened.append(requests)
        streams.append(stream)
        answer = await asyncio.wait_for(stream.read(), 10)  # each answers, then waits for more
        assert answer.list_services_response.service
    try:
        team = await create_team(admin)
        long_prompt = "word " * 14_000  # 70,000 characters: counted in a worker thread (tokens._INLINE_CHARS)
        request = pb.EstimateCallRequest(messages=[user(long_prompt)], max_tokens=10)
        estimate = await asyncio.wait_for(jobs.EstimateCall(request, metadata=team.auth), 10)
        assert estimate.input_tokens_estimate >= 14_000
    finally:
        for requests, stream in zip(opened, streams, strict=True):
            await requests.put(None)
            with contextlib.suppress(Exception):
                stream.cancel()
