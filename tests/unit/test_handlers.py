"""server/api/handlers.py: every generated service lands in one table, served by one lookup."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from saaslitellm.v1 import job_service_pb2, job_service_pb2_grpc
from server.api.handlers import HandlerTable


@dataclass(frozen=True)
class _Details:
    method: str


class _Server:
    def __init__(self) -> None:
        self.generic: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers) -> None:
        self.generic.extend(handlers)


def test_generated_services_are_served_from_the_table_alone() -> None:
    table = HandlerTable()
    job_service_pb2_grpc.add_JobServiceServicer_to_server(job_service_pb2_grpc.JobServiceServicer(), table)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), table)
    server = _Server()
    table.install(server)

    assert server.generic == [table]  # the generated generic handlers were dropped for the table
    methods = job_service_pb2.DESCRIPTOR.services_by_name["JobService"].methods
    assert {f"/saaslitellm.v1.JobService/{m.name}" for m in methods} | {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/List",
        "/grpc.health.v1.Health/Watch",
    } == table.methods
    handler = table.service(_Details("/saaslitellm.v1.JobService/LLMCall"))
    assert handler is not None and handler.unary_unary is not None
    assert table.service(_Details("/saaslitellm.v1.JobService/Nope")) is None


def test_a_generic_handler_without_registered_methods_is_installed_as_it_is() -> None:
    table = HandlerTable()
    legacy = grpc.method_handlers_generic_handler("legacy.Service", {})
    table.add_generic_rpc_handlers((legacy,))
    server = _Server()
    table.install(server)
    assert server.generic == [table, legacy]


def test_a_method_registered_twice_is_refused() -> None:
    table = HandlerTable()
    job_service_pb2_grpc.add_JobServiceServicer_to_server(job_service_pb2_grpc.JobServiceServicer(), table)
    with pytest.raises(ValueError, match=r"^method /saaslitellm\.v1\.JobService/[A-Za-z]+ registered twice$"):
        job_service_pb2_grpc.add_JobServiceServicer_to_server(job_service_pb2_grpc.JobServiceServicer(), table)
