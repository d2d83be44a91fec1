"""Two creations with one idempotency key that race for a team's last credit: the second
waited for the team's row while the first took the credit and made the job. Its answer is
that job (a retry returns the same job), not INSUFFICIENT_CREDITS, which told a client
whose first answer was lost not to retry, while a job it did not know held its credit."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import create_team
from tests.api.test_admin_catalog_races import until_waiting


async def test_two_creations_with_one_key_racing_for_the_last_credit_get_the_same_job(app, admin, jobs):
    team = await create_team(admin, credits=1)
    keyed = (*team.auth, ("idempotency-key", "order-42"))
    async with app.db.transaction() as holder:  # both queue for the team's row, in turn
        await holder.execute(text("SELECT 1 FROM teams WHERE team_id = :t FOR UPDATE"), {"t": team.team_id})
        first = asyncio.ensure_future(jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=keyed))
        await until_waiting(app, 1)
        second = asyncio.ensure_future(jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=keyed))
        await until_waiting(app, 2)
    made, replayed = await asyncio.gather(first, second)
    assert made.job_id == replayed.job_id
    async with app.db.transaction() as conn:
        jobs_made, reserved = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM jobs WHERE team_id = :t), credits_reserved FROM teams WHERE team_id = :t"
                ),
                {"t": team.team_id},
            )
        ).one()
    assert (jobs_made, reserved) == (1, 1)  # one job, one reservation
