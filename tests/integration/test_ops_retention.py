"""Usage tables at scale: retention moves old call records and job-flow ledger entries of
finished jobs to the archive tables (each row in exactly one place, reports unchanged,
money guarantees kept: an open job keeps the calls it will be settled from), and the fleet-wide usage totals behind /metrics stay equal to the rollup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from devstack.postgres import Postgres
from server.services.analytics import RollupCompactor
from server.services.retention import Retention
from server.storage import operations
from server.storage.analytics import MEASURES
from server.storage.database import Database
from tests.conftest import migrated_database

OLD_CALLS = 12_000  # more than two batches, so concurrent runs share the work
OPEN_JOB_CALLS = 3
JUST_FINISHED_CALLS = 2

SEED = [
    "INSERT INTO organizations (organization_id, name) VALUES ('org-r', 'R')",
    "INSERT INTO teams (team_id, organization_id, credits_allocated) VALUES ('team-r', 'org-r', 100)",
    # An old finished job, an old job still open, a recent finished job, and an old job
    # finished just now (a call of it may still be running, to be charged late from all its calls).
    """INSERT INTO jobs (job_id, team_id, job_type, status, credits_reserved, credits_charged, created_at, completed_at)
       VALUES ('00000000-0000-4000-8000-000000000001', 'team-r', 'old', 'completed', 1, 1, now() - interval '60 days',
               now() - interval '59 days'),
              ('00000000-0000-4000-8000-000000000002', 'team-r', 'old', 'in_progress', 1, 0, now() - interval '60 days',
               NULL),
              ('00000000-0000-4000-8000-000000000003', 'team-r', 'new', 'completed', 1, 1, now() - interval '1 day',
               now() - interval '1 day'),
              ('00000000-0000-4000-8000-000000000004', 'team-r', 'old', 'completed', 1, 1, now() - interval '60 days',
               now() - interval '1 minute')""",
    f"""INSERT INTO llm_calls (call_id, job_id, team_id, status, model_alias, prompt_tokens, created_at)
        SELECT gen_random_uuid(), '00000000-0000-4000-8000-000000000004', 'team-r', 'succeeded', 'A', 7,
               now() - interval '60 days'
        FROM generate_series(1, {JUST_FINISHED_CALLS})""",
    f"""INSERT INTO llm_calls (call_id, job_id, team_id, status, model_alias, prompt_tokens, completion_tokens,
                               provider_cost_usd, billed_cost_usd, created_at)
        SELECT gen_random_uuid(), '00000000-0000-4000-8000-000000000001', 'team-r', 'succeeded', 'A', 10, i % 7,
               0.0000123 * i, 0.0000246 * i, now() - interval '60 days' + i * interval '1 millisecond'
        FROM generate_series(1, {OLD_CALLS}) i""",
    """INSERT INTO llm_calls (call_id, job_id, team_id, status, model_alias, created_at)
       SELECT gen_random_uuid(), '00000000-0000-4000-8000-000000000003', 'team-r', 'succeeded', 'A', now()
       FROM generate_series(1, 5)""",
    # Old calls of the job still open: it will be settled from them, so they stay.
    f"""INSERT INTO llm_calls (call_id, job_id, team_id, status, model_alias, prompt_tokens, created_at)
        SELECT gen_random_uuid(), '00000000-0000-4000-8000-000000000002', 'team-r', 'succeeded', 'A', 500,
               now() - interval '60 days'
        FROM generate_series(1, {OPEN_JOB_CALLS})""",
    """INSERT INTO credit_ledger (team_id, job_id, kind, amount, reserved_delta, remaining_after, reserved_after,
                                  actor, idempotency_key, created_at)
       VALUES ('team-r', NULL, 'allocation', 100, 0, 100, 0, 'admin', NULL, now() - interval '90 days'),
              ('team-r', NULL, 'top_up', 5, 0, 105, 0, 'admin', 'topup-1', now() - interval '80 days'),
              ('team-r', '00000000-0000-4000-8000-000000000001', 'reservation', 0, 1, 105, 1, 'k', NULL, now() - interval '60 days'),
              ('team-r', '00000000-0000-4000-8000-000000000001', 'charge', -1, -1, 104, 0, 'k', NULL, now() - interval '60 days'),
              ('team-r', '00000000-0000-4000-8000-000000000001', 'refund', 1, 0, 105, 0, 'admin', NULL, now() - interval '50 days'),
              ('team-r', '00000000-0000-4000-8000-000000000002', 'reservation', 0, 1, 105, 1, 'k', NULL, now() - interval '60 days'),
              ('team-r', '00000000-0000-4000-8000-000000000003', 'reservation', 0, 1, 105, 2, 'k', NULL, now() - interval '1 day'),
              ('team-r', '00000000-0000-4000-8000-000000000003', 'charge', -1, -1, 104, 1, 'k', NULL, now() - interval '1 day')""",
]


@pytest.fixture(scope="module")
async def db(pg: Postgres) -> AsyncIterator[Database]:
    async with migrated_database(pg, "retention") as database:
        async with database.transaction() as conn:
            for statement in SEED:
                await conn.execute(text(statement))
        yield database


async def rows(db: Database, sql: str) -> list[tuple]:
    async with db.transaction() as conn:
        return [tuple(row) for row in await conn.execute(text(sql))]


async def totals(db: Database) -> dict:
    async with db.transaction() as conn:
        return await operations.usage_totals(conn)


async def test_usage_totals_equal_the_rollup_before_and_after_compaction(db):
    rollup = f"SELECT {', '.join(f'coalesce(sum({m}), 0)' for m in MEASURES)} FROM usage_daily"
    pending = rollup.replace("usage_daily", "usage_deltas")
    raw = await totals(db)
    assert raw["jobs"] == 4 and raw["jobs_completed"] == 3
    assert raw["calls"] == OLD_CALLS + OPEN_JOB_CALLS + JUST_FINISHED_CALLS + 5
    compactor = RollupCompactor(db, interval_seconds=0)
    assert await compactor.compact() > 0
    assert await totals(db) == raw
    assert (await rows(db, pending))[0] == (0,) * len(MEASURES)
    assert tuple(raw.values()) == (await rows(db, rollup))[0]
    assert tuple(raw.values()) == (await rows(db, f"SELECT {', '.join(MEASURES)} FROM usage_totals"))[0]

    # An update of rollup rows (ON CONFLICT DO UPDATE): the in-progress job completes.
    async with db.transaction() as conn:
        await conn.execute(
            text("UPDATE jobs SET status = 'completed' WHERE job_id = '00000000-0000-4000-8000-000000000002'")
        )
    await compactor.compact()
    after = await totals(db)
    assert (after["jobs_in_progress"], after["jobs_completed"]) == (0, 4)
    assert tuple(after.values()) == (await rows(db, f"SELECT {', '.join(MEASURES)} FROM usage_totals"))[0]
    async with db.transaction() as conn:  # put it back for the retention test
        await conn.execute(
            text("UPDATE jobs SET status = 'in_progress' WHERE job_id = '00000000-0000-4000-8000-000000000002'")
        )


async def test_retention_archives_old_rows_once_keeping_reports_and_money_history(db):
    calls_before = await rows(db, "SELECT * FROM llm_calls ORDER BY call_id")
    ledger_before = await rows(db, "SELECT * FROM credit_ledger ORDER BY entry_id")
    usage_before = await totals(db)
    retention = Retention(db, call_days=30, ledger_days=30, webhook_delivery_days=0, interval_seconds=0)

    # Two processes at once (SKIP LOCKED): the work is shared, nothing moves twice.
    moved = await asyncio.gather(retention.run_once(), retention.run_once())
    assert sum(calls for calls, _, _ in moved) == OLD_CALLS
    assert sum(entries for _, entries, _ in moved) == 2  # the old finished job's reservation and charge
    assert await retention.run_once() == (0, 0, 0)

    live = await rows(db, "SELECT * FROM llm_calls ORDER BY call_id")
    archived = await rows(db, "SELECT * FROM llm_calls_archive ORDER BY call_id")
    assert len(live) == 5 + OPEN_JOB_CALLS + JUST_FINISHED_CALLS and len(archived) == OLD_CALLS
    open_job = "SELECT count(*) FROM llm_calls WHERE job_id = '00000000-0000-4000-8000-000000000002'"
    assert await rows(db, open_job) == [(OPEN_JOB_CALLS,)]  # old, but their job is still open
    just_finished = "SELECT count(*) FROM llm_calls WHERE job_id = '00000000-0000-4000-8000-000000000004'"
    assert await rows(db, just_finished) == [(JUST_FINISHED_CALLS,)]  # old, but their job finished recently
    assert sorted(live + archived) == sorted(calls_before)  # each row in exactly one table, unchanged
    cutoff = datetime.now(UTC).timestamp() - 30 * 86_400
    assert all(row[-1].timestamp() < cutoff for row in archived)

    kept = await rows(db, "SELECT kind, job_id::text FROM credit_ledger ORDER BY entry_id")
    assert kept == [
        ("allocation", None),
        ("top_up", None),
        ("refund", "00000000-0000-4000-8000-000000000001"),  # a second refund must still be refused
        ("reservation", "00000000-0000-4000-8000-000000000002"),  # the job is still open
        ("reservation", "00000000-0000-4000-8000-000000000003"),  # recent
        ("charge", "00000000-0000-4000-8000-000000000003"),
    ]
    ledger_after = await rows(db, "SELECT * FROM credit_ledger UNION ALL SELECT * FROM credit_ledger_archive")
    assert sorted(ledger_after) == sorted(ledger_before)
    # The ledger still adds up to the balance, over both tables.
    both = "SELECT sum(amount) FROM (SELECT amount FROM credit_ledger UNION ALL SELECT amount FROM credit_ledger_archive) x"
    assert (await rows(db, both))[0] == (sum(row[4] for row in ledger_before),)
    assert await totals(db) == usage_before  # reports and /metrics read the rollup


async def test_retention_off_by_default_moves_nothing(db):
    retention = Retention(db, call_days=0, ledger_days=0, webhook_delivery_days=0, interval_seconds=3600)
    assert not retention.active
    assert await retention.run_once() == (0, 0, 0)


OLD_DELIVERED = 12_000  # more than two batches, so concurrent runs share the work


async def test_finished_webhook_deliveries_go_after_their_retention_pending_and_recent_ones_stay(db):
    """The outbox has a row per event and endpoint, with its payload: those delivered or
    failed longer ago than the retention are deleted in batches; pending ones stay however
    old (a paused endpoint's backlog is still to be sent), and so do those that finished
    within it, even if their event is old (a failed delivery retried last week)."""
    endpoint = "00000000-0000-4000-8000-0000000000e1"
    async with db.transaction() as conn:
        await conn.execute(
            text(
                "INSERT INTO webhook_endpoints (endpoint_id, url, event_types, secret_ciphertext, secret_prefix) "
                "VALUES (:e, 'https://hooks.example.com', ARRAY['job.completed'], '\\x00', 'whsec_test')"
            ),
            {"e": endpoint},
        )
        await conn.execute(
            text(
                """INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload, status, attempts,
                                                   created_at, delivered_at, next_attempt_at)
                   SELECT :e, gen_random_uuid(), 'job.completed', jsonb_build_object('n', n), 'delivered', 1,
                          now() - interval '60 days', now() - interval '60 days', now() - interval '60 days'
                   FROM generate_series(1, :old) n"""
            ),
            {"e": endpoint, "old": OLD_DELIVERED},
        )
        singles = [
            # (label, status, created, finished): the delivery's age and when it ended
            ("pending, 60 days old", "pending", "60 days", None),
            ("failed 39 days ago", "failed", "40 days", "39 days"),
            ("failed yesterday, made 60 days ago", "failed", "60 days", "1 day"),
            ("delivered yesterday, made 60 days ago", "delivered", "60 days", "1 day"),
            ("delivered yesterday", "delivered", "1 day", "1 day"),
            ("pending, new", "pending", "0 days", None),
        ]
        for label, status, created, finished in singles:
            await conn.execute(
                text(
                    """INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload, status, created_at,
                                                       delivered_at, next_attempt_at)
                       VALUES (:e, gen_random_uuid(), 'job.completed', jsonb_build_object('label', CAST(:label AS text)),
                               :status, now() - CAST(:created AS interval),
                               CASE WHEN :status = 'delivered' THEN now() - CAST(:finished AS interval) END,
                               coalesce(now() - CAST(:finished AS interval), now() - CAST(:created AS interval)))"""
                ),
                {"e": endpoint, "label": label, "status": status, "created": created, "finished": finished},
            )
    retention = Retention(db, call_days=0, ledger_days=0, webhook_delivery_days=30, interval_seconds=3600)
    assert retention.active

    moved = await asyncio.gather(retention.run_once(), retention.run_once())
    assert sum(deliveries for _, _, deliveries in moved) == OLD_DELIVERED + 1  # and the one failed 39 days ago
    assert await retention.run_once() == (0, 0, 0)
    left = await rows(db, "SELECT payload->>'label' FROM webhook_deliveries ORDER BY delivery_id")
    assert [label for (label,) in left] == [label for label, *_ in singles if label != "failed 39 days ago"]

    # 0 keeps them all, as the other retentions' 0 does.
    keep = Retention(db, call_days=0, ledger_days=0, webhook_delivery_days=0, interval_seconds=3600)
    assert not keep.active
    async with db.transaction() as conn:
        await conn.execute(
            text("UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now() - interval '1 year'")
        )
    assert await keep.run_once() == (0, 0, 0)
    assert len(await rows(db, "SELECT 1 FROM webhook_deliveries")) == len(singles) - 1
