"""Operations: fleet-wide usage totals for /metrics, archive tables for retention.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:00:00

- usage_totals: one row, the sum of usage_daily over all teams and days, kept by
  statement-level triggers on usage_daily. Only the rollup compaction writes usage_daily
  (one process at a time, under an advisory lock), so the row is never contended. The
  metrics endpoint reads it plus the pending deltas: O(1) per scrape, whatever the volume.
- llm_calls_archive, credit_ledger_archive: where the retention task moves call records
  and job-flow ledger entries older than SAAS_CALL_RETENTION_DAYS /
  SAAS_LEDGER_RETENTION_DAYS (server/storage/retention.py). Same columns, no foreign keys
  or unique indexes (nothing on the request path reads them).
- BRIN indexes on created_at of llm_calls and credit_ledger: rows arrive in time order,
  so a BRIN index finds the old ones for a few kilobytes, at almost no cost per insert.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MEASURES = (
    "jobs",
    "jobs_pending",
    "jobs_in_progress",
    "jobs_completed",
    "jobs_failed",
    "jobs_expired",
    "credits_charged",
    "calls",
    "calls_failed",
    "prompt_tokens",
    "completion_tokens",
    "provider_cost_usd",
    "billed_cost_usd",
)
_COLUMNS = ", ".join(MEASURES)
_SUMS = ", ".join(f"coalesce(sum({m}), 0)" for m in MEASURES)
_ADD = ", ".join(f"{m} = t.{m} + EXCLUDED.{m}" for m in MEASURES)
_NEGATED = ", ".join(f"-{m}" for m in MEASURES)

UPGRADE = f"""
CREATE TABLE usage_totals (
    total_id SMALLINT NOT NULL,
    {", ".join(f"{m} BIGINT NOT NULL DEFAULT 0" for m in MEASURES[:-2])},
    provider_cost_usd NUMERIC(24, 10) NOT NULL DEFAULT 0,
    billed_cost_usd NUMERIC(24, 10) NOT NULL DEFAULT 0,
    CONSTRAINT pk_usage_totals PRIMARY KEY (total_id),
    CONSTRAINT ck_usage_totals_one_row CHECK (total_id = 1)
);
INSERT INTO usage_totals (total_id, {_COLUMNS}) SELECT 1, {_SUMS} FROM usage_daily;

CREATE FUNCTION usage_totals_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_totals AS t (total_id, {_COLUMNS}) SELECT 1, {_SUMS} FROM new_rows
    ON CONFLICT (total_id) DO UPDATE SET {_ADD};
    RETURN NULL;
END $$;
CREATE FUNCTION usage_totals_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_totals AS t (total_id, {_COLUMNS})
    SELECT 1, {_SUMS} FROM (SELECT {_COLUMNS} FROM new_rows UNION ALL SELECT {_NEGATED} FROM old_rows) d
    ON CONFLICT (total_id) DO UPDATE SET {_ADD};
    RETURN NULL;
END $$;
CREATE TRIGGER usage_totals_inserted AFTER INSERT ON usage_daily
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_totals_inserted();
CREATE TRIGGER usage_totals_updated AFTER UPDATE ON usage_daily
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_totals_updated();

CREATE TABLE llm_calls_archive (LIKE llm_calls);
ALTER TABLE llm_calls_archive ADD CONSTRAINT pk_llm_calls_archive PRIMARY KEY (call_id);
CREATE INDEX ix_llm_calls_archive_created_at ON llm_calls_archive USING brin (created_at);
CREATE TABLE credit_ledger_archive (LIKE credit_ledger);
ALTER TABLE credit_ledger_archive ADD CONSTRAINT pk_credit_ledger_archive PRIMARY KEY (entry_id);
CREATE INDEX ix_credit_ledger_archive_team_id_entry_id ON credit_ledger_archive (team_id, entry_id);
CREATE INDEX ix_credit_ledger_archive_created_at ON credit_ledger_archive USING brin (created_at);

CREATE INDEX ix_llm_calls_created_at ON llm_calls USING brin (created_at);
CREATE INDEX ix_credit_ledger_created_at ON credit_ledger USING brin (created_at);
"""

# The archives hold the only copy of what retention moved (ledger entries the balance adds
# up with): a downgrade refuses to drop them while they hold rows.
DOWNGRADE = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM llm_calls_archive) OR EXISTS (SELECT 1 FROM credit_ledger_archive) THEN
        RAISE EXCEPTION 'llm_calls_archive or credit_ledger_archive holds rows, the only copy of what '
            'retention moved: export them and empty the tables before downgrading below 0004';
    END IF;
END $$;
DROP INDEX ix_credit_ledger_created_at;
DROP INDEX ix_llm_calls_created_at;
DROP TABLE credit_ledger_archive;
DROP TABLE llm_calls_archive;
DROP TRIGGER usage_totals_updated ON usage_daily;
DROP TRIGGER usage_totals_inserted ON usage_daily;
DROP FUNCTION usage_totals_updated();
DROP FUNCTION usage_totals_inserted();
DROP TABLE usage_totals;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
