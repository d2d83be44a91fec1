"""Fixtures shared by every test layer.

PostgreSQL is real: TEST_DATABASE_URL when set (e.g. the machine's server), otherwise the
embedded PostgreSQL in .data/test-postgres. Each test session gets a fresh database with
the migrations applied, dropped at the end. Tests create their own organizations and
teams with unique ids, so they never depend on each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import postgres
from server.storage import migrate

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "test-admin-key-" + "0123456789abcdef"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def pg() -> postgres.Postgres:
    return postgres.start(ROOT / ".data" / "test-postgres", os.environ.get("TEST_DATABASE_URL"), database="postgres")


@pytest.fixture(scope="session")
def database_url(pg: postgres.Postgres) -> Iterator[str]:
    name = f"saas_test_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    migrate.upgrade(url)
    yield url
    pg.drop_database(name)
