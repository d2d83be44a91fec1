"""Typed exceptions, keyed by the server's stable `ErrorInfo.reason`.

Every error body of the API (Envoy's own included) is a `google.rpc.Status` in JSON:
`{"code", "message", "details": [ErrorInfo, BadRequest, RetryInfo, ...]}`. `error_from_status`
turns one into the most specific exception: first by `reason` (the contract the server
promises never to change), then, for reasons this client does not know yet, by the gRPC
code, then by the HTTP status. Catch the classes you can act on; catch `APIError` for the rest.

    SaasLiteLLMError
    ├── APIConnectionError, APITimeoutError     the server could not be reached or did not answer
    ├── StreamCutError                          a stream ended without its final `done` event
    ├── StructuredOutputError                   the model's reply did not fit the response model
    └── APIError                                the server answered with an error
        ├── ValidationError (.field)            INVALID_REQUEST; NoDefaultModelError, UpstreamRejectedError
        ├── AuthenticationError                 MISSING_API_KEY, INVALID_API_KEY, ADMIN_KEY_REQUIRED
        ├── PermissionDeniedError               TeamMismatchError, TeamSuspendedError, TeamPausedError,
        │                                       ModelNotAllowedError
        ├── NotFoundError                       JobNotFoundError
        ├── ConflictError                       AlreadyExistsError, IdempotencyKeyReusedError
        ├── FailedPreconditionError             JobNotOpenError, JobAlreadyFinishedError
        ├── InsufficientCreditsError            (429, but not transient: it needs credits, not time)
        ├── RateLimitedError                    UPSTREAM_RATE_LIMITED; TeamRateLimitedError (transient)
        ├── UnavailableError                    UpstreamUnavailableError, DatabaseUnavailableError,
        │                                       ConflictingChangeError, ServerShuttingDownError (transient)
        ├── DeadlineExceededError               UpstreamTimeoutError
        ├── StreamInterruptedError              UPSTREAM_STREAM_INTERRUPTED (in-band, after streaming began)
        └── InternalServerError                 INTERNAL
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import pydantic

# gRPC status codes (google.rpc.Code) that the API uses.
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request (`google.rpc.BadRequest.FieldViolation`)."""

    field: str
    description: str


class SaasLiteLLMError(Exception):
    """Base class of every exception this client raises."""


