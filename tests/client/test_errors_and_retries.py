"""Unit: error bodies -> typed exceptions, retry decisions, and call bodies (pure)."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from saas_litellm_client import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ChatMessage,
    ConflictError,
    InsufficientCreditsError,
    InternalServerError,
    JobNotFoundError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    UnavailableError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
    ValidationError,
)
from saas_litellm_client.errors import BY_REASON, error_from_response, error_from_status
from saas_litellm_client.params import call_body
from saas_litellm_client.retry import Repeat, retry_delay

SERVER_REASONS = [
    "INVALID_REQUEST",
    "MISSING_API_KEY",
    "INVALID_API_KEY",
    "ADMIN_KEY_REQUIRED",
    "TEAM_MISMATCH",
    "TEAM_SUSPENDED",
    "TEAM_PAUSED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "JOB_NOT_OPEN",
    "JOB_CALL_LIMIT_REACHED",
    "JOB_COST_LIMIT_REACHED",
    "MODEL_UNPRICED",
    "JOB_ALREADY_FINISHED",
    "IDEMPOTENCY_KEY_REUSED",
    "REQUEST_ALREADY_PROCESSED",
    "INSUFFICIENT_CREDITS",
    "TEAM_RATE_LIMITED",
    "MODEL_NOT_ALLOWED",
    "NO_DEFAULT_MODEL",
    "UPSTREAM_RATE_LIMITED",
    "UPSTREAM_UNAVAILABLE",
    "UPSTREAM_TIMEOUT",
    "UPSTREAM_REJECTED",
    "UPSTREAM_STREAM_INTERRUPTED",
    "DATABASE_UNAVAILABLE",
    "CONFLICTING_CHANGE",
    "SERVER_SHUTTING_DOWN",
    "INTERNAL",
]


def status(code: int, message: str, reason: str = "", metadata=None, *extra: dict) -> dict:
    details = []
    if reason:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "saaslitellm",
                "metadata": metadata or {},
            }
        )
    return {"code": code, "message": message, "details": [*details, *extra]}


def test_every_reason_the_server_documents_has_its_own_class():
    from server.domain.errors import Reason

    documented = {v for k, v in vars(Reason).items() if k.isupper()}
    assert documented == set(SERVER_REASONS) == set(BY_REASON)
    for reason in SERVER_REASONS:
        error = error_from_status(status(3, "m", reason))
        assert type(error) is BY_REASON[reason] and error.reason == reason


def test_an_error_carries_code_reason_message_metadata_and_retry_info():
    body = status(
        8,
        "team 'acme' has 0 credits available",
        "INSUFFICIENT_CREDITS",
        {"credits_available": "0", "team_id": "acme"},
    )
    error = error_from_response(429, json.dumps(body).encode())
    assert isinstance(error, InsufficientCreditsError) and not error.retryable
    assert (error.code, error.http_status, error.credits_available) == (8, 429, 0)
    assert error.metadata == {"credits_available": "0", "team_id": "acme"}
    assert str(error) == "INSUFFICIENT_CREDITS: team 'acme' has 0 credits available (HTTP 429)"

    limited = error_from_status(
        status(
            8, "slow down", "UPSTREAM_RATE_LIMITED", None, {"@type": "x/google.rpc.RetryInfo", "retry_delay": "1.5s"}
        )
    )
    assert isinstance(limited, RateLimitedError) and limited.retryable and limited.retry_after == 1.5


def test_a_provider_refusing_the_models_set_up_is_not_retried_other_unavailability_is():
    down = error_from_status(status(14, "m", "UPSTREAM_UNAVAILABLE", {"upstream_status": "503"}))
    assert isinstance(down, UpstreamUnavailableError) and down.retryable
    for refused in ("401", "403", "404"):
        error = error_from_status(status(14, "m", "UPSTREAM_UNAVAILABLE", {"upstream_status": refused}))
        assert isinstance(error, UpstreamUnavailableError) and not error.retryable


def test_the_field_is_named_from_bad_request_metadata_or_the_message():
    violation = {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "field_violations": [{"field": "max_tokens", "description": "must be between 1 and 10000000"}],
    }
    error = error_from_status(
        status(3, "max_tokens: must be ...", "INVALID_REQUEST", {"field": "max_tokens"}, violation)
    )
    assert isinstance(error, ValidationError) and error.field == "max_tokens"
    assert error.field_violations[0].description == "must be between 1 and 10000000"
    assert error_from_status(status(3, "x", "INVALID_REQUEST", {"field": "job_type"})).field == "job_type"
    envoy = error_from_response(400, b'{"code":3,"details":[],"message":"status: invalid value \\"bogus\\""}')
    assert type(envoy) is ValidationError and envoy.reason == "" and envoy.field == "status"
    assert error_from_status(status(3, "the provider said no", "UPSTREAM_REJECTED")).field is None
    assert isinstance(error_from_status(status(3, "no", "UPSTREAM_REJECTED")), UpstreamRejectedError)


def test_not_found_of_a_job_is_job_not_found():
    job = error_from_status(status(5, "job 'x' not found", "NOT_FOUND", {"resource": "job", "id": "x"}))
    team = error_from_status(status(5, "team 'x' not found", "NOT_FOUND", {"resource": "team", "id": "x"}))
    assert type(job) is JobNotFoundError and type(team) is NotFoundError


@pytest.mark.parametrize(
    ("code", "http_status", "cls"),
    [
        (16, 401, AuthenticationError),
        (6, 409, ConflictError),
        (14, 503, UnavailableError),
        (8, 429, RateLimitedError),
        (0, 503, UnavailableError),
        (0, 502, UnavailableError),
        (0, 500, InternalServerError),
        (0, 599, InternalServerError),
        (0, 418, APIError),
    ],
)
def test_unknown_reasons_map_by_code_then_http_status(code, http_status, cls):
    error = error_from_status(status(code, "m", "SOMETHING_NEW"), http_status=http_status)
    assert type(error) is cls and error.reason == "SOMETHING_NEW"


def test_a_body_that_is_not_a_status_still_gives_a_typed_error_and_retry_after_header():
    error = error_from_response(503, b"<html>upstream connect error</html>", retry_after_header="2")
    assert isinstance(error, UnavailableError) and error.retry_after == 2.0
    assert "upstream connect error" in error.message
    assert error_from_response(502, b"").message == "HTTP 502"


def test_no_secret_from_the_request_is_in_an_error():
    error = error_from_status(status(16, "invalid API key", "INVALID_API_KEY"), http_status=401)
    assert "sk-" not in str(error) and "sk-" not in repr(error.__dict__)


# ---------------------------------------------------------------- retry decisions

POLICY = RetryPolicy(max_attempts=3, initial_delay=0.2, max_delay=2.0, multiplier=2.0)
RATE_LIMITED = RateLimitedError("slow down", code=8, reason="UPSTREAM_RATE_LIMITED", retry_after=0.0)
UNAVAILABLE = UnavailableError("down", code=14, reason="UPSTREAM_UNAVAILABLE")
NO_CREDITS = InsufficientCreditsError("no credits", code=8, reason="INSUFFICIENT_CREDITS")
NOT_SENT = APIConnectionError("refused", request_sent=False)
SENT = APIConnectionError("reset", request_sent=True)


def delay(error, attempt=1, repeat=Repeat.AFTER_REFUSAL, policy=POLICY):
    return retry_delay(error, attempt=attempt, policy=policy, repeat=repeat, rng=lambda: 1.0)


def test_transient_errors_are_retried_within_the_attempt_budget():
    assert delay(RATE_LIMITED) == 0.2 and delay(UNAVAILABLE) == 0.2
    assert delay(UNAVAILABLE, attempt=2) == 0.4
    assert delay(UNAVAILABLE, attempt=3) is None  # 3 attempts made: give up
    assert delay(UNAVAILABLE, policy=RetryPolicy(max_attempts=1)) is None


def test_permanent_errors_are_never_retried():
    for error in (NO_CREDITS, ValidationError("bad", code=3), JobNotFoundError("gone", code=5), ValueError("x")):
        assert delay(error) is None
        assert delay(error, repeat=Repeat.IDEMPOTENT) is None


def test_a_create_without_an_idempotency_key_is_never_retried():
    for error in (RATE_LIMITED, UNAVAILABLE, NOT_SENT, SENT):
        assert delay(error, repeat=Repeat.NEVER) is None
        assert delay(error, repeat=Repeat.IDEMPOTENT) is not None


def test_a_call_is_repeated_after_a_connection_failure_only_if_it_never_left():
    assert delay(NOT_SENT) == 0.2
    assert delay(SENT) is None
    assert delay(SENT, repeat=Repeat.IDEMPOTENT) == 0.2


def test_the_server_delay_is_a_minimum_and_one_beyond_max_delay_is_not_waited():
    assert delay(RateLimitedError("x", retry_after=1.5)) == 1.5
    assert delay(RateLimitedError("x", retry_after=0.0)) == 0.2
    assert delay(RateLimitedError("x", retry_after=30.0)) is None


def test_backoff_is_exponential_bounded_and_jittered():
    policy = RetryPolicy(max_attempts=10, initial_delay=0.5, max_delay=3.0)
    assert [policy.backoff(n, rng=lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [policy.backoff(n, rng=lambda: 0.0) for n in range(1, 4)] == [0.25, 0.5, 1.0]
    assert RetryPolicy(jitter=False, initial_delay=0.5).backoff(2, rng=lambda: 0.0) == 1.0
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# ---------------------------------------------------------------- call bodies


class Weather(BaseModel):
    city: str


def test_known_parameters_go_top_level_and_others_to_extra_body():
    body = call_body(
        [{"role": "user", "content": "hi"}, ChatMessage(role="assistant", content="hello")],
        {"model": "ChatAgent", "temperature": 0.2, "max_tokens": None, "n": 2, "extra_body": {"top_k": 5}},
    )
    assert body == {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        "model": "ChatAgent",
        "temperature": 0.2,
        "extra_body": {"top_k": 5, "n": 2},
    }
    json.dumps(body)


def test_models_inside_parameters_are_dumped_and_conflicts_are_refused():
    body = call_body(
        [{"role": "user", "content": "hi"}], {"tools": [{"type": "function", "function": Weather(city="x")}]}
    )
    assert body["tools"] == [{"type": "function", "function": {"city": "x"}}]
    with pytest.raises(TypeError, match="top_k"):
        call_body([{"role": "user", "content": "x"}], {"top_k": 1, "extra_body": {"top_k": 2}})
    with pytest.raises(TypeError, match="list of messages"):
        call_body("hello", {})
