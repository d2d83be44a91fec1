"""Usage reports: the date range asked for, the figures, and how rows become a report."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from server.domain.errors import invalid_argument

DEFAULT_DAYS = 30
MAX_DAYS = 366
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
COST_QUANTUM = Decimal("0.0000000001")


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days, both ends included."""

    start: date
    end: date


def date_range(start_date: str, end_date: str, today: date) -> DateRange:
    end = _date("end_date", end_date) if end_date else today
    if start_date:
        start = _date("start_date", start_date)
    elif end.toordinal() < DEFAULT_DAYS:  # the default start would be before year 1
        raise invalid_argument(
            "end_date", f"must be at least {DEFAULT_DAYS} days after 0001-01-01 without a start_date"
        )
    else:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise invalid_argument("start_date", "must not be after end_date")
    if (end - start).days + 1 > MAX_DAYS:
        raise invalid_argument("start_date", f"the range must be at most {MAX_DAYS} days")
    return DateRange(start=start, end=end)


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date(field_name: str, value: str) -> date:
    try:
        if not _ISO_DATE.fullmatch(value):  # fromisoformat also takes 20260131 and 2026-W05-6
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise invalid_argument(field_name, "must be a date such as 2026-01-31 (YYYY-MM-DD)") from None


def limit(value: int) -> int:
    if not 0 <= value <= MAX_LIMIT:
        raise invalid_argument("limit", f"must be between 1 and {MAX_LIMIT} (0: {DEFAULT_LIMIT})")
    return value or DEFAULT_LIMIT


@dataclass(frozen=True)
class UsageFigures:
    jobs: int = 0
    jobs_pending: int = 0
    jobs_in_progress: int = 0
    jobs_completed: int = 0
    jobs_failed: int = 0
    jobs_expired: int = 0
    credits_charged: int = 0
    credits_refunded: int = 0  # of those charged, given back by refunds (CreditService.RefundJob)
    calls: int = 0
    calls_failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    provider_cost_usd: Decimal = Decimal(0)
    billed_cost_usd: Decimal = Decimal(0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def margin_usd(self) -> Decimal:
        return self.billed_cost_usd - self.provider_cost_usd

    @property
    def credits_kept(self) -> int:
        """Credits charged and not refunded: what the teams paid (the ledger's charges less
        its refunds)."""
        return self.credits_charged - self.credits_refunded

    @property
    def provider_cost_usd_per_credit(self) -> Decimal | None:
        """Provider spend per credit paid: a refunded job's calls still cost the provider
        but earn nothing, so they weigh on the credits kept."""
        if self.credits_kept <= 0:
            return None
        return (self.provider_cost_usd / self.credits_kept).quantize(COST_QUANTUM)


@dataclass(frozen=True)
class UsageRow:
    """One aggregate from storage: a day, a job type, a team, or a combination; None
    where the row is not broken down by that dimension."""

    day: date | None
    job_type: str | None
    team_id: str | None
    figures: UsageFigures


@dataclass(frozen=True)
class UsageReport:
    range: DateRange
    totals: UsageFigures
    days: tuple[tuple[date, UsageFigures], ...] = ()
    job_types: tuple[tuple[str, UsageFigures], ...] = ()
    daily_job_types: tuple[tuple[date, str, UsageFigures], ...] = ()
    teams: tuple[tuple[str, UsageFigures], ...] = field(default_factory=tuple)


def _by_provider_cost(name: str, figures: UsageFigures) -> tuple:
    return (-figures.provider_cost_usd, -figures.calls, -figures.jobs, name)


def _by_billed_cost(name: str, figures: UsageFigures) -> tuple:
    return (-figures.billed_cost_usd, -figures.calls, -figures.jobs, name)


def build_report(span: DateRange, rows: list[UsageRow], top: int, *, billed: bool = False) -> UsageReport:
    """Totals, every day, the top job types and teams by provider cost (by what the team
    was billed, with `billed`: a team's own report, which never shows provider costs, must
    not rank by them either), and each day's figures for those job types. `rows` hold the
    grouping sets (), (day), (job_type), (team_id) and (day, job_type)."""
    by_cost = _by_billed_cost if billed else _by_provider_cost
    totals = UsageFigures()
    days, job_types, teams, daily = [], [], [], []
    for row in rows:
        if row.day is not None and row.job_type is not None:
            daily.append((row.day, row.job_type, row.figures))
        elif row.day is not None:
            days.append((row.day, row.figures))
        elif row.job_type is not None:
            job_types.append((row.job_type, row.figures))
        elif row.team_id is not None:
            teams.append((row.team_id, row.figures))
        else:
            totals = row.figures
    top_types = sorted(job_types, key=lambda item: by_cost(*item))[:top]
    kept = {name for name, _ in top_types}
    return UsageReport(
        range=span,
        totals=totals,
        days=tuple(sorted(days, key=lambda item: item[0])),
        job_types=tuple(top_types),
        daily_job_types=tuple(sorted((d for d in daily if d[1] in kept), key=lambda item: (item[0], item[1]))),
        teams=tuple(sorted(teams, key=lambda item: by_cost(*item))[:top]),
    )
