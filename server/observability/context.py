"""The request being served, visible to everything that runs on its behalf.

The interceptor sets it when an RPC starts; the authenticator and upstream wrappers fill
in the team and the model as they learn them; the access log line and the RPC span read
it when the RPC ends. Tasks spawned during the request (call recording) inherit it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class RequestContext:
    request_id: str
    rpc: str
    team_id: str = ""
    job_id: str = ""
    model: str = ""  # the alias the caller used
    upstream_model: str = ""  # the last LiteLLM model tried
    # The reason of the error a stream's last event carried (its RPC itself ends OK).
    stream_error_reason: str = ""
    # The id was made by the server (the caller sent none) and is still to be sent back as
    # initial metadata, which an RPC sends once: with the handler's own, if it sends some.
    id_unsent: bool = False

    def initial_metadata(self, pairs: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[str, str], ...]:
        """`pairs` for the RPC's initial metadata, with the request id if still unsent."""
        if not self.id_unsent:
            return pairs
        self.id_unsent = False
        return (*pairs, ("x-request-id", self.request_id))


current: ContextVar[RequestContext | None] = ContextVar("saaslitellm_request", default=None)


def get() -> RequestContext | None:
    return current.get()


def initial_metadata(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """What a handler that sends initial metadata of its own sends: `pairs`, and the
    request id the server made if it is still unsent (outside an RPC: `pairs`)."""
    request = current.get()
    return pairs if request is None else request.initial_metadata(pairs)
