"""The body of an LLM call: typed OpenAI parameters, and where everything else goes.

The API names the OpenAI chat parameters it accepts (`LLMCallRequest` in the protos); any
other provider parameter must travel in `extra_body`. The REST gateway refuses a
top-level field the API does not name (400 naming it), so this client moves every
parameter it does not know into `extra_body`: `top_k=40` reaches the provider.

Except one that names a field of the API's own requests (`job_metadata`, `team_id`,
`status`...): that is a mistake (the data was meant for the API, and would reach a
third-party provider instead), refused with a TypeError that says what to use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from pydantic import BaseModel

Message = Mapping[str, Any] | BaseModel
"""A chat message: a dict such as `{"role": "user", "content": "Hi"}`, or a `ChatMessage`."""

Stop = str | Sequence[str]
ToolChoice = Literal["none", "auto", "required"] | Mapping[str, Any]


class CallOptions(TypedDict, total=False):
    """The typed keyword arguments of `llm_call`, `llm_call_stream`, `structured_call`,
    `estimate_call` and `create_and_call(_stream)` (each method lists them in its signature).

    Any other keyword argument is a provider parameter, sent in `extra_body`, unless it
    names a field of the API's requests (`API_REQUEST_FIELDS`): TypeError. A None value is
    not sent (so optional settings can be passed through as they are).
    """

    model: str | None
    """Model alias, e.g. `ChatAgent`; default: the team's default model."""
    purpose: str | None
    """Label of the call inside the job, e.g. `extract_text`."""
    call_metadata: Mapping[str, Any] | None
    """Merged into the job's metadata after a successful call."""
    temperature: float | None
    max_tokens: int | None
    max_completion_tokens: int | None
    top_p: float | None
    stop: Stop | None
    response_format: Mapping[str, Any] | None
    tools: Sequence[Mapping[str, Any]] | None
    tool_choice: ToolChoice | None
    parallel_tool_calls: bool | None
    frequency_penalty: float | None
    presence_penalty: float | None
    seed: int | None
    user: str | None
    logit_bias: Mapping[str, float] | None
    logprobs: bool | None
    top_logprobs: int | None
    reasoning_effort: str | None
    extra_body: Mapping[str, Any] | None
    """Any other provider parameter, merged into the upstream request as is."""


KNOWN_OPTIONS = frozenset(CallOptions.__annotations__)

API_REQUEST_FIELDS = frozenset(
    {
        # JobService: jobs, calls, single-call jobs, usage, models
        "team_id",
        "job_type",
        "user_id",
        "metadata",
        "job_metadata",
        "idempotency_key",
        "job_id",
        "model_group",
        "status",
        "error_message",
        "start_date",
        "end_date",
        "limit",
        # AdminJobService, CreditService, AdminService, WebhookService: paging, credits, tenancy
        "page_size",
        "page_token",
        "credits",
        "reason",
        "organization_id",
        "name",
        "group_name",
        "display_name",
        "description",
        "model_alias",
        "model_aliases",
        "actual_model",
        "fallback_models",
        "provider",
        "access_group",
        "access_groups",
        "force",
        "team_alias",
        "default_model",
        "budget_mode",
        "credits_allocated",
        "credits_overdraft_limit",
        "credits_per_dollar",
        "tokens_per_credit",
        "markup_percent",
        "calls_per_minute",
        "low_credit_threshold",
        "max_calls_per_job",
        "max_cost_usd_per_job",
        "key_name",
        "key_id",
        "expires_at",
        "grace_period_seconds",
        "state",
        "resource_type",
        "resource_id",
        "url",
        "event_types",
        "endpoint_id",
        "paused",
    }
)
"""Every field of the API's request messages (protos/saaslitellm/v1) that is not a
parameter of a call (`CallOptions`, `messages`). A keyword argument of a call method with
one of these names is refused (TypeError), not sent to the provider.
tests/client/test_call_options.py checks this list against the protos' descriptors."""

_WHAT_TO_USE_IN_A_CALL = {
    "url": "not a provider parameter the API passes on, in extra_body either (LiteLLM reads url as its own setting)",
    "metadata": "use call_metadata= (merged into the job's metadata after the call), or update_job_metadata()",
    "job_metadata": "use call_metadata= (merged into the job's metadata after the call), or update_job_metadata()",
    "team_id": "the virtual key names the team (SaasLiteLLMClient(team_id=...) sends it, to check it)",
    "job_type": "a job's type is set when it is created: create_job(job_type)",
    "user_id": "a job's user is set when it is created: create_job(job_type, user_id=); user= is OpenAI's end-user id",
    "idempotency_key": "a call takes none: create_job() and create_and_call() do",
    "job_id": "the job is the method's job_id argument",
    "status": "use complete_job(job_id, status) once the job's calls are done",
    "error_message": "use complete_job(job_id, 'failed', error_message=)",
    "model_group": "use model=",
}
"""For a call in an existing job: what to use instead of a keyword that names an API field."""

