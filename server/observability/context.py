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


current: ContextVar[RequestContext | None] = ContextVar("saaslitellm_request", default=None)


def get() -> RequestContext | None:
    return current.get()
