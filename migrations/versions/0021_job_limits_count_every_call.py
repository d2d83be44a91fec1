"""A job's row of job_limits counts every call recorded in the job, not only those admitted
under a limit.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28 05:00:00

A job's first call under a per-job limit creates its row of job_limits from the calls the
job had recorded; afterwards only calls admitted under a limit changed the row. Calls that
were running when the limit was set and were recorded after the row was made, and calls
made while the limit was removed and before it was set again, were never counted, so a job
could pass max_calls_per_job or max_cost_usd_per_job for good (a bug hunt: $0.0167 spent
under a $0.005 limit; 6 calls under a limit of 2). Calls admitted under a limit of calls
only did not add their cost either, which a cost limit set later then missed.

Now the statement that records a call also counts it in its job's row, when there is one:
its cost always, and the call itself unless a limit counted it at its admission
(server/storage/jobs.py, record_call). That row may be made by a call admitted in the
meantime, after the record's statement began: its snapshot cannot see the row, so the
count is made by job_limits_count_call, a VOLATILE function whose UPDATE takes a snapshot
of its own once the record holds its lock on the job's row. And the call that makes the
row counts the job's recorded calls (job_limits_earlier_calls) only once it holds the
job's row FOR UPDATE, which waits for the records in progress (they hold the FOR KEY SHARE
lock of their foreign key, and of the watch of the job's status) and makes the records
that start meanwhile wait for its commit; so each call is counted once, either by that
scan (recorded before it) or by its own record (after it). Without a row nothing is
written: a team that never had a per-job limit writes no job_limits row.

The rows of open jobs are repaired: cost_spent_usd becomes what their recorded calls cost,
and calls at least the calls recorded (calls in flight admitted under the limit are not
known from the records, so the count is only raised).
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


# A failed call the provider refused without doing any work does not count toward the
# job's calls (server/domain/jobs.py, refused_by_provider and PROVIDER_REFUSALS).
def _counted(c: str) -> str:
    return (
        f"NOT ({c}status = 'failed' AND {c}prompt_tokens + {c}completion_tokens = 0"
        f" AND {c}error_reason IN ('UPSTREAM_RATE_LIMITED', 'UPSTREAM_UNAVAILABLE'))"
    )


UPGRADE = f"""
CREATE FUNCTION job_limits_count_call(p_job_id uuid, p_calls integer, p_reserved numeric, p_spent numeric)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE job_limits
       SET calls = calls + p_calls,
           cost_reserved_usd = cost_reserved_usd - p_reserved,
           cost_spent_usd = cost_spent_usd + p_spent
     WHERE job_id = p_job_id;
    RETURN FOUND;
END $$;

CREATE FUNCTION job_limits_earlier_calls(p_job_id uuid, OUT calls bigint, OUT spent numeric)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    calls := 0;
    spent := 0;
    IF EXISTS (SELECT FROM job_limits WHERE job_id = p_job_id) THEN
        RETURN;
    END IF;
    PERFORM FROM jobs WHERE job_id = p_job_id FOR UPDATE;
    IF EXISTS (SELECT FROM job_limits WHERE job_id = p_job_id) THEN
        RETURN;  -- made by another call while this one waited
    END IF;
    SELECT count(*) FILTER (WHERE {_counted("")}), coalesce(sum(billed_cost_usd), 0)
      INTO calls, spent
      FROM llm_calls WHERE job_id = p_job_id;
END $$;

UPDATE job_limits l
   SET cost_spent_usd = recorded.spent, calls = greatest(l.calls, recorded.calls)
  FROM (SELECT c.job_id, count(*) FILTER (WHERE {_counted("c.")}) AS calls,
               coalesce(sum(c.billed_cost_usd), 0) AS spent
          FROM llm_calls c JOIN jobs j ON j.job_id = c.job_id
         WHERE j.status IN ('pending', 'in_progress')
           AND c.job_id IN (SELECT job_id FROM job_limits)
         GROUP BY c.job_id) AS recorded
 WHERE l.job_id = recorded.job_id;
"""

DOWNGRADE = """
DROP FUNCTION job_limits_earlier_calls(uuid);
DROP FUNCTION job_limits_count_call(uuid, integer, numeric, numeric);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
