"""The schema, as SQLAlchemy Core tables. Migrations (migrations/versions) create it;
tests/integration/test_migrations.py checks that the two agree.

Money-like invariants live in the database, so no code path can break them:
- a team's credits never go below its overdraft limit (CHECK on teams);
- a job is reserved, charged and released at most once (unique (job_id, kind) on the ledger);
- a retried create with the same idempotency key finds the first job (unique on jobs, among
  those not failed or expired).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP, UUID

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


# Reading rows across releases. During a rolling upgrade this release keeps serving while a
# later one's migration adds columns (expand/contract: a release only adds; a column is
# dropped or renamed one release after the code stops using it). So no statement here
# reads `*` or `alias.*`: it names the columns this release knows (`column_list`, or a
# SQLAlchemy select() of a Table, which names them too): a column added later is not read,
# and a statement prepared before it was added keeps its result type (PostgreSQL refuses
# to run a prepared `*` whose columns changed: "cached plan must not change result type").
# And a row becomes an object through `known_fields`, which keeps only the fields the
# object has.


def column_list(table: Table, alias: str = "") -> str:
    """The table's columns as this release knows them, comma-separated, each prefixed
    with `alias.` if given: what a statement selects or returns instead of `*`."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + column.name for column in table.columns)


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(cls))


def known_fields(cls: type, row: Any) -> dict[str, Any]:
    """The values of a row (SQLAlchemy's or a StatementConnection's named tuple) that are
    fields of the dataclass `cls`: a column the statement read beyond them (an order's
    key, a later release's column) is left out."""
    known = _field_names(cls)
    return {name: value for name, value in zip(row._fields, row, strict=True) if name in known}


def _timestamps() -> list[Column]:
    return [
        Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    ]


def _json(name: str) -> Column:
    return Column(name, JSONB, nullable=False, server_default=text("'{}'::jsonb"))


