"""Webhooks without SAAS_SECRETS_KEY (the in-process server of these tests has none), and
the team's alert level, over native gRPC."""

from __future__ import annotations

import grpc
import pytest

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import webhook_service_pb2 as pb
from saaslitellm.v1 import webhook_service_pb2_grpc
from tests.api.conftest import ADMIN, create_team


async def test_without_a_secrets_key_webhooks_are_refused_saying_what_to_set(channel):
    hooks = webhook_service_pb2_grpc.WebhookServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await hooks.CreateWebhookEndpoint(
            pb.CreateWebhookEndpointRequest(url="https://example.com/hooks", event_types=["job.failed"]),
            metadata=ADMIN,
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SAAS_SECRETS_KEY" in refused.value.details()
    listed = await hooks.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(), metadata=ADMIN)
    assert list(listed.endpoints) == []


async def test_the_low_credit_threshold_is_set_changed_and_checked(admin):
    team = await create_team(admin, credits=10, low_credit_threshold=2)
    fetched = await admin.GetTeam(admin_pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert fetched.low_credit_threshold == 2
    updated = await admin.UpdateTeam(
        admin_pb.UpdateTeamRequest(team_id=team.team_id, low_credit_threshold=0), metadata=ADMIN
    )
    assert updated.low_credit_threshold == 0
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await admin.UpdateTeam(
            admin_pb.UpdateTeamRequest(team_id=team.team_id, low_credit_threshold=-1), metadata=ADMIN
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("low_credit_threshold:")
