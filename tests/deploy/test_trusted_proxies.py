"""Whose X-Forwarded-For the deployed servers believe for the audit log's peer
(SAAS_TRUSTED_PROXIES): the gateway's, not the loopback default, and in docker-compose only
Envoy's container, not the bridge's gateway address that clients of the published gRPC
port arrive from."""

from __future__ import annotations

import ipaddress

from server.services.auth import TrustedProxies
from tests.deploy.test_deploy import compose, compose_value, server_env_k8s, settings_from


def test_compose_trusts_envoy_s_pinned_address_only():
    services = compose()
    env = {name: compose_value(value) for name, value in services["services"]["server"]["environment"].items()}
    proxies = TrustedProxies(settings_from(env)[0].trusted_proxies)
    (pool,) = services["networks"]["default"]["ipam"]["config"]
    subnet, dynamic = ipaddress.ip_network(pool["subnet"]), ipaddress.ip_network(pool["ip_range"])
    envoy = ipaddress.ip_address(services["services"]["envoy"]["networks"]["default"]["ipv4_address"])
    assert envoy in subnet and envoy not in dynamic  # no other container can be given it
    assert proxies.trusts(f"ipv4:{envoy}:40000")
    # The bridge's gateway (clients of the published :50051), other containers, loopback.
    for other in (subnet[1], dynamic[0], dynamic[-2], ipaddress.ip_address("127.0.0.1")):
        assert not proxies.trusts(f"ipv4:{other}:40000"), other


def test_kubernetes_sets_the_gateway_pods_network_not_the_loopback_default():
    settings, _ = settings_from(server_env_k8s())
    proxies = TrustedProxies(settings.trusted_proxies)
    assert "SAAS_TRUSTED_PROXIES" in server_env_k8s()
    assert not proxies.trusts("ipv4:127.0.0.1:40000")
    assert proxies.trusts("ipv4:10.244.1.7:40000")  # a pod of a common pod CIDR
