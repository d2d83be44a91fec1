"""A team's credit balance: reservations, charges, and the team facts they depend on.

Balance changes are single conditional UPDATEs: the row lock PostgreSQL takes for the
UPDATE serialises concurrent changes to one team, and the WHERE clause (plus the
`no_overshoot` CHECK) makes overshooting impossible however many processes race.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select, update

from server.domain.credits import Balance, BudgetMode, Rates, TeamStatus
from server.domain.errors import not_found
from server.storage.database import Connection
from server.storage.tables import teams

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


async def settle(conn: Connection, team_id: str, *, release: int, charge: int) -> Balance:
    """Give back a job's reservation and charge what it cost, atomically."""
    row = (
        await conn.execute(
            update(teams)
            .where(teams.c.team_id == team_id)
            .values(
                credits_reserved=teams.c.credits_reserved - release,
                credits_used=teams.c.credits_used + charge,
                updated_at=func.now(),
            )
            .returning(*_BALANCE)
        )
    ).one()
    return balance_of(row)


async def status_and_balance(conn: Connection, team_id: str) -> tuple[TeamStatus, Balance]:
    row = (await conn.execute(select(teams.c.status, *_BALANCE).where(teams.c.team_id == team_id))).first()
    if row is None:
        raise not_found("team", team_id)
    return TeamStatus(row.status), balance_of(row)


async def rates_and_status(conn: Connection, team_id: str) -> tuple[Rates, TeamStatus, str | None]:
    row = (
        await conn.execute(
            select(
                teams.c.budget_mode,
                teams.c.tokens_per_credit,
                teams.c.credits_per_dollar,
                teams.c.markup_percent,
                teams.c.status,
                teams.c.default_model,
            ).where(teams.c.team_id == team_id)
        )
    ).first()
    if row is None:
        raise not_found("team", team_id)
    rates = Rates(
        mode=BudgetMode(row.budget_mode),
        tokens_per_credit=row.tokens_per_credit,
        credits_per_dollar=Decimal(row.credits_per_dollar),
        markup_percent=Decimal(row.markup_percent),
    )
    return rates, TeamStatus(row.status), row.default_model