class APIConnectionError(SaasLiteLLMError):
    """The request did not get an answer: the connection failed or broke.

    `request_sent` is False when the request never reached the server (connect failure),
    so repeating it is always safe.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """The request timed out on the client side (see the client's `timeout`)."""


class StreamCutError(SaasLiteLLMError):
    """A stream ended without its final `done: true` event: treat the call as failed.

    `content` is the text received before the cut; `call_id` identifies the call when the
    first event arrived (the server recorded it either way).
    """

    def __init__(self, message: str, *, content: str = "", call_id: str | None = None) -> None:
        super().__init__(message)
        self.content = content
        self.call_id = call_id


class StructuredOutputError(SaasLiteLLMError):
    """The model's reply to `structured_call` is not valid JSON for the response model.

    `raw_content` is the reply exactly as received, `validation_error` pydantic's account of
    what is wrong, `response` the full call result (cost, call id) and `attempts` how many
    calls were made.
    """

    def __init__(
        self,
        message: str,
        *,
        raw_content: str,
        validation_error: pydantic.ValidationError,
        response: Any,
        attempts: int,
    ) -> None:
        super().__init__(message)
        self.raw_content = raw_content
        self.validation_error = validation_error
        self.response = response
        self.attempts = attempts


class APIError(SaasLiteLLMError):
    """The server answered with an error. Attributes mirror the `google.rpc.Status`:

    - `code`: the gRPC status code (e.g. 8 for RESOURCE_EXHAUSTED);
    - `reason`: `ErrorInfo.reason` (e.g. `INSUFFICIENT_CREDITS`), empty when the error has none
      (for example the gateway's 404 for an unknown path);
    - `message`: the server's message, written for a person;
    - `metadata`: `ErrorInfo.metadata` (e.g. `credits_available`);
    - `field_violations`: from `BadRequest`; `retry_after`: seconds, from `RetryInfo` or `Retry-After`;
    - `http_status`: the HTTP status (None for an in-band stream error); `details`: the raw details;
    - `call_id`, `partial_content`: for an in-band stream error, the call and the text received before it.
    """

    retryable: ClassVar[bool] = False
    """True for transient failures that the client retries (with backoff) where safe."""

    def __init__(
        self,
        message: str,
        *,
        code: int = 0,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
        retry_after: float | None = None,
        http_status: int | None = None,
        details: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations = tuple(field_violations)
        self.retry_after = retry_after
        self.http_status = http_status
        self.details = [dict(d) for d in details]
        self.call_id: str | None = None
        """For an in-band stream error: the call it ended."""
        self.partial_content: str | None = None
        """For an in-band stream error: the text streamed before it."""

    def __str__(self) -> str:
        label = self.reason or f"code {self.code}"
        status = f" (HTTP {self.http_status})" if self.http_status else ""
        return f"{label}: {self.message}{status}"


class ValidationError(APIError):
    """The request was invalid (INVALID_ARGUMENT). `field` names the offending field when known.

    Not to be confused with `pydantic.ValidationError`, which `StructuredOutputError` carries.
    """

    @property
    def field(self) -> str | None:
        if self.field_violations:
            return self.field_violations[0].field
        if self.metadata.get("field"):
            return self.metadata["field"]
        match = re.match(r"([A-Za-z_][\w.\[\]]*): ", self.message)
        return match.group(1) if match else None


class NoDefaultModelError(ValidationError):
    """The call named no model and the team has no default model (NO_DEFAULT_MODEL)."""


class UpstreamRejectedError(ValidationError):
    """The model provider rejected the request, e.g. a bad parameter (UPSTREAM_REJECTED)."""


class AuthenticationError(APIError):
    """The virtual key is missing or not valid (MISSING_API_KEY, INVALID_API_KEY, ...)."""


class PermissionDeniedError(APIError):
    """The key is valid but may not do this (PERMISSION_DENIED)."""


class TeamMismatchError(PermissionDeniedError):
    """The `team_id` given is not the key's team (TEAM_MISMATCH)."""


class TeamSuspendedError(PermissionDeniedError):
    """The team is suspended (TEAM_SUSPENDED)."""


class TeamPausedError(PermissionDeniedError):
    """The team is paused (TEAM_PAUSED)."""


class ModelNotAllowedError(PermissionDeniedError):
    """The model alias is not available to the team (MODEL_NOT_ALLOWED); `metadata["model"]` names it."""


class NotFoundError(APIError):
    """The resource does not exist, or belongs to another team (NOT_FOUND)."""


class JobNotFoundError(NotFoundError):
    """The job does not exist, or belongs to another team."""


class ConflictError(APIError):
    """ALREADY_EXISTS."""


class AlreadyExistsError(ConflictError):
    """The resource already exists (ALREADY_EXISTS)."""


class IdempotencyKeyReusedError(ConflictError):
    """The idempotency key was already used for a different job (IDEMPOTENCY_KEY_REUSED)."""


class RequestAlreadyProcessedError(ConflictError):
    """A create-and-call with this idempotency key already ran (REQUEST_ALREADY_PROCESSED);
    `metadata["job_id"]` names its job."""


class FailedPreconditionError(APIError):
    """The request is not valid in the resource's current state (FAILED_PRECONDITION)."""


class JobNotOpenError(FailedPreconditionError):
    """Calls are accepted only on PENDING or IN_PROGRESS jobs (JOB_NOT_OPEN)."""


class JobCallLimitReachedError(FailedPreconditionError):
    """The job made the team's max_calls_per_job already (JOB_CALL_LIMIT_REACHED): complete
    it and continue in a new job."""


class JobCostLimitReachedError(FailedPreconditionError):
    """The call's worst-case cost does not fit in what the team's max_cost_usd_per_job
    leaves the job (JOB_COST_LIMIT_REACHED): ask for fewer tokens (max_tokens), or complete
    the job and continue in a new one. `metadata` holds the limit, `spent_usd`,
    `reserved_usd` (calls in flight) and `call_worst_case_usd`."""

    def _usd(self, key: str) -> Decimal | None:
        value = self.metadata.get(key)
        return None if value is None else Decimal(value)

    @property
    def spent_usd(self) -> Decimal | None:
        """What the job's calls have cost the team so far."""
        return self._usd("spent_usd")

    @property
    def call_worst_case_usd(self) -> Decimal | None:
        """The most the refused call could have cost."""
        return self._usd("call_worst_case_usd")


class ModelUnpricedError(FailedPreconditionError):
    """The team limits the cost of a job, and the model may be served by a model with no
    known price (MODEL_UNPRICED): the operator must price it; until then use another model."""


class JobAlreadyFinishedError(FailedPreconditionError):
    """The job was already completed with the other status (JOB_ALREADY_FINISHED)."""


class InsufficientCreditsError(APIError):
    """The team has no credit available for another open job (INSUFFICIENT_CREDITS). Never retried."""

    @property
    def credits_available(self) -> int | None:
        value = self.metadata.get("credits_available")
        return int(value) if value is not None and value.lstrip("-").isdigit() else None


class RateLimitedError(APIError):
    """The model provider (or a proxy) is rate limiting (UPSTREAM_RATE_LIMITED); `retry_after` says how long."""

    retryable = True


class TeamRateLimitedError(RateLimitedError):
    """The team made its calls_per_minute already (TEAM_RATE_LIMITED); `retry_after` says
    when a place frees. Nothing was recorded or charged, so a retry is safe."""


class UnavailableError(APIError):
    """A dependency is temporarily unavailable (UNAVAILABLE)."""

    retryable = True


class UpstreamUnavailableError(UnavailableError):
    """The model provider failed or could not be reached (UPSTREAM_UNAVAILABLE). Not
    retried when the provider refused the operator's set-up of the model (its
    credentials, account or name: `upstream_status` 401, 402, 403 or 404): only the
    operator can fix that."""

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.metadata.get("upstream_status") not in ("401", "402", "403", "404")


class DatabaseUnavailableError(UnavailableError):
    """The service's database is unavailable (DATABASE_UNAVAILABLE)."""


class ConflictingChangeError(UnavailableError):
    """The request collided in the service's database with a concurrent one and was rolled
    back (CONFLICTING_CHANGE): nothing changed; retried."""


class ServerShuttingDownError(UnavailableError):
    """The server shut down before the answer was complete (SERVER_SHUTTING_DOWN; a
    stream's in-band, in its last event). A single-call job cut this way is failed, so
    free: make the request again."""


class DeadlineExceededError(APIError):
    """The request took too long on the server side (DEADLINE_EXCEEDED)."""


class UpstreamTimeoutError(DeadlineExceededError):
    """The model provider did not answer in time (UPSTREAM_TIMEOUT). Not retried: it may have done the work."""


class StreamInterruptedError(APIError):
    """The provider's stream broke after streaming began (UPSTREAM_STREAM_INTERRUPTED, in-band)."""


class InternalServerError(APIError):
    """The server failed unexpectedly (INTERNAL)."""


BY_REASON: dict[str, type[APIError]] = {
    "INVALID_REQUEST": ValidationError,
    "NO_DEFAULT_MODEL": NoDefaultModelError,
    "UPSTREAM_REJECTED": UpstreamRejectedError,
    "MISSING_API_KEY": AuthenticationError,
    "INVALID_API_KEY": AuthenticationError,
    "ADMIN_KEY_REQUIRED": AuthenticationError,
    "TEAM_MISMATCH": TeamMismatchError,
    "TEAM_SUSPENDED": TeamSuspendedError,
    "TEAM_PAUSED": TeamPausedError,
    "MODEL_NOT_ALLOWED": ModelNotAllowedError,
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "IDEMPOTENCY_KEY_REUSED": IdempotencyKeyReusedError,
    "REQUEST_ALREADY_PROCESSED": RequestAlreadyProcessedError,
    "JOB_NOT_OPEN": JobNotOpenError,
    "JOB_CALL_LIMIT_REACHED": JobCallLimitReachedError,
    "JOB_COST_LIMIT_REACHED": JobCostLimitReachedError,
    "MODEL_UNPRICED": ModelUnpricedError,
    "JOB_ALREADY_FINISHED": JobAlreadyFinishedError,
    "INSUFFICIENT_CREDITS": InsufficientCreditsError,
    "UPSTREAM_RATE_LIMITED": RateLimitedError,
    "TEAM_RATE_LIMITED": TeamRateLimitedError,
    "UPSTREAM_UNAVAILABLE": UpstreamUnavailableError,
    "DATABASE_UNAVAILABLE": DatabaseUnavailableError,
    "CONFLICTING_CHANGE": ConflictingChangeError,
    "SERVER_SHUTTING_DOWN": ServerShuttingDownError,
    "UPSTREAM_TIMEOUT": UpstreamTimeoutError,
    "UPSTREAM_STREAM_INTERRUPTED": StreamInterruptedError,
    "INTERNAL": InternalServerError,
}

BY_CODE: dict[int, type[APIError]] = {
    INVALID_ARGUMENT: ValidationError,
    DEADLINE_EXCEEDED: DeadlineExceededError,
    NOT_FOUND: NotFoundError,
    ALREADY_EXISTS: ConflictError,
    PERMISSION_DENIED: PermissionDeniedError,
    RESOURCE_EXHAUSTED: RateLimitedError,
    FAILED_PRECONDITION: FailedPreconditionError,
    INTERNAL: InternalServerError,
    UNAVAILABLE: UnavailableError,
    UNAUTHENTICATED: AuthenticationError,
}

BY_HTTP_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitedError,
    500: InternalServerError,
    502: UnavailableError,
    503: UnavailableError,
    504: DeadlineExceededError,
}


def _detail_type(detail: Mapping[str, Any]) -> str:
    return str(detail.get("@type", "")).rsplit("/", 1)[-1]


def parse_duration(value: Any) -> float | None:
    """A protobuf JSON Duration (`"1.5s"`) or a number of seconds -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    return None


def parse_retry_after_header(value: str | None) -> float | None:
    """`Retry-After: <seconds>`; the HTTP-date form is not used by this API and is ignored."""
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


def error_from_status(
    status: Mapping[str, Any],
    *,
    http_status: int | None = None,
    retry_after_header: str | None = None,
) -> APIError:
    """The most specific exception for a `google.rpc.Status` JSON object."""
    details = [d for d in status.get("details") or () if isinstance(d, Mapping)]
    reason, metadata, violations, retry_after = "", {}, [], None
    for detail in details:
        kind = _detail_type(detail)
        if kind == "google.rpc.ErrorInfo" and not reason:
            reason = str(detail.get("reason", ""))
            metadata = {str(k): str(v) for k, v in (detail.get("metadata") or {}).items()}
        elif kind == "google.rpc.BadRequest":
            violations += [
                FieldViolation(str(v.get("field", "")), str(v.get("description", "")))
                for v in detail.get("field_violations") or ()
            ]
        elif kind == "google.rpc.RetryInfo":
            retry_after = parse_duration(detail.get("retry_delay"))
    if retry_after is None:
        retry_after = parse_retry_after_header(retry_after_header)
    code = status.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else 0
    cls = (
        BY_REASON.get(reason)
        or BY_CODE.get(code)
        or BY_HTTP_STATUS.get(http_status or 0)
        or (InternalServerError if http_status and http_status >= 500 else APIError)
    )
    if cls is NotFoundError and metadata.get("resource") == "job":
        cls = JobNotFoundError
    message = str(status.get("message") or "") or (f"HTTP {http_status}" if http_status else "unknown error")
    return cls(
        message,
        code=code,
        reason=reason,
        metadata=metadata,
        field_violations=violations,
        retry_after=retry_after,
        http_status=http_status,
        details=details,
    )


def error_from_response(http_status: int, body: bytes, retry_after_header: str | None = None) -> APIError:
    """The exception for an HTTP error response, whatever its body (JSON Status, or not)."""
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    if not isinstance(status, dict):
        text = body.decode("utf-8", "replace").strip()[:200]
        status = {"message": text or f"HTTP {http_status}"}
    return error_from_status(status, http_status=http_status, retry_after_header=retry_after_header)
