"""Credit use cases: balances, the ledger, top-ups, adjustments and refunds."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from server.domain import audit, pagination, tenancy, validation, webhooks
from server.domain import credits as credit_rules
from server.domain.audit import Actor
from server.domain.credits import MAX_CREDITS, Balance, Rates
from server.domain.errors import DomainError, Kind, Reason, invalid_argument
from server.domain.jobs import JobStatus
from server.storage import audit as audit_store
from server.storage import credits as credit_store
from server.storage import jobs as job_store
from server.storage import ledger
from server.storage import teams as team_store
from server.storage import webhooks as webhook_store
from server.storage.database import Connection, Database
from server.storage.ledger import LedgerEntry

ADMIN_ACTOR = "admin"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class BalanceView:
    team_id: str
    balance: Balance
    rates: Rates
    open_jobs: int


@dataclass(frozen=True)
class LedgerPage:
    entries: list[LedgerEntry]
    next_page_token: str
    balance: BalanceView


@dataclass(frozen=True)
class CreditChange:
    entry: LedgerEntry
    balance: BalanceView
    repeated: bool = False  # an earlier change returned again; nothing changed now


class _Repeat(Exception):
    """An idempotency key was used before; roll back and return the first result."""


class CreditUseCases:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def balance(self, team_id: str) -> BalanceView:
        validation.identifier("team_id", team_id)
        async with self._db.transaction() as conn:
            return await _view(conn, team_id)

    async def transactions(self, team_id: str, page_size: int, page_token: str) -> LedgerPage:
        validation.identifier("team_id", team_id)
        size = _page_size(page_size)
        before = _decode_token(page_token)
        async with self._db.transaction() as conn:
            view = await _view(conn, team_id)
            entries = await ledger.list_entries(conn, team_id, before=before, limit=size + 1)
        more = len(entries) > size
        entries = entries[:size]
        token = _encode_token(entries[-1].entry_id) if more else ""
        return LedgerPage(entries=entries, next_page_token=token, balance=view)

    async def add(self, actor: Actor, team_id: str, amount: int, reason: str, idempotency_key: str) -> CreditChange:
        validation.identifier("team_id", team_id)
        if not 1 <= amount <= MAX_CREDITS:
            raise invalid_argument("credits", f"must be between 1 and {MAX_CREDITS}")
        return await self._change(actor, team_id, amount, "top_up", reason or "top-up", idempotency_key)

    async def adjust(self, actor: Actor, team_id: str, amount: int, reason: str, idempotency_key: str) -> CreditChange:
        validation.identifier("team_id", team_id)
        if amount == 0 or abs(amount) > MAX_CREDITS:
            raise invalid_argument("credits", f"must be non-zero, between -{MAX_CREDITS} and {MAX_CREDITS}")
        validation.label("reason", reason, required=True, max_length=500)
        return await self._change(actor, team_id, amount, "adjustment", reason, idempotency_key)

    async def _change(
        self, actor: Actor, team_id: str, amount: int, kind: str, reason: str, idempotency_key: str
    ) -> CreditChange:
        validation.label("reason", reason, max_length=500)
        validation.label("idempotency_key", idempotency_key, max_length=200)
        try:
            async with self._db.transaction() as conn:
                if idempotency_key and (first := await ledger.find_by_idempotency_key(conn, team_id, idempotency_key)):
                    raise _Repeat(first)
                # NOT_FOUND for unknown teams; an archived team's credits are history. The
                # row lock holds until commit: an archival waits for the change, or the
                # change for the archival, and then sees it.
                tenancy.ensure_team_writable(await team_store.lock_team(conn, team_id))
                balance = await credit_store.change_allocation(conn, team_id, amount, MAX_CREDITS)
                if balance is None:
                    # NOT_FOUND if it was deleted meanwhile
                    state = await credit_store.team_state(conn, team_id)
                    raise _refused(team_id, amount, state.balance, state.rates.overdraft_limit)
                entry = await ledger.append(
                    conn,
                    team_id=team_id,
                    kind=kind,
                    amount=amount,
                    balance_after=balance,
                    actor=ADMIN_ACTOR,
                    reason=reason,
                    idempotency_key=idempotency_key or None,
                )
                if entry is None:  # a concurrent request with the same key won
                    raise _Repeat(None)
                await _audit(conn, actor, kind, team_id, entry)
                return CreditChange(entry, await _view(conn, team_id))
        except _Repeat as repeat:
            async with self._db.transaction() as conn:
                first = repeat.args[0] or await ledger.find_by_idempotency_key(conn, team_id, idempotency_key)
                if first is None or (first.kind, first.amount, first.reason) != (kind, amount, reason):
                    raise DomainError(
                        Kind.ALREADY_EXISTS,
                        Reason.IDEMPOTENCY_KEY_REUSED,
                        "this idempotency key was already used for a different credit change; use a new key",
                    ) from None
                return CreditChange(first, await _view(conn, team_id))

    async def refund(self, actor: Actor, team_id: str, job_id: str, reason: str) -> CreditChange:
        validation.identifier("team_id", team_id)
        jid = validation.job_id(job_id)
        validation.label("reason", reason, max_length=500)
        async with self._db.transaction() as conn:
            job = await job_store.get_job(conn, jid, team_id, for_update=True)
            team = await team_store.lock_team(conn, team_id)
            tenancy.ensure_team_writable(team)  # as in _change
            if (first := await ledger.find_for_job(conn, jid, "refund")) is not None:
                return CreditChange(first, await _view(conn, team_id), repeated=True)
            if job.status is not JobStatus.COMPLETED or job.credits_charged <= 0:
                raise DomainError(
                    Kind.FAILED_PRECONDITION,
                    "JOB_NOT_CHARGED",
                    f"job {jid} is {job.status.value} and was charged {job.credits_charged} credits; nothing to refund",
                    metadata={"job_id": str(jid)},
                )
            balance = await credit_store.refund(conn, team_id, job.credits_charged, MAX_CREDITS)
            if balance is None:
                state = await credit_store.team_state(conn, team_id)
                raise credit_rules.refund_over_cap(team_id, str(jid), state.balance, job.credits_charged)
            entry = await ledger.append(
                conn,
                team_id=team_id,
                job_id=jid,
                kind="refund",
                amount=job.credits_charged,
                balance_after=balance,
                actor=ADMIN_ACTOR,
                reason=reason or f"refund of job {job.job_type}",
            )
            await job_store.mark_refunded(conn, jid, job.credits_charged)
            assert entry is not None
            await _audit(conn, actor, "refund", team_id, entry)
            # In the refund's transaction, as the other events are: a receiver billing its
            # customers from job.completed learns of the refund exactly when it commits. A
            # repeat returned above, so one refund is one event.
            await webhook_store.enqueue(
                conn,
                webhooks.JOB_REFUNDED,
                team.organization_id,
                {
                    "job_id": str(jid),
                    "team_id": team_id,
                    "organization_id": team.organization_id,
                    "job_type": job.job_type,
                    "status": job.status.value.upper(),
                    "credits_charged": job.credits_charged,
                    "credits_refunded": entry.amount,
                    "credits_remaining": entry.remaining_after,
                    "transaction_id": str(entry.entry_id),  # as ListCreditTransactions names it
                    "reason": entry.reason,
                },
            )
            return CreditChange(entry, await _view(conn, team_id))


async def _audit(conn: Connection, actor: Actor, action: str, team_id: str, entry: LedgerEntry) -> None:
    """Credit changes are admin changes: recorded in the audit log, balance before and
    after, in the same transaction as the change."""
    before = {"credits_remaining": entry.remaining_after - entry.amount}
    after = {
        "credits_remaining": entry.remaining_after,
        "amount": entry.amount,
        "reason": entry.reason,
        "ledger_entry": entry.entry_id,
        "job_id": entry.job_id,
    }
    await audit_store.append(conn, audit.record(actor, f"credits.{action}", audit.TEAM, team_id, before, after))


async def _view(conn: Connection, team_id: str) -> BalanceView:
    team = await credit_store.team_state(conn, team_id)
    return BalanceView(team_id, team.balance, team.rates, await credit_store.open_jobs(conn, team_id))


def _refused(team_id: str, amount: int, balance: Balance, overdraft_limit: int) -> DomainError:
    if amount > 0:
        return credit_rules.over_cap(team_id, balance, amount)
    removable = max(0, balance.available + overdraft_limit)
    return DomainError(
        Kind.FAILED_PRECONDITION,
        Reason.INSUFFICIENT_CREDITS,
        f"removing {-amount} credits would take team '{team_id}' below what it must keep: it has "
        f"{balance.remaining} remaining, its open jobs hold {balance.reserved} and its overdraft allows "
        f"{overdraft_limit}, so at most {removable} can be removed now",
        metadata={"team_id": team_id, "credits_removable": str(removable)},
    )


def _page_size(value: int) -> int:
    """As every list here (Google's AIP-158): 0 is the default, more than the most is the most."""
    if value < 0:
        raise invalid_argument("page_size", "must not be negative")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _encode_token(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"ledger:{entry_id}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int | None:
    if not token:
        return None
    try:
        kind, _, value = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().partition(":")
        if kind != "ledger" or not value.isascii() or not value.isdigit() or int(value) > pagination.BIGINT_MAX:
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise invalid_argument("page_token", "is not a token returned by this list") from None
