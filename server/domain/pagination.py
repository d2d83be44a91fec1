"""Page tokens for List methods (keyset pagination, AIP-158).

A token carries the sort key of the last item returned and a fingerprint of the filters
it was issued for; reusing it with other filters is INVALID_ARGUMENT. Tokens are opaque
to clients but not secret: a forged one can only move the cursor.

A cursor pages a list completely only if entries become visible in the list's order:
an entry that commits after a reader paged past its place is never shown to that reader.
So a list sorted newest first must sort by a key taken in commit order, not one merely
taken before commit (a sequence value or now() at INSERT): the audit log's audit_id and a
team's jobs' creation_seq are taken under a lock held until commit (server/storage/audit.py
`append`, server/storage/jobs.py `list_team_jobs`). Lists sorted by a name or id the caller
chose page in that name's order; an entry created behind the cursor is simply not in the
part left to read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from server.domain.errors import invalid_argument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")  # UTF-8 cannot encode them

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    """A validated page request: how many items, after which sort key (None: from the start)."""

    size: int
    after: tuple[Any, ...] | None
    fingerprint: str


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_page_token: str


def fingerprint(filters: dict[str, Any]) -> str:
    canonical = json.dumps(filters, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def page_request(page_size: int, page_token: str, filters: dict[str, Any]) -> PageRequest:
    if page_size < 0:
        raise invalid_argument("page_size", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    marks = fingerprint(filters)
    if not page_token:
        return PageRequest(size=size, after=None, fingerprint=marks)
    try:
        decoded = json.loads(base64.urlsafe_b64decode(page_token.encode() + b"=" * (-len(page_token) % 4)))
        after, issued_for = decoded["a"], decoded["f"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise invalid_argument("page_token", "is not a token this API issued") from None
    if not isinstance(after, list):
        raise invalid_argument("page_token", "is not a token this API issued")
    if issued_for != marks:
        raise invalid_argument("page_token", "was issued for other filters; send the same filters or no token")
    return PageRequest(size=size, after=tuple(after), fingerprint=marks)


def after_id(request: PageRequest) -> str | None:
    """The position of a list sorted by one text id: the last id of the previous page."""
    position = after(request, str)
    return None if position is None else position[0]


def after(request: PageRequest, *types: type) -> tuple[Any, ...] | None:
    """The position a token carries, checked against the sort key's types: a token is
    not signed, so a forged one must fail as INVALID_ARGUMENT, not deeper down."""
    if request.after is None:
        return None
    position = request.after
    if len(position) != len(types) or not all(_fits(v, t) for v, t in zip(position, types, strict=True)):
        raise invalid_argument("page_token", "is not a token this API issued")
    return position


def _fits(value: Any, kind: type) -> bool:
    """A sort key's value of this type that PostgreSQL takes: a bigint; a text without
    NUL that UTF-8 can encode (JSON's escapes also spell lone surrogates)."""
    if type(value) is not kind:
        return False
    if kind is int:
        return BIGINT_MIN <= value <= BIGINT_MAX
    if kind is str:
        return "\x00" not in value and not _SURROGATE.search(value)
    return True


def page(rows: list[T], request: PageRequest, sort_key, *, weigh=None, budget: int = 0) -> Page[T]:
    """`rows` were fetched with a limit of request.size + 1: one more means another page.
    With `weigh` (an item's approximate size in bytes), a page also ends before its items
    would weigh more than `budget` (it keeps at least one), so a page of large items still
    fits in a response."""
    items = rows[: request.size]
    if weigh is not None:
        total = 0
        for index, item in enumerate(items):
            total += weigh(item)
            if total > budget and index:
                items = items[:index]
                break
    if len(rows) <= len(items):
        return Page(items=tuple(items), next_page_token="")
    token = json.dumps({"a": list(sort_key(items[-1])), "f": request.fingerprint}, default=str)
    return Page(items=tuple(items), next_page_token=base64.urlsafe_b64encode(token.encode()).decode().rstrip("="))
