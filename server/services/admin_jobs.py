"""The operator's view of a team's jobs (AdminJobService): newest first, with calls."""

from __future__ import annotations

from server.domain import pagination, validation
from server.domain.errors import invalid_argument
from server.domain.jobs import CallRecord, JobStatus, JobView
from server.domain.pagination import Page
from server.services.jobs import MAX_EMBEDDED_CALLS
from server.storage import jobs as job_store
from server.storage import teams as team_store
from server.storage.database import Database

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100  # each job carries its calls
# A page ends before its jobs would weigh more than this (a response may be 8 MiB at most,
# SAAS_MAX_MESSAGE_BYTES): a page of jobs with large metadata or many calls still fits. A
# page keeps at least one job, which fits on its own: it carries MAX_EMBEDDED_CALLS calls
# at most, and 256 KiB of metadata.
PAGE_BYTES = 2 * 1024 * 1024
_CALL_BYTES = 400  # a call's summary in a response (its JSON), beside its texts, generously


class AdminJobUseCases:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_team_jobs(
        self, team_id: str, status: JobStatus | None, job_type: str, page_size: int, page_token: str
    ) -> Page[JobView]:
        validation.identifier("team_id", team_id)
        validation.label("job_type", job_type)  # as the usage report's filter
        if page_size < 0:
            raise invalid_argument("page_size", "must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        filters = {"team_id": team_id, "status": status.value if status else "", "job_type": job_type}
        request = pagination.page_request(size, page_token, filters)
        position = pagination.after(request, int)  # a job's creation_seq (job_store.list_team_jobs)
        before = None if position is None else position[0]
        async with self._db.transaction() as conn:
            await team_store.get_team(conn, team_id)  # NOT_FOUND for an unknown team
            found = await job_store.list_team_jobs(
                conn, team_id, status=status, job_type=job_type, before=before, limit=request.size + 1
            )
            calls = await job_store.list_calls_of_jobs(conn, [job.job_id for _, job in found[: request.size]])
        views = [JobView(job, calls.get(job.job_id, ())) for _, job in found]
        positions = {job.job_id: seq for seq, job in found}
        return pagination.page(
            views, request, lambda view: (positions[view.job.job_id],), weigh=_weight, budget=PAGE_BYTES
        )


def _weight(view: JobView) -> int:
    """About what a job weighs in a response: its metadata and the summaries of the calls
    it shows, their texts as they are (an upstream's error in CJK weighs thrice its length)."""
    calls = sum(_call_weight(call) for call in view.calls[:MAX_EMBEDDED_CALLS])
    return 500 + validation.json_size(view.job.metadata) + calls


def _call_weight(call: CallRecord) -> int:
    return _CALL_BYTES + len(call.purpose.encode()) + len(call.model_alias) + len(call.error_message.encode())
