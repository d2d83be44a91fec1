"""A team's credit balance: reservations, charges, and the team facts they depend on.

Balance changes are single conditional UPDATEs: the row lock PostgreSQL takes for the
UPDATE serialises concurrent changes to one team, and the WHERE clause (plus the
`no_overshoot` CHECK) makes overshooting impossible however many processes race.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select, update

from server.domain.credits import Balance, BudgetMode, Rates, TeamStatus
from server.domain.errors import not_found
from server.storage.database import Connection, Statement, StatementConnection, as_statements
from server.storage.tables import jobs, teams

OPEN = ("pending", "in_progress")

_BALANCE = (teams.c.credits_allocated, teams.c.credits_used, teams.c.credits_reserved)


def balance_of(row: Any) -> Balance:
    return Balance(allocated=row.credits_allocated, used=row.credits_used, reserved=row.credits_reserved)


async def reserve(conn: Connection, team_id: str, credits: int) -> Balance | None:
    """Hold `credits` for a new job if the team is active and has them available.

    Returns the new balance, or None when the team is not active or short of credits
    (nothing changed; the caller finds out which).
    """
    row = (
        await conn.execute(
            update(teams)
            .where(
                and_(
                    teams.c.team_id == team_id,
                    teams.c.status == TeamStatus.ACTIVE.value,
                    teams.c.credits_allocated - teams.c.credits_used - teams.c.credits_reserved >= credits,
                )
            )
            .values(credits_reserved=teams.c.credits_reserved + credits)
            .returning(*_BALANCE)
        )
    ).first()
    return None if row is None else balance_of(row)


@dataclass(frozen=True)
class TeamState:
    """What billing decisions need to know about a team."""

    status: TeamStatus
    rates: Rates
    balance: Balance
    default_model: str | None


_TEAM_STATE_COLUMNS = """status, budget_mode, tokens_per_credit, credits_per_dollar, markup_percent,
       credits_overdraft_limit, default_model, credits_allocated, credits_used, credits_reserved"""
TEAM_STATE = Statement(f"SELECT {_TEAM_STATE_COLUMNS} FROM teams WHERE team_id = :team_id")
LOCK_TEAM_STATE = Statement(f"SELECT {_TEAM_STATE_COLUMNS} FROM teams WHERE team_id = :team_id FOR UPDATE")


async def team_state(conn: Connection | StatementConnection, team_id: str) -> TeamState:
    """The team's status, billing settings and balance (settlements read it with
    LOCK_TEAM_STATE instead: see jobs.read_for_settlement)."""
    statements = await as_statements(conn)
    row = await statements.first(TEAM_STATE, {"team_id": team_id})
    if row is None:
        raise not_found("team", team_id)
    return team_state_of(row)


def team_state_of(row: Any) -> TeamState:
    """A TeamState from a row with the teams columns team_state selects."""
    rates = Rates(
        mode=BudgetMode(row.budget_mode),
        tokens_per_credit=row.tokens_per_credit,
        credits_per_dollar=Decimal(row.credits_per_dollar),
        markup_percent=Decimal(row.markup_percent),
        overdraft_limit=row.credits_overdraft_limit,
    )
    return TeamState(TeamStatus(row.status), rates, balance_of(row), row.default_model)


async def change_allocation(conn: Connection, team_id: str, delta: int, maximum: int) -> Balance | None:
    """Add `delta` (may be negative) to the allocation unless that would leave the team
    holding more than `maximum` credits (credits_remaining: allocated - used, whatever the
    lifetime totals; only an increase is held to it, so a team above it can always be
    brought down) or less than open jobs hold plus the overdraft. None: refused, nothing
    changed. One conditional UPDATE: under the row lock, concurrent changes each see the
    others' result, so together they cannot pass `maximum` either."""
    conditions = [
        teams.c.team_id == team_id,
        teams.c.credits_allocated + delta - teams.c.credits_used - teams.c.credits_reserved
        >= -teams.c.credits_overdraft_limit,
    ]
    if delta > 0:
        conditions.append(teams.c.credits_allocated + delta - teams.c.credits_used <= maximum)
    row = (
        await conn.execute(
            update(teams)
            .where(and_(*conditions))
            .values(credits_allocated=teams.c.credits_allocated + delta, updated_at=func.now())
            .returning(*_BALANCE)
        )
    ).first()
    return None if row is None else balance_of(row)


async def refund(conn: Connection, team_id: str, credits: int, maximum: int) -> Balance | None:
    """Give back `credits` a job was charged, unless the team would then hold more than
    `maximum` credits. None: refused, nothing changed."""
    row = (
        await conn.execute(
            update(teams)
            .where(
                and_(
                    teams.c.team_id == team_id,
                    teams.c.credits_allocated - teams.c.credits_used + credits <= maximum,
                )
            )
            .values(credits_used=teams.c.credits_used - credits, updated_at=func.now())
            .returning(*_BALANCE)
        )
    ).first()
    return None if row is None else balance_of(row)


async def open_jobs(conn: Connection, team_id: str) -> int:
    return (
        await conn.execute(
            select(func.count()).select_from(jobs).where(and_(jobs.c.team_id == team_id, jobs.c.status.in_(OPEN)))
        )
    ).scalar_one()
