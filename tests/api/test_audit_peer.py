"""The audit log's peer, through real servers over gRPC: a client that reaches a server
process directly (inside the deployment, not through Envoy) cannot make the audit log
record an address it wrote in `x-forwarded-for`; a trusted proxy's (Envoy's) last entry is
still recorded (SAAS_TRUSTED_PROXIES)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from devstack.processes import free_port
from devstack.stack import ROOT, grpc_serving
from saaslitellm.v1 import admin_service_pb2 as pb
from saaslitellm.v1 import admin_service_pb2_grpc
from tests.api.conftest import ADMIN
from tests.conftest import ADMIN_KEY, unique

FORGED = "6.6.6.6"


async def audited_peer(admin: admin_service_pb2_grpc.AdminServiceStub, forwarded_for: str) -> str:
    """The peer recorded for a change made with `x-forwarded-for: forwarded_for`."""
    org = unique("org")
    await admin.CreateOrganization(
        pb.CreateOrganizationRequest(organization_id=org, name="Org"),
        metadata=(*ADMIN, ("x-forwarded-for", forwarded_for)),
    )
    found = await admin.ListAuditEntries(
        pb.ListAuditEntriesRequest(resource_type="organization", resource_id=org), metadata=ADMIN
    )
    (entry,) = found.entries
    return entry.peer


@pytest.fixture
def server_process(database_url: str, fake_url: str, tmp_path: Path) -> Iterator[str]:
    """`python -m server` trusting only a network 127.0.0.1 is not in; its gRPC address."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SAAS_ADMIN_KEY": ADMIN_KEY,
        "LITELLM_BASE_URL": fake_url,
        "SAAS_GRPC_HOST": "127.0.0.1",
        "SAAS_GRPC_PORT": str(port),
        "SAAS_METRICS_PORT": "off",
        "SAAS_MIGRATE_ON_START": "false",
        "SAAS_SHUTDOWN_DRAIN_SECONDS": "0",
        "SAAS_TRUSTED_PROXIES": "192.0.2.0/24, 2001:db8::/32",  # a gateway elsewhere
    }
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "server"], env=env, cwd=ROOT, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 60
        while not _serving(f"127.0.0.1:{port}"):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _serving(target: str) -> bool:
    try:
        return grpc_serving(target)
    except grpc.RpcError:
        return False


async def test_a_direct_client_s_forged_forwarded_for_is_not_recorded(server_process):
    async with grpc.aio.insecure_channel(server_process) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        peer = await audited_peer(admin, FORGED)
        assert peer.startswith("ipv4:127.0.0.1:") and FORGED not in peer, peer
        # Written the way Envoy would append it, too.
        peer = await audited_peer(admin, f"{FORGED}, 198.51.100.4")
        assert peer.startswith("ipv4:127.0.0.1:") and "198.51.100.4" not in peer, peer


async def test_a_trusted_proxy_s_last_entry_is_recorded(admin):
    # The tests' server trusts loopback (the default), where make dev's Envoy runs: this
    # client stands in for it, appending the address it saw after what its client wrote.
    assert await audited_peer(admin, f"{FORGED}, 198.51.100.4") == "198.51.100.4"
    assert (await audited_peer(admin, "not an address")).startswith("ipv4:127.0.0.1:")
