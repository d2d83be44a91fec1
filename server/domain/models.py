"""Model resolution: which LiteLLM models serve a team's call, deny by default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from server.domain.errors import DomainError, Kind, Reason


@dataclass(frozen=True)
class Route:
    """The alias a call was made with and the LiteLLM models behind it, primary first."""

    alias: str
    models: tuple[str, ...]

    @property
    def primary(self) -> str:
        return self.models[0]

    @property
    def fallbacks(self) -> tuple[str, ...]:
        return self.models[1:]


def resolve(requested: str | None, default_model: str | None, reachable: Mapping[str, tuple[str, ...]]) -> Route:
    """Pick the alias for a call and check the team may use it.

    `reachable` maps every alias the team reaches through its access groups to its models.
    No model named: the team's default; failing that, its only alias. An alias outside
    `reachable` (unknown, a raw LiteLLM model name, in no group of the team) is
    MODEL_NOT_ALLOWED: a team never learns which names exist beyond its own.
    """
    name = requested or default_model
    if not name:
        if len(reachable) == 1:
            name = next(iter(reachable))
        else:
            choices = ", ".join(sorted(reachable)) or "none: ask the operator for access"
            raise DomainError(
                Kind.INVALID_ARGUMENT,
                Reason.NO_DEFAULT_MODEL,
                f"model: required, because this team has no default model; models it can use: {choices}",
                metadata={"field": "model"},
            )
    models = reachable.get(name)
    if not models:
        raise DomainError(
            Kind.PERMISSION_DENIED,
            Reason.MODEL_NOT_ALLOWED,
            f"model '{name}' is not available to this team",
            metadata={"model": name},
        )
    return Route(alias=name, models=models)


# Upstream failures worth trying again or on the next model: the provider may well answer
# the same request a moment later or elsewhere. A rejected request (400) is not: it would
# fail the same way on every model, so it is reported at once.
TRANSIENT_REASONS = frozenset({"UPSTREAM_RATE_LIMITED", "UPSTREAM_UNAVAILABLE", "UPSTREAM_TIMEOUT"})
MAX_BACKOFF_SECONDS = 2.0
MAX_RETRY_AFTER_SECONDS = 10.0


# Provider answers that say the operator's set-up of one model is wrong (its credentials,
# its account's funds (402), its name): another model may be set up right, so the next
# one is tried, but the same one is not tried again, and the client is not told to retry.
REFUSED_SET_UP_STATUSES = frozenset({"401", "402", "403", "404"})


def is_transient(error: DomainError) -> bool:
    return error.reason in TRANSIENT_REASONS and not refuses_set_up(error)


def refuses_set_up(error: DomainError) -> bool:
    return error.reason == "UPSTREAM_UNAVAILABLE" and error.metadata.get("upstream_status") in REFUSED_SET_UP_STATUSES


def falls_back(error: DomainError) -> bool:
    """Whether the alias's next model is worth trying after this failure."""
    return error.reason in TRANSIENT_REASONS


def backoff(retry: int, retry_after: float | None, jitter: float) -> float:
    """Seconds to wait before retry number `retry` (0-based) of the same model: the
    provider's Retry-After when it gave one (bounded), else exponential backoff with full
    jitter (`jitter` in [0, 1))."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER_SECONDS)
    return min(MAX_BACKOFF_SECONDS, 0.25 * 2**retry) * jitter


def default_alias(default_model: str | None, reachable: list[str] | tuple[str, ...]) -> str | None:
    """The alias a call that names no model would use, if it would succeed: the team's
    default when reachable, else its only alias (the rule `resolve` applies)."""
    if default_model:
        return default_model if default_model in reachable else None
    return reachable[0] if len(reachable) == 1 else None
