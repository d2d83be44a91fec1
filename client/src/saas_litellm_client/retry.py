"""When to retry a failed request, and how long to wait: pure decisions, no I/O.

Only transient failures are retried: `RateLimitedError` (429 with RetryInfo or Retry-After)
and `UnavailableError` (503), and connection failures. Whether a request may be repeated
at all depends on what it does (`Repeat`): reads and completions are idempotent, a create
is only with an idempotency key, an LLM call may be repeated after the server refused it
(the failed call is recorded, nothing is charged) but not after a connection broke while
the server may have been working on it, and a create-and-call with an idempotency key only
when it never left (the server refuses a second request with the key). A stream is never
retried after its first event.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

from saas_litellm_client.errors import APIConnectionError, APIError


class Repeat(enum.Enum):
    """How safe it is to send a request again."""

    NEVER = "never"
    """A create without an idempotency key: a repeat could create a second job."""
    AFTER_REFUSAL = "after_refusal"
    """An LLM call: repeat when the server answered with a transient error, or the request never left."""
    IDEMPOTENT = "idempotent"
    """GET, complete, a create or create-and-call with an idempotency key: repeat after any
    transient failure."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter.

    `max_attempts` counts the first attempt (1 disables retries). The n-th retry waits
    `min(max_delay, initial_delay * multiplier**(n-1))`, jittered to between half and all
    of it; a delay the server asks for (RetryInfo, Retry-After) is waited at least, and one
    longer than `max_delay` is not waited at all: the error is raised instead.
    """

    max_attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    multiplier: float = 2.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")

    def backoff(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry number `retry_number` (1 for the first retry)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (retry_number - 1))
        return base / 2 + base / 2 * rng() if self.jitter else base


NO_RETRIES = RetryPolicy(max_attempts=1)


def is_transient(error: BaseException) -> bool:
    """True for failures that may go away by themselves."""
    return isinstance(error, APIConnectionError) or (isinstance(error, APIError) and error.retryable)


def retry_delay(
    error: BaseException,
    *,
    attempt: int,
    policy: RetryPolicy,
    repeat: Repeat,
    rng: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to give up and raise `error`.

    `attempt` is the number of attempts made so far (1 after the first failure).
    """
    if attempt >= policy.max_attempts or repeat is Repeat.NEVER or not is_transient(error):
        return None
    if isinstance(error, APIConnectionError) and error.request_sent and repeat is not Repeat.IDEMPOTENT:
        return None
    delay = policy.backoff(attempt, rng)
    hint = error.retry_after if isinstance(error, APIError) else None
    if hint is not None:
        if hint > policy.max_delay:
            return None
        delay = max(delay, hint)
    return delay
