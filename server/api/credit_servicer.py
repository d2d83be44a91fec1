"""CreditService: convert the request, call one use case, convert the result."""

from __future__ import annotations

import grpc

from saaslitellm.v1 import credit_service_pb2 as pb
from saaslitellm.v1 import credit_service_pb2_grpc
from server.api import convert
from server.api.common import metadata
from server.services.auth import Authenticator
from server.services.credits import CreditUseCases


class CreditServicer(credit_service_pb2_grpc.CreditServiceServicer):
    def __init__(self, auth: Authenticator, credits: CreditUseCases) -> None:
        self._auth = auth
        self._credits = credits

    async def GetCreditBalance(
        self, request: pb.GetCreditBalanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreditBalance:
        await self._auth.team_or_admin(metadata(context), request.team_id)
        return convert.credit_balance(await self._credits.balance(request.team_id))

    async def ListCreditTransactions(
        self, request: pb.ListCreditTransactionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCreditTransactionsResponse:
        await self._auth.team_or_admin(metadata(context), request.team_id)
        page = await self._credits.transactions(request.team_id, request.page_size, request.page_token)
        return pb.ListCreditTransactionsResponse(
            transactions=[convert.credit_transaction(e) for e in page.entries],
            next_page_token=page.next_page_token,
            balance=convert.credit_balance(page.balance),
        )

    async def AddCredits(
        self, request: pb.AddCreditsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AddCreditsResponse:
        headers = metadata(context)
        actor = self._auth.admin(headers, context.peer())
        key = request.idempotency_key or headers.get("idempotency-key", "")
        change = await self._credits.add(actor, request.team_id, request.credits, request.reason, key)
        return pb.AddCreditsResponse(
            team_id=request.team_id,
            credits_added=change.entry.amount,
            transaction=convert.credit_transaction(change.entry),
            balance=convert.credit_balance(change.balance),
        )

    async def AdjustCredits(
        self, request: pb.AdjustCreditsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AdjustCreditsResponse:
        headers = metadata(context)
        actor = self._auth.admin(headers, context.peer())
        key = request.idempotency_key or headers.get("idempotency-key", "")
        change = await self._credits.adjust(actor, request.team_id, request.credits, request.reason, key)
        return pb.AdjustCreditsResponse(
            team_id=request.team_id,
            transaction=convert.credit_transaction(change.entry),
            balance=convert.credit_balance(change.balance),
        )

    async def RefundJob(self, request: pb.RefundJobRequest, context: grpc.aio.ServicerContext) -> pb.RefundJobResponse:
        actor = self._auth.admin(metadata(context), context.peer())
        change = await self._credits.refund(actor, request.team_id, request.job_id, request.reason)
        return pb.RefundJobResponse(
            transaction=convert.credit_transaction(change.entry),
            balance=convert.credit_balance(change.balance),
            already_refunded=change.repeated,
        )