_WHAT_TO_USE_IN_A_SINGLE_CALL_JOB = {
    **_WHAT_TO_USE_IN_A_CALL,
    "job_metadata": "use metadata= (the job's metadata; call_metadata= is merged into it after the call)",
    "job_id": "create_and_call creates its job: use llm_call(job_id, ...) to call in an existing one",
    "status": "create_and_call completes its job itself (create_job, llm_call and complete_job to do it yourself)",
    "error_message": "create_and_call completes its job itself (create_job, llm_call and complete_job to do it yourself)",
}
"""The same for `create_and_call(_stream)`, which creates its job (and whose own keywords
`metadata`, `user_id`, `idempotency_key` never reach here)."""


CLIENT_SETTINGS = {
    "stream": "use llm_call_stream() (create_and_call_stream() for a single-call job) to stream",
    "stream_options": "a stream's usage comes with its last event: use llm_call_stream()",
    "timeout": "the client's own setting: SaasLiteLLMClient(timeout=...); the server bounds each upstream call",
}
"""Keywords a caller may mean for this client, not the provider (the gateway refuses them
in extra_body): refused here with what to use, not sent for a 400 naming `extra_body`."""


def check_options(options: Mapping[str, Any], *, creates_job: bool = False) -> None:
    """TypeError for a keyword argument that names a field of the API's requests: a mistake
    whose data would reach the provider, not the API; or a setting of this client's
    (CLIENT_SETTINGS). None counts as not given."""
    settings = [
        f"{name}: {CLIENT_SETTINGS[name]}"
        for name, value in options.items()
        if name in CLIENT_SETTINGS and value is not None
    ]
    if settings:
        raise TypeError("; ".join(settings))
    refused = [name for name, value in options.items() if name in API_REQUEST_FIELDS and value is not None]
    if not refused:
        return
    hints = _WHAT_TO_USE_IN_A_SINGLE_CALL_JOB if creates_job else _WHAT_TO_USE_IN_A_CALL
    raise TypeError(
        "; ".join(
            f"{name}: {hints[name]}"
            if name in hints
            else f"{name}: not a parameter of this call (it names a field of the API's requests); "
            f"a provider parameter of that name goes in extra_body={{{name!r}: ...}}"
            for name in refused
        )
        + ". A keyword argument that names a field of the API's requests is refused, never sent to the provider."
    )


def session_options(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """`call_options` for a call of a job session, whose job is the session's own: a
    `job_id` keyword is a TypeError saying so (not Python's "multiple values" error)."""
    options = call_options(arguments)
    if options.get("job_id") is not None:
        raise TypeError(
            "job_id: a job session's calls are made in its own job; "
            "call client.llm_call(job_id, ...) to call in another job"
        )
    options.pop("job_id", None)
    return options


def message_dict(message: Message) -> dict[str, Any]:
    """A message as JSON: models without their unset (None) fields, mappings as they are."""
    if isinstance(message, BaseModel):
        return message.model_dump(mode="json", exclude_none=True)
    return dict(message)


def call_options(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A call method's options, from its `locals()` at its start: the `CallOptions` it
    names, then its `provider_params` (any other keyword argument)."""
    options = {name: arguments[name] for name in KNOWN_OPTIONS if name in arguments}
    return {**options, **arguments.get("provider_params", {})}


def call_body(messages: Sequence[Message], options: Mapping[str, Any], *, creates_job: bool = False) -> dict[str, Any]:
    """The JSON body of an LLM call. None values are left out; unknown options go to
    `extra_body`, but one that names a field of the API's requests is a TypeError
    (`check_options`; `creates_job` for `create_and_call`'s hints)."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise TypeError("messages must be a list of messages, e.g. [{'role': 'user', 'content': 'Hi'}]")
    check_options(options, creates_job=creates_job)
    body: dict[str, Any] = {"messages": [message_dict(m) for m in messages]}
    extra = dict(options.get("extra_body") or {})
    for name, value in options.items():
        if value is None or name == "extra_body":
            continue
        if name in KNOWN_OPTIONS:
            body[name] = _plain(value)
        elif name in extra:
            raise TypeError(f"parameter {name!r} given both as a keyword argument and in extra_body")
        else:
            extra[name] = _plain(value)
    if extra:
        body["extra_body"] = _plain(extra)
    return body


def _plain(value: Any) -> Any:
    """JSON-ready: Pydantic models dumped, mappings and sequences copied."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
