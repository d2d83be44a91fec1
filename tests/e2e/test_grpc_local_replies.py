"""Envoy's own errors on a native gRPC call carry a plain grpc-message, the text a REST
client gets as the JSON's `message`, not the JSON itself."""

from __future__ import annotations

import grpc
import pytest
import requests


def test_an_unrouted_grpc_method_is_unimplemented_with_a_plain_message(stack):
    with grpc.insecure_channel(f"127.0.0.1:{stack.config.ports.envoy}") as channel:
        call = channel.unary_unary("/no.Such/Method", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as raised:
            call(b"", timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED, raised.value
    assert raised.value.details() == "not a path of this API (see /docs)", raised.value.details()


def test_an_unrouted_rest_path_keeps_its_json_body(api):
    response = requests.post(f"{api}/no.Such/Method", json={}, timeout=10)
    assert response.status_code == 404, response.text
    assert response.json()["message"] == "not a path of this API (see /docs)", response.text
