"""WebhookService: authenticate the operator, call one use case, convert the result."""

from __future__ import annotations

import grpc

from saaslitellm.v1 import webhook_service_pb2 as pb
from saaslitellm.v1 import webhook_service_pb2_grpc
from server.api.common import metadata
from server.api.convert import dict_to_struct, timestamp
from server.services.auth import Authenticator
from server.services.webhooks import WebhookUseCases
from server.storage.webhooks import Delivery, Endpoint

Context = grpc.aio.ServicerContext


class WebhookServicer(webhook_service_pb2_grpc.WebhookServiceServicer):
    def __init__(self, auth: Authenticator, webhooks: WebhookUseCases) -> None:
        self._auth = auth
        self._webhooks = webhooks

    async def CreateWebhookEndpoint(self, request: pb.CreateWebhookEndpointRequest, context: Context):
        actor = self._auth.admin(metadata(context), peer=context.peer() or "")
        created = await self._webhooks.create(
            actor, request.url, list(request.event_types), request.organization_id, request.description
        )
        return pb.CreateWebhookEndpointResponse(endpoint=_endpoint(created.endpoint), secret=created.secret)

    async def ListWebhookEndpoints(self, request: pb.ListWebhookEndpointsRequest, context: Context):
        self._auth.admin(metadata(context))
        page = await self._webhooks.list(request.page_size, request.page_token)
        return pb.ListWebhookEndpointsResponse(
            endpoints=[_endpoint(e) for e in page.items], next_page_token=page.next_page_token
        )

    async def UpdateWebhookEndpoint(self, request: pb.UpdateWebhookEndpointRequest, context: Context):
        actor = self._auth.admin(metadata(context), peer=context.peer() or "")
        endpoint = await self._webhooks.update(
            actor,
            request.endpoint_id,
            url=request.url if request.HasField("url") else None,
            description=request.description if request.HasField("description") else None,
            event_types=list(request.event_types),
            paused=request.paused if request.HasField("paused") else None,
        )
        return _endpoint(endpoint)

    async def RetryWebhookDeliveries(self, request: pb.RetryWebhookDeliveriesRequest, context: Context):
        actor = self._auth.admin(metadata(context), peer=context.peer() or "")
        return pb.RetryWebhookDeliveriesResponse(retried=await self._webhooks.retry_failed(actor, request.endpoint_id))

    async def DeleteWebhookEndpoint(self, request: pb.DeleteWebhookEndpointRequest, context: Context):
        actor = self._auth.admin(metadata(context), peer=context.peer() or "")
        await self._webhooks.delete(actor, request.endpoint_id)
        return pb.DeleteWebhookEndpointResponse(endpoint_id=request.endpoint_id)

    async def SendTestWebhook(self, request: pb.SendTestWebhookRequest, context: Context):
        actor = self._auth.admin(metadata(context), peer=context.peer() or "")
        return _delivery(await self._webhooks.send_test(actor, request.endpoint_id))

    async def ListWebhookDeliveries(self, request: pb.ListWebhookDeliveriesRequest, context: Context):
        self._auth.admin(metadata(context))
        page = await self._webhooks.deliveries(
            request.endpoint_id, request.status, request.page_size, request.page_token
        )
        return pb.ListWebhookDeliveriesResponse(
            deliveries=[_delivery(d) for d in page.items], next_page_token=page.next_page_token
        )


def _endpoint(value: Endpoint) -> pb.WebhookEndpoint:
    return pb.WebhookEndpoint(
        endpoint_id=str(value.endpoint_id),
        url=value.url,
        description=value.description,
        event_types=list(value.event_types),
        organization_id=value.organization_id or "",
        secret_prefix=value.secret_prefix,
        created_at=timestamp(value.created_at),
        pending_deliveries=value.pending_deliveries,
        failed_deliveries=value.failed_deliveries,
        paused=value.paused_at is not None,
        paused_at=timestamp(value.paused_at),
        paused_reason=value.pause_reason,
    )


def _delivery(value: Delivery) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        delivery_id=value.delivery_id,
        event_id=str(value.event_id),
        event_type=value.event_type,
        payload=dict_to_struct(value.payload),
        status=value.status,
        attempts=value.attempts,
        next_attempt_at=timestamp(value.next_attempt_at) if value.status == "pending" else None,
        last_status_code=value.last_status_code or 0,
        last_error=value.last_error,
        created_at=timestamp(value.created_at),
        delivered_at=timestamp(value.delivered_at),
    )
