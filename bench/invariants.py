"""After the load: is every call recorded and every job charged exactly once?

The benchmark counts what the clients saw succeed (`Book`); these checks read the
stack's own database (a dedicated one per stack, so nothing else is in it) and compare.
A throughput figure is only reported as "with accounting on" if every check passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg


@dataclass
class Book:
    """What the load generator saw succeed against one stack."""

    calls: int = 0  # plain and streamed calls answered successfully
    jobs_created: int = 0
    jobs_completed: int = 0
    jobs_failed: int = 0  # completed as failed because their call failed
    errors: int = 0  # calls that failed (the server records them as failed, unless they never reached it)


@dataclass
class Check:
    name: str
    expected: object
    found: object

    @property
    def ok(self) -> bool:
        return self.expected == self.found


@dataclass
class Report:
    stack: str
    checks: list[Check] = field(default_factory=list)
    error_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def failures(self) -> list[str]:
        return [f"{self.stack}: {c.name}: expected {c.expected}, found {c.found}" for c in self.checks if not c.ok]

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "failed_call_reasons": self.error_reasons,
            "checks": [{"name": c.name, "expected": c.expected, "found": c.found, "ok": c.ok} for c in self.checks],
        }


_ONE_VALUE = {
    "succeeded calls recorded": "SELECT count(*) FROM llm_calls WHERE status = 'succeeded'",
    "failed or cancelled calls recorded": "SELECT count(*) FROM llm_calls WHERE status <> 'succeeded'",
    "jobs created": "SELECT count(*) FROM jobs",
    "jobs completed": "SELECT count(*) FROM jobs WHERE status = 'completed'",
    "jobs failed": "SELECT count(*) FROM jobs WHERE status = 'failed'",
    "jobs left open": "SELECT count(*) FROM jobs WHERE status IN ('pending', 'in_progress')",
    "completed jobs without exactly one charge of 1 credit": """
        SELECT count(*) FROM jobs j
        WHERE j.status = 'completed' AND (
            j.credits_charged <> 1
            OR (SELECT count(*) FROM credit_ledger l WHERE l.job_id = j.job_id AND l.kind = 'charge') <> 1
            OR (SELECT sum(amount) FROM credit_ledger l WHERE l.job_id = j.job_id AND l.kind = 'charge') <> -1)""",
    "jobs without exactly one reservation": """
        SELECT count(*) FROM jobs j
        WHERE (SELECT count(*) FROM credit_ledger l WHERE l.job_id = j.job_id AND l.kind = 'reservation') <> 1""",
    "calls whose job is not the caller's team's": """
        SELECT count(*) FROM llm_calls c JOIN jobs j USING (job_id) WHERE c.team_id <> j.team_id""",
    "teams whose ledger does not sum to their balance": """
        SELECT count(*) FROM teams t
        WHERE t.credits_allocated - t.credits_used
              <> (SELECT coalesce(sum(amount), 0) FROM credit_ledger l WHERE l.team_id = t.team_id)
           OR t.credits_reserved
              <> (SELECT coalesce(sum(reserved_delta), 0) FROM credit_ledger l WHERE l.team_id = t.team_id)""",
    "teams whose credits used differ from their completed jobs": """
        SELECT count(*) FROM teams t
        WHERE t.credits_used <> (SELECT count(*) FROM jobs j WHERE j.team_id = t.team_id AND j.status = 'completed')""",
    "credits still reserved": "SELECT coalesce(sum(credits_reserved), 0) FROM teams",
}


def check(stack: str, database_url: str, book: Book) -> Report:
    """Compare the database with `book`; every figure is read, none is assumed."""
    with psycopg.connect(database_url) as conn:
        found = {name: conn.execute(sql).fetchone()[0] for name, sql in _ONE_VALUE.items()}
    expected = {name: 0 for name in _ONE_VALUE}
    expected |= {
        "succeeded calls recorded": book.calls,
        "jobs created": book.jobs_created,
        "jobs completed": book.jobs_completed,
        "jobs failed": book.jobs_failed,
    }
    report = Report(stack, [])
    if book.errors:
        # A failed request was recorded if it reached the server; the client cannot know which did.
        name = "failed or cancelled calls recorded"
        expected[name] = f"at most {book.errors}"
        found[name] = expected[name] if found[name] <= book.errors else found[name]
        report.error_reasons = dict(failed_call_reasons(database_url))
    report.checks = [Check(name, expected[name], found[name]) for name in expected]
    return report


def failed_call_reasons(database_url: str) -> list[tuple[str, int]]:
    """Why the recorded failed calls failed (error reason and how many)."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT error_reason || ': ' || error_message, count(*) FROM llm_calls WHERE status <> 'succeeded' "
            "GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