organizations = Table(
    "organizations",
    metadata,
    Column("organization_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    _json("metadata"),
    *_timestamps(),
    CheckConstraint("status IN ('active', 'archived')", name="status"),
)

model_access_groups = Table(
    "model_access_groups",
    metadata,
    Column("group_name", Text, primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    *_timestamps(),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_alias", Text, primary_key=True),
    # LiteLLM model names, primary first, then fallbacks in order.
    Column("models", ARRAY(Text), nullable=False),
    Column("display_name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    *_timestamps(),
    CheckConstraint("cardinality(models) >= 1", name="has_model"),
)

model_alias_groups = Table(
    "model_alias_groups",
    metadata,
    Column("model_alias", Text, ForeignKey("model_aliases.model_alias", ondelete="CASCADE"), nullable=False),
    Column("group_name", Text, ForeignKey("model_access_groups.group_name", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("model_alias", "group_name"),
    Index(None, "group_name"),
)

teams = Table(
    "teams",
    metadata,
    Column("team_id", Text, primary_key=True),
    Column("organization_id", Text, ForeignKey("organizations.organization_id"), nullable=False),
    Column("team_alias", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False, server_default="active"),
    Column("budget_mode", Text, nullable=False, server_default="job_based"),
    Column("default_model", Text, ForeignKey("model_aliases.model_alias", ondelete="SET NULL")),
    _json("metadata"),
    Column("credits_allocated", BigInteger, nullable=False, server_default="0"),
    Column("credits_used", BigInteger, nullable=False, server_default="0"),
    Column("credits_reserved", BigInteger, nullable=False, server_default="0"),
    Column("credits_overdraft_limit", BigInteger, nullable=False, server_default="0"),
    Column("tokens_per_credit", Integer, nullable=False, server_default="10000"),
    Column("credits_per_dollar", Numeric(20, 6), nullable=False, server_default="10"),
    Column("markup_percent", Numeric(10, 4), nullable=False, server_default="0"),
    *_timestamps(),
    CheckConstraint("status IN ('active', 'suspended', 'paused')", name="status"),
    CheckConstraint("budget_mode IN ('job_based', 'consumption_tokens', 'consumption_usd')", name="budget_mode"),
    CheckConstraint("credits_used >= 0 AND credits_reserved >= 0 AND credits_overdraft_limit >= 0", name="nonnegative"),
    CheckConstraint(
        "credits_allocated - credits_used - credits_reserved >= -credits_overdraft_limit", name="no_overshoot"
    ),
    Index(None, "organization_id"),
)

team_access_groups = Table(
    "team_access_groups",
    metadata,
    Column("team_id", Text, ForeignKey("teams.team_id", ondelete="CASCADE"), nullable=False),
    Column("group_name", Text, ForeignKey("model_access_groups.group_name", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("team_id", "group_name"),
    Index(None, "group_name"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", UUID(as_uuid=True), primary_key=True),
    Column("team_id", Text, ForeignKey("teams.team_id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    # SHA-256 of the key; the key itself is never stored.
    Column("key_digest", LargeBinary, nullable=False, unique=True),
    Column("key_prefix", Text, nullable=False),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", TIMESTAMP(timezone=True)),
    Column("revoked_at", TIMESTAMP(timezone=True)),
    Index(None, "team_id"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", UUID(as_uuid=True), primary_key=True),
    Column("team_id", Text, ForeignKey("teams.team_id"), nullable=False),
    Column("job_type", Text, nullable=False),
    Column("user_id", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False),
    _json("metadata"),
    Column("idempotency_key", Text),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", TIMESTAMP(timezone=True)),
    Column("completed_at", TIMESTAMP(timezone=True)),
    Column("error_message", Text, nullable=False, server_default=""),
    Column("credits_reserved", Integer, nullable=False, server_default="0"),
    Column("credits_charged", Integer, nullable=False, server_default="0"),
    # The team's remaining credits right after this job was settled, so a repeated
    # CompleteJob returns exactly the first answer.
    Column("credits_remaining_after", BigInteger),
    # Consumption modes: credits due beyond what the team could pay (balance + overdraft).
    Column("credits_shortfall", Integer, nullable=False, server_default="0"),
    Column("credits_refunded", Integer, nullable=False, server_default="0"),
    # Creation or the latest call: open jobs idle longer than SAAS_JOB_TTL_SECONDS expire.
    Column("last_activity_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    # The team's job list order: taken under the team's row lock, so in commit order (0011).
    Column("creation_seq", BigInteger, Identity(always=True), nullable=False),
    # Made by a single-call request (CreateAndCall): abandoned sooner than the TTL (0017).
    Column("single_call", Boolean, nullable=False, server_default="false"),
    # The team's budget mode and conversion rates when the job was settled (written by the
    # settling statement): a call recorded later is charged at them, so a rate changed
    # since does not re-price the calls already charged. NULL: settled before 0018 (or
    # open); such a job is charged at the team's current rates.
    Column("settled_budget_mode", Text),
    Column("settled_tokens_per_credit", Integer),
    Column("settled_credits_per_dollar", Numeric(20, 6)),
    CheckConstraint("status IN ('pending', 'in_progress', 'completed', 'failed', 'expired')", name="status"),
    # One job per key among those that are not failed or expired (free): a single-call
    # request whose job failed may be retried under its key (migration 0012).
    Index(
        "uq_jobs_team_id_idempotency_key",
        "team_id",
        "idempotency_key",
        unique=True,
        postgresql_where=text("status NOT IN ('failed', 'expired')"),
    ),
    Index(None, "team_id", "idempotency_key", postgresql_where=text("idempotency_key IS NOT NULL")),
    Index(None, "team_id", "creation_seq"),
    Index(
        "ix_jobs_open_last_activity_at",
        "last_activity_at",
        postgresql_where=text("status IN ('pending', 'in_progress')"),
    ),
    Index(
        "ix_jobs_open_single_call_last_activity_at",
        "last_activity_at",
        postgresql_where=text("single_call AND status IN ('pending', 'in_progress')"),
    ),
)

llm_calls = Table(
    "llm_calls",
    metadata,
    Column("call_id", UUID(as_uuid=True), primary_key=True),
    Column("job_id", UUID(as_uuid=True), ForeignKey("jobs.job_id"), nullable=False),
    Column("team_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("purpose", Text, nullable=False, server_default=""),
    Column("model_alias", Text, nullable=False),
    Column("served_model", Text, nullable=False, server_default=""),
    Column("attempted_models", ARRAY(Text), nullable=False, server_default="{}"),
    Column("streamed", Boolean, nullable=False, server_default="false"),
    Column("prompt_tokens", Integer, nullable=False, server_default="0"),
    Column("completion_tokens", Integer, nullable=False, server_default="0"),
    Column("tokens_estimated", Boolean, nullable=False, server_default="false"),
    Column("provider_cost_usd", Numeric(20, 10), nullable=False, server_default="0"),
    Column("billed_cost_usd", Numeric(20, 10), nullable=False, server_default="0"),
    # Where provider_cost_usd came from: litellm (reported), price_table (computed from the
    # model's price), none (no price known).
    Column("cost_source", Text, nullable=False, server_default="none"),
    Column("latency_ms", Integer, nullable=False, server_default="0"),
    Column("first_token_ms", Integer),
    Column("finish_reason", Text, nullable=False, server_default=""),
    Column("error_reason", Text, nullable=False, server_default=""),
    Column("error_message", Text, nullable=False, server_default=""),
    Column("content", Text),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('succeeded', 'failed', 'cancelled')", name="status"),
    Index(None, "job_id", "created_at"),
    Index(None, "team_id", "created_at"),
)

credit_ledger = Table(
    "credit_ledger",
    metadata,
    Column("entry_id", BigInteger, Identity(always=True), primary_key=True),
    Column("team_id", Text, ForeignKey("teams.team_id", ondelete="CASCADE"), nullable=False),
    Column("job_id", UUID(as_uuid=True), ForeignKey("jobs.job_id")),
    Column("kind", Text, nullable=False),
    # Effect on credits_remaining (allocated - used): + allocation/top-up/refund, - charge.
    Column("amount", BigInteger, nullable=False),
    # Effect on credits_reserved: + reservation, - release and - the reservation a charge consumes.
    Column("reserved_delta", BigInteger, nullable=False, server_default="0"),
    Column("remaining_after", BigInteger, nullable=False),
    Column("reserved_after", BigInteger, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    # Who caused it: `admin`, `key:<prefix>`, `system:expiry`...
    Column("actor", Text, nullable=False),
    # Client-supplied key that makes an admin top-up or adjustment safe to retry.
    Column("idempotency_key", Text),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "kind IN ('allocation', 'top_up', 'reservation', 'charge', 'release', 'adjustment', 'refund', 'late_charge')",
        name="kind",
    ),
    Index(None, "team_id", "entry_id"),
    Index(
        "uq_credit_ledger_job_kind",
        "job_id",
        "kind",
        unique=True,
        postgresql_where=text("job_id IS NOT NULL AND kind IN ('reservation', 'charge', 'release', 'refund')"),
    ),
    Index(
        "uq_credit_ledger_idempotency_key",
        "team_id",
        "idempotency_key",
        unique=True,
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
)


# ----------------------------------------------------------------------------------------
# Admin API (migration 0002): archiving, key lifecycle, audit log, usage rollup.

# A team deleted while it had history is archived: keys revoked, status 'suspended' (so
# the job code refuses it in any race), and archived_at set. Never undone.
teams.append_column(Column("archived_at", TIMESTAMP(timezone=True)))
# When a request last used the key, to within the key cache's TTL.
api_keys.append_column(Column("last_used_at", TIMESTAMP(timezone=True)))
# The key that replaced this one in a rotation (the old key expires after a grace period).
api_keys.append_column(Column("replaced_by", UUID(as_uuid=True)))

admin_audit_log = Table(
    "admin_audit_log",
    metadata,
    Column("audit_id", BigInteger, Identity(always=True), primary_key=True),
    Column("actor", Text, nullable=False),
    Column("request_id", Text, nullable=False, server_default=""),
    Column("peer", Text, nullable=False, server_default=""),
    Column("action", Text, nullable=False),
    Column("resource_type", Text, nullable=False),
    Column("resource_id", Text, nullable=False),
    # The resource as the API shows it, before and after; never a secret.
    Column("before", JSONB),
    Column("after", JSONB),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Index(None, "resource_type", "resource_id", "audit_id"),
)


def _usage_measures() -> list[Column]:
    """What the usage rollup sums; jobs by the status they have now."""
    counts = (
        "jobs",
        "jobs_pending",
        "jobs_in_progress",
        "jobs_completed",
        "jobs_failed",
        "jobs_expired",
        "credits_charged",
        "credits_refunded",  # migration 0013
        "calls",
        "calls_failed",
        "prompt_tokens",
        "completion_tokens",
    )
    return [Column(name, BigInteger, nullable=False, server_default="0") for name in counts] + [
        Column("provider_cost_usd", Numeric(24, 10), nullable=False, server_default="0"),
        Column("billed_cost_usd", Numeric(24, 10), nullable=False, server_default="0"),
    ]


# Usage per team, UTC day and job type (with the team's organization, which never
# changes, so organization reports need no join). Statement-level triggers on jobs and
# llm_calls (migration 0002) append each change to usage_deltas in the writer's own
# transaction (no shared row is locked, so writers never wait on each other); a periodic
# compaction folds the deltas into usage_daily. Reports read usage_daily through its
# primary key (team reports) or (organization_id, day) (organization reports), plus the
# few pending deltas: exact, and O(teams x days x job types) whatever the call volume.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("team_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("job_type", Text, nullable=False),
    Column("organization_id", Text, nullable=False),
    *_usage_measures(),
    PrimaryKeyConstraint("team_id", "day", "job_type"),
    Index(None, "organization_id", "day"),
)

usage_deltas = Table(
    "usage_deltas",
    metadata,
    Column("delta_id", BigInteger, Identity(always=True), primary_key=True),
    Column("team_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("job_type", Text, nullable=False),
    Column("organization_id", Text, nullable=False),
    *_usage_measures(),
    Index(None, "team_id", "day"),
    Index(None, "organization_id", "day"),
)


# ----------------------------------------------------------------------------------------
# Operations (migration 0004): usage totals for /metrics, archives for retention.

# The sum of usage_daily over everything, in one row (total_id = 1), kept by triggers on
# usage_daily; the metrics endpoint reads it instead of summing the rollup.
usage_totals = Table(
    "usage_totals",
    metadata,
    Column("total_id", SmallInteger, primary_key=True, autoincrement=False),
    *_usage_measures(),
    CheckConstraint("total_id = 1", name="one_row"),
)

# Rows arrive in time order: BRIN indexes find the old ones for retention at almost no
# cost per insert.
Index("ix_llm_calls_created_at", llm_calls.c.created_at, postgresql_using="brin")
Index("ix_credit_ledger_created_at", credit_ledger.c.created_at, postgresql_using="brin")


def _archive_of(table: Table, name: str, *extra: Index) -> Table:
    """The same columns (types and nullability) as `table`, without defaults, identity,
    foreign keys or unique indexes: on the request path only a late charge reads an
    archive (its job's calls, by `job_id`)."""
    columns = [
        Column(c.name, c.type, nullable=c.nullable, primary_key=c.primary_key, autoincrement=False)
        for c in table.columns
    ]
    return Table(name, metadata, *columns, Index(None, "created_at", postgresql_using="brin"), *extra)


# Call records and job-flow ledger entries older than the retention (server/storage/retention.py).
llm_calls_archive = _archive_of(llm_calls, "llm_calls_archive", Index(None, "job_id"))  # late charges (0022)
credit_ledger_archive = _archive_of(credit_ledger, "credit_ledger_archive", Index(None, "team_id", "entry_id"))


# ----------------------------------------------------------------------------------------
# Call rate limits (migration 0005).

# A team's limit on LLM calls per minute (0: none), enforced exactly across processes.
teams.append_column(Column("calls_per_minute", Integer, nullable=False, server_default="0"))
teams.append_constraint(CheckConstraint("calls_per_minute >= 0", name="calls_per_minute"))

# GCRA state of each limited team: the "theoretical arrival time" of its next call. A call
# is admitted when the time it pushes this to is at most a minute ahead (a full minute's
# calls may come at once, then one every 60/limit seconds). Only a limited team's calls
# write it, each with one conditional upsert (server/storage/jobs.py, take_call_place).
team_call_rates = Table(
    "team_call_rates",
    metadata,
    Column("team_id", Text, ForeignKey("teams.team_id", ondelete="CASCADE"), primary_key=True),
    Column("tat", TIMESTAMP(timezone=True), nullable=False),
)


# ----------------------------------------------------------------------------------------
# Webhooks (migration 0006; server/services/webhooks.py). The deliveries are written by
# triggers on teams and jobs (the migration has them), in the changing transaction.

# A team's low-credit alert level (0: none): `team.credits_low` fires when its remaining
# credits fall from above it to it or below.
teams.append_column(Column("low_credit_threshold", Integer, nullable=False, server_default="0"))
teams.append_constraint(CheckConstraint("low_credit_threshold >= 0", name="low_credit_threshold"))

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("endpoint_id", UUID(as_uuid=True), primary_key=True),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("organization_id", Text, ForeignKey("organizations.organization_id", ondelete="CASCADE")),
    # The signing secret, AES-GCM encrypted under SAAS_SECRETS_KEY; never stored in clear.
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("secret_prefix", Text, nullable=False),
    *_timestamps(),
    # Set while its deliveries are held (migration 0016): by the operator, or by the
    # sender when a delivery failed for good with nothing delivered to it since.
    Column("paused_at", TIMESTAMP(timezone=True)),
    Column("pause_reason", Text, nullable=False, server_default=""),
    # Within a minute of the last successful attempt (written when a minute old or more).
    Column("last_delivered_at", TIMESTAMP(timezone=True)),
    CheckConstraint("cardinality(event_types) >= 1", name="has_events"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", BigInteger, Identity(always=False), primary_key=True),
    Column(
        "endpoint_id",
        UUID(as_uuid=True),
        ForeignKey("webhook_endpoints.endpoint_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column("last_status_code", Integer),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", TIMESTAMP(timezone=True)),
    UniqueConstraint("endpoint_id", "event_id"),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    # An endpoint's pending deliveries, earliest due first: the sender claims per endpoint
    # (migration 0014).
    Index(
        "ix_webhook_deliveries_pending",
        "endpoint_id",
        "next_attempt_at",
        "delivery_id",
        postgresql_where=text("status = 'pending'"),
    ),
    Index(None, "endpoint_id", "delivery_id"),
)


# ----------------------------------------------------------------------------------------
# Calls per job (migration 0007): a team's limit (0: none), and the count of calls a
# limited team's job has begun (job_limits, below).
teams.append_column(Column("max_calls_per_job", Integer, nullable=False, server_default="0"))
teams.append_constraint(CheckConstraint("max_calls_per_job >= 0", name="max_calls_per_job"))

# When a key's expiry warning (webhook team_key.expiring) was written (migration 0009).
api_keys.append_column(Column("expiry_warned_at", TIMESTAMP(timezone=True)))

# Cost per job (migration 0010): a team's limit in billed dollars (0: none). The count
# table became job_limits, one row per job of a limited team: the calls it began, the
# dollars its calls in flight reserved and the dollars its recorded calls spent
# (server/storage/jobs.py, take_job_limits and record_call).
teams.append_column(Column("max_cost_usd_per_job", Numeric(20, 10), nullable=False, server_default="0"))
teams.append_constraint(CheckConstraint("max_cost_usd_per_job >= 0", name="max_cost_usd_per_job"))
job_limits = Table(
    "job_limits",
    metadata,
    Column("job_id", UUID(as_uuid=True), ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
    Column("calls", Integer, nullable=False),
    Column("cost_reserved_usd", Numeric(24, 10), nullable=False, server_default="0"),
    Column("cost_spent_usd", Numeric(24, 10), nullable=False, server_default="0"),
)


# ----------------------------------------------------------------------------------------
# The balance cap (migration 0013): a team holds at most MAX_CREDITS (server/domain/credits.py)
# credits; its lifetime totals are unbounded. The server refuses what would exceed it
# (server/storage/credits.py); this makes it hold on every path.
teams.append_constraint(CheckConstraint("credits_allocated - credits_used <= 1000000000", name="balance_cap"))
