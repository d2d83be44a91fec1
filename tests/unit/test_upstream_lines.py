"""Reading an upstream's SSE body (server/upstream/litellm.py `_lines`) over a real
connection the upstream then breaks: every line that arrived before the break is given,
even to a reader that was behind when it broke, and then the break is raised."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from server.upstream.litellm import _lines


@contextlib.asynccontextmanager
async def serving(handler) -> AsyncIterator[str]:
    """A real HTTP server on a free port answering POST / with `handler`; its URL."""
    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def test_lines_that_arrived_before_the_connection_broke_are_not_lost():
    broken, first_read = asyncio.Event(), asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await reply.prepare(request)
        await reply.write(b'data: {"n": 1}\n\n')
        await first_read.wait()
        await reply.write(b'data: {"n": 2}\n\ndata: {"n": 3}\n\ndata: {"n": 4, "cut": ')  # then cut
        request.transport.abort()
        broken.set()
        return reply

    async with serving(handler) as url, aiohttp.ClientSession() as session, session.post(url) as response:
        lines = _lines(response.content)
        received = [await anext(lines)]
        first_read.set()
        await broken.wait()  # the reader is behind: the rest and the break are both in
        for _ in range(1000):  # ...once aiohttp has seen the connection close
            if response.content.exception() is not None:
                break
            await asyncio.sleep(0.005)
        with pytest.raises(aiohttp.ClientPayloadError):
            async for line in lines:
                received.append(line)
    assert [line for line in received if line] == ['data: {"n": 1}', 'data: {"n": 2}', 'data: {"n": 3}']


async def test_a_long_line_in_many_parts_is_one_line():
    async def handler(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse()
        await reply.prepare(request)
        for _ in range(50):
            await reply.write(b"x" * 10_000)
        await reply.write(b"\r\nend")
        return reply

    async with serving(handler) as url, aiohttp.ClientSession() as session, session.post(url) as response:
        received = [line async for line in _lines(response.content)]
    assert received == ["x" * 500_000, "end"]
