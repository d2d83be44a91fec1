"""gRPC server reflection (grpcurl `list` and `describe`), served on the event loop.

grpc_reflection's `enable_server_reflection` picks its asyncio servicer only when given a
`grpc.aio.Server`; given our handler table (server/api/handlers.py) it took the
synchronous one, which grpc.aio runs in the loop's default executor: each open reflection
stream, which needs no key, then held one of its few threads while waiting for the next
request, and the token counting that runs there (`asyncio.to_thread`) waited behind them.

Reflection also answers a method's name: the Python descriptor pool finds the files of
services, messages, enums and fields by name but not of methods (grpc/grpc#34743), so
`grpcurl describe saaslitellm.v1.JobService.CreateJob` was "Symbol not found". A symbol
not found is looked up again as its parent (the method's service), as the C++ and Go
servers answer it.
"""

from __future__ import annotations

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

SERVICE_NAME = reflection.SERVICE_NAME
_NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


class _Reflection(reflection.aio.ReflectionServicer):
    def _file_containing_symbol(self, request, fully_qualified_name: str) -> reflection_pb2.ServerReflectionResponse:
        response = super()._file_containing_symbol(request, fully_qualified_name)
        parent = fully_qualified_name.rpartition(".")[0]
        if response.error_response.error_code != _NOT_FOUND or not parent:
            return response
        try:
            service = self._pool.FindServiceByName(parent)
        except KeyError:
            return response
        if fully_qualified_name.rpartition(".")[2] not in service.methods_by_name:
            return response
        return super()._file_containing_symbol(request, parent)


def enable(service_names: tuple[str, ...], server) -> None:
    """Serve reflection for `service_names` on `server` (a grpc.aio server or our handler table)."""
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(_Reflection(service_names), server)
