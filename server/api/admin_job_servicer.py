"""AdminJobService: authenticate the operator or the team, convert the request, call one
use case, convert the result.

Errors are mapped by server.api.errors.ErrorInterceptor; nothing here catches them.
"""

from __future__ import annotations

import grpc

from saaslitellm.v1 import admin_job_service_pb2 as pb
from saaslitellm.v1 import admin_job_service_pb2_grpc
from server.api import convert
from server.api.common import metadata
from server.services.admin_jobs import AdminJobUseCases
from server.services.auth import Authenticator


class AdminJobServicer(admin_job_service_pb2_grpc.AdminJobServiceServicer):
    def __init__(self, auth: Authenticator, jobs: AdminJobUseCases) -> None:
        self._auth = auth
        self._jobs = jobs

    async def ListTeamJobs(
        self, request: pb.ListTeamJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTeamJobsResponse:
        await self._auth.team_or_admin(metadata(context), request.team_id, peer=context.peer() or "")
        status = convert.job_status_filter(request.status)
        found = await self._jobs.list_team_jobs(
            request.team_id, status, request.job_type, request.page_size, request.page_token
        )
        return pb.ListTeamJobsResponse(
            jobs=[convert.job(view) for view in found.items], next_page_token=found.next_page_token
        )
