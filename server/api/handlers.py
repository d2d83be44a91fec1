"""One table of every method's handler, in place of grpc.aio's registered methods.

The generated `add_*Servicer_to_server` functions give the server each service twice: as a
generic handler, and as "registered" methods. grpc.aio (1.85) serves registered methods by
keeping one pending task per method and, for every RPC it receives, waiting on all of them
(`asyncio.wait`, one done-callback added and removed per method). With our 70 methods that
cost about 0.03 ms of a server process's CPU per RPC (0.176 against 0.149 ms for an RPC
that does nothing, `python -m bench.registered_methods`; about 3% of an LLM call's). Looking
the method up in one dict costs a generic handler a single call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc


class HandlerTable(grpc.GenericRpcHandler):
    """Pass as the `server` of generated `add_*_to_server` functions, then `install` it.

    Each service arrives as a generic handler followed by the same methods registered; the
    registered methods go into the table, and their generic handler is dropped. A generic
    handler not followed by its methods (code generated without registered methods) is
    installed as it is.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        self._generic: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        for method, handler in handlers.items():
            name = f"/{service}/{method}"
            if name in self._handlers:
                raise ValueError(f"method {name} registered twice")
            self._handlers[name] = handler
        if self._generic:
            self._generic.pop()  # the same methods, added just before

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handlers.get(handler_call_details.method)

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def install(self, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((self, *self._generic))
