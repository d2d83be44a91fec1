"""`make dev`: run the whole stack in the foreground until Ctrl-C.

    python -m devstack [--servers N]

PostgreSQL is embedded (data in .data/postgres) unless DATABASE_URL is set. The admin key
is SAAS_ADMIN_KEY, or a fresh one printed below.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from devstack.processes import StartupError
from devstack.stack import ROOT, Ports, Stack, StackConfig

BANNER = """
SaaS LiteLLM dev stack is up.

  REST/SSE API   {api}/api          (Envoy; Swagger UI at {api}/docs, ReDoc at {api}/redoc)
  metrics        {api}/metrics      (Prometheus, all server processes, with the admin key; see README "Operations")
  gRPC           127.0.0.1:{grpc}   (try: .venv/bin/grpcurl -plaintext 127.0.0.1:{grpc} list)
  LiteLLM proxy  {litellm}           (models fake-gpt, fake-gpt-backup; fake-free and fake-unpriced show pricing)
  fake provider  {fake}           (steer with [fake key=value] in the last user message)
  admin dashboard {dashboard}     (sign in with the admin key below)
  logs           {logs}

Admin key (send as X-Admin-Key):
  {admin_key}

Quick Start (see docs/integration-overview.md):
  export ADMIN_KEY='{admin_key}'
  curl -s -X POST {api}/api/organizations/create -H "X-Admin-Key: $ADMIN_KEY" \\
       -d '{{"organization_id": "org_acme", "name": "ACME Corporation"}}'
  curl -s -X POST {api}/api/model-access-groups/create -H "X-Admin-Key: $ADMIN_KEY" \\
       -d '{{"group_name": "gpt-models", "description": "GPT models"}}'
  curl -s -X POST {api}/api/models/create -H "X-Admin-Key: $ADMIN_KEY" \\
       -d '{{"model_alias": "ChatAgent", "actual_model": "fake-gpt", "fallback_models": ["fake-gpt-backup"],
            "access_groups": ["gpt-models"]}}'
  curl -s -X POST {api}/api/teams/create -H "X-Admin-Key: $ADMIN_KEY" \\
       -d '{{"organization_id": "org_acme", "team_id": "acme-corp", "team_alias": "ACME Corp Team",
            "access_groups": ["gpt-models"], "credits_allocated": 1000}}'

Press Ctrl-C to stop everything.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1, help="number of gRPC server processes behind Envoy")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data", help="where PostgreSQL data and logs go")
    args = parser.parse_args()
    config = StackConfig(data_dir=args.data_dir, ports=Ports(), server_processes=args.servers)
    config.database_url = os.environ.get("DATABASE_URL") or None
    if os.environ.get("SAAS_ADMIN_KEY"):
        config.admin_key = os.environ["SAAS_ADMIN_KEY"]
    if os.environ.get("SAAS_SECRETS_KEY"):
        config.secrets_key = os.environ["SAAS_SECRETS_KEY"]
    if os.environ.get("SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS"):  # `=false`: refuse local receivers, as deployed
        config.server_env["SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = os.environ["SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS"]
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("Starting the SaaS LiteLLM dev stack:")
    stack = Stack(config)
    try:
        stack.start()
    except StartupError as error:
        print(f"\nCould not start the stack: {error}", file=sys.stderr)
        return 1
    print(
        BANNER.format(
            api=stack.api_url,
            grpc=stack.grpc_ports[0],
            litellm=stack.litellm_url,
            fake=stack.fake_url,
            logs=stack.logs,
            dashboard=stack.dashboard_url.replace("127.0.0.1", "localhost"),
            admin_key=config.admin_key,
        )
    )
    try:
        while not stop.is_set():
            for child in stack.children:
                if not child.alive():
                    print(f"{child.name} exited unexpectedly; see {child.log_path}. Stopping.", file=sys.stderr)
                    stop.set()
                    break
            stop.wait(1.0)
    finally:
        print("Stopping ...")
        stack.stop()
        print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
