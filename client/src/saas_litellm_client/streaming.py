"""Server-Sent Events of `llm-call-stream` (and `create-and-call-stream`) as typed chunks,
with the end-of-stream contract.

The wire format (SSE framing) is parsed by httpx-sse. `StreamDecoder` is the pure part:
it turns each event's `data` into a `StreamChunk` (or a subclass: `CreateAndCallChunk`),
keeps the text received so far, raises
the in-band error of a failed stream as its typed exception, and, at the end of the
input, raises `StreamCutError` unless an event with `done: true` arrived. `LLMStream`
drives it over an HTTP response.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx
import httpx_sse
import pydantic

from saas_litellm_client.errors import StreamCutError, error_from_status
from saas_litellm_client.models import StreamChunk, Usage

C = TypeVar("C", bound=StreamChunk)


class StreamDecoder(Generic[C]):
    """Decodes the `data` of each event, in order, as `chunk_model`s. Pure: no I/O."""

    def __init__(self, chunk_model: type[C] = StreamChunk) -> None:  # type: ignore[assignment]
        self.chunk_model = chunk_model
        self._parts: list[str] = []
        self.call_id: str | None = None
        self.job_id: str | None = None
        self.model: str | None = None
        self.final: C | None = None
        self.events = 0

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    def feed(self, data: str) -> C | None:
        """One event's data -> its chunk (None for a keep-alive: an empty event, or one with
        `keepalive: true`, which the server sends while the model is silent).

        Raises the typed `APIError` of an in-band error (its `call_id` and `partial_content`
        set), and `StreamCutError` for an event that is not a chunk or comes after the last one.
        """
        if not data.strip():
            return None
        if self.final is not None:
            raise StreamCutError(
                "the stream sent an event after its final one", content=self.text, call_id=self.call_id
            )
        try:
            payload = json.loads(data)
            if isinstance(payload, dict) and payload.get("keepalive") is True:
                return None
            chunk = self.chunk_model.model_validate(payload)
        except (ValueError, pydantic.ValidationError) as malformed:
            raise StreamCutError(
                f"the stream sent a malformed event: {data[:100]!r}", content=self.text, call_id=self.call_id
            ) from malformed
        self.events += 1
        self.call_id = self.call_id or chunk.call_id
        self.job_id = self.job_id or chunk.job_id
        self.model = self.model or chunk.model
        self._parts.append(chunk.content)
        if chunk.error is not None and (chunk.error.code or chunk.error.message or chunk.error.details):
            self.final = chunk
            error = error_from_status(chunk.error.model_dump())
            error.call_id = self.call_id
            error.partial_content = self.text
            raise error
        if chunk.done:
            self.final = chunk
        return chunk

    def finish(self) -> C:
        """The end of the input: the final chunk, or `StreamCutError` if there was none."""
        if self.final is None:
            raise StreamCutError(
                f"the stream ended after {self.events} event(s) without its final event (done: true); "
                "treat the call as failed",
                content=self.text,
                call_id=self.call_id,
            )
        return self.final


class LLMStream(Generic[C]):
    """The chunks of one streamed call: `async for chunk in stream`.

    The request is sent on the first iteration. Iteration ends after the chunk with
    `done=True` (available as `final`, with `usage` and `cost_usd`); an in-band error
    raises its typed `APIError`, a cut stream `StreamCutError`. Use `async with` (or
    `aclose()`) when you may stop iterating early, so the connection is released at once.
    Chunks are `StreamChunk`s (`LLMStream[StreamChunk]`), or `CreateAndCallChunk`s for
    `create_and_call_stream`.

    `settle(call_id)`, when given, is awaited by `aclose()` for a call cut before its final
    event: it waits until the server has recorded the call (it does so once it sees the
    client gone), so that whatever the caller does next, such as completing the job, comes
    after. `open_streams` is a set the stream is in while its response is open, so that
    its owner can release it when it closes.
    """

    def __init__(
        self,
        open_response: Callable[[], Awaitable[httpx.Response]],
        chunk_model: type[C] = StreamChunk,  # type: ignore[assignment]
        *,
        settle: Callable[[str], Awaitable[None]] | None = None,
        open_streams: set[LLMStream[Any]] | None = None,
    ) -> None:
        self._open = open_response
        self._response: httpx.Response | None = None
        self._iterator: AsyncGenerator[httpx_sse.ServerSentEvent, None] | None = None
        self._decoder = StreamDecoder(chunk_model)
        self._closed = False
        self._started = False  # the server accepted the call: its response is (or was) open
        self._settle = settle
        self._settled = False
        self._open_streams = open_streams

    @property
    def text(self) -> str:
        """The text received so far (all of it once iteration has ended)."""
        return self._decoder.text

    @property
    def final(self) -> C | None:
        """The last chunk (`done=True`: usage, cost, finish_reason) once it arrived."""
        return self._decoder.final

    @property
    def call_id(self) -> str | None:
        return self._decoder.call_id

    @property
    def job_id(self) -> str | None:
        """The job of the call, from the first event."""
        return self._decoder.job_id

    @property
    def usage(self) -> Usage | None:
        return self.final.usage if self.final else None

    @property
    def cost_usd(self) -> float | None:
        return self.final.cost_usd if self.final else None

    @property
    def closed(self) -> bool:
        """True once the stream is released and, for a call cut before its final event,
        `aclose()` has waited for the server to record it (or there was nothing to wait for)."""
        return self._closed and not self._unsettled

    @property
    def _unsettled(self) -> bool:
        """A call the server accepted and this stream left before its final event, not yet waited for."""
        return self._settle is not None and self._started and self.final is None and not self._settled

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> C:
        while True:
            if self._closed or self._decoder.final is not None:
                await self._release()
                raise StopAsyncIteration
            if self._iterator is None:
                self._response = await self._open()
                self._started = True
                if self._open_streams is not None:
                    self._open_streams.add(self)
                self._iterator = httpx_sse.EventSource(self._response).aiter_sse()
            try:
                event = await anext(self._iterator)
                chunk = self._decoder.feed(event.data)
            except StopAsyncIteration:
                await self._release()
                self._decoder.finish()
                raise
            except httpx_sse.SSEError as error:
                await self._release()
                raise StreamCutError(str(error), content=self.text, call_id=self.call_id) from error
            except httpx.HTTPError as error:
                await self._release()
                raise StreamCutError(
                    f"the stream broke ({type(error).__name__}) before its final event; treat the call as failed",
                    content=self.text,
                    call_id=self.call_id,
                ) from error
            except BaseException:
                await self._release()
                raise
            if chunk is not None:
                return chunk

    async def aclose(self) -> None:
        """Stops reading and releases the connection. Idempotent.

        For a call of a job left before its final event (a `break`, a cut stream), it then
        waits until the server has recorded the call (as cancelled, with what it had
        produced), so that completing the job next settles it with this call.
        """
        await self._release()
        settle = self._settle
        if settle is not None and self._unsettled:
            self._settled = True
            if self.call_id is not None:  # else no event came: there is no call to find
                await settle(self.call_id)

    async def _release(self) -> None:
        """Stops reading and releases the connection: the server then sees the client gone."""
        self._closed = True
        iterator, self._iterator = self._iterator, None
        try:
            if iterator is not None:
                await iterator.aclose()
        finally:
            response, self._response = self._response, None
            if self._open_streams is not None:
                self._open_streams.discard(self)
            if response is not None:
                await response.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
