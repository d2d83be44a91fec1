"""Domain errors: every failure a client can see, with a stable machine-readable reason.

The API layer maps `Kind` to a gRPC status code and `reason`/`metadata` to a
`google.rpc.ErrorInfo` in one table (server/api/errors.py). Messages are written for the
person reading them and never contain secrets or upstream bodies.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Kind(enum.Enum):
    """The category of an error; one gRPC status code each."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    INTERNAL = "INTERNAL"


class Reason:
    """Stable reasons (ErrorInfo.reason). Clients branch on these; never rename one."""

    INVALID_REQUEST = "INVALID_REQUEST"
    MISSING_API_KEY = "MISSING_API_KEY"
    INVALID_API_KEY = "INVALID_API_KEY"
    ADMIN_KEY_REQUIRED = "ADMIN_KEY_REQUIRED"
    TEAM_MISMATCH = "TEAM_MISMATCH"
    TEAM_SUSPENDED = "TEAM_SUSPENDED"
    TEAM_PAUSED = "TEAM_PAUSED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    JOB_NOT_OPEN = "JOB_NOT_OPEN"
    JOB_CALL_LIMIT_REACHED = "JOB_CALL_LIMIT_REACHED"
    JOB_COST_LIMIT_REACHED = "JOB_COST_LIMIT_REACHED"
    MODEL_UNPRICED = "MODEL_UNPRICED"
    JOB_ALREADY_FINISHED = "JOB_ALREADY_FINISHED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    REQUEST_ALREADY_PROCESSED = "REQUEST_ALREADY_PROCESSED"
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
    TEAM_RATE_LIMITED = "TEAM_RATE_LIMITED"
    MODEL_NOT_ALLOWED = "MODEL_NOT_ALLOWED"
    NO_DEFAULT_MODEL = "NO_DEFAULT_MODEL"
    UPSTREAM_RATE_LIMITED = "UPSTREAM_RATE_LIMITED"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    UPSTREAM_REJECTED = "UPSTREAM_REJECTED"
    UPSTREAM_STREAM_INTERRUPTED = "UPSTREAM_STREAM_INTERRUPTED"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    SERVER_SHUTTING_DOWN = "SERVER_SHUTTING_DOWN"
    # PostgreSQL rolled the request back for colliding with a concurrent one (a deadlock, a
    # serialization failure): nothing changed, and the same request may be sent again at
    # once. UNAVAILABLE, which every client retries; not an outage of the database.
    CONFLICTING_CHANGE = "CONFLICTING_CHANGE"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request (google.rpc.BadRequest.FieldViolation)."""

    field: str
    description: str


@dataclass
class DomainError(Exception):
    """A failure with a kind, a stable reason, a readable message and safe details."""

    kind: Kind
    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)
    violations: tuple[FieldViolation, ...] = ()
    retry_after_seconds: float | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


# A stream still running when the shutdown's grace is about to run out ends with this, in
# its last event (Application.stop), so that every client, REST ones too, is told.
SHUTDOWN_CUT = "the server shut down before the answer was complete; retry the request"

# What a client sees of a fault of ours: no detail (it is logged for the operator).
INTERNAL_ERROR = DomainError(Kind.INTERNAL, Reason.INTERNAL, "internal error; the operator has been notified")


def server_shutting_down() -> DomainError:
    return DomainError(Kind.UNAVAILABLE, Reason.SERVER_SHUTTING_DOWN, SHUTDOWN_CUT)


def invalid_argument(field_name: str, description: str) -> DomainError:
    """A single bad field; the message names the field."""
    return DomainError(
        Kind.INVALID_ARGUMENT,
        Reason.INVALID_REQUEST,
        f"{field_name}: {description}",
        metadata={"field": field_name},
        violations=(FieldViolation(field_name, description),),
    )


def not_found(what: str, identifier: str) -> DomainError:
    """`what` is the kind of object (`job`, `team`...), named in reason metadata."""
    return DomainError(
        Kind.NOT_FOUND,
        Reason.NOT_FOUND,
        f"{what} '{identifier}' not found",
        metadata={"resource": what, "id": identifier},
    )


def already_exists(what: str, identifier: str) -> DomainError:
    return DomainError(
        Kind.ALREADY_EXISTS,
        Reason.ALREADY_EXISTS,
        f"{what} '{identifier}' already exists",
        metadata={"resource": what, "id": identifier},
    )
