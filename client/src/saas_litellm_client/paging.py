"""Every item of a paged list, fetching the next page as the last one runs out: what the
`iter_*` methods of both clients share (`list_*` gives one page and its `next_page_token`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")
P = TypeVar("P", bound="Page")


class Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


async def every(fetch: Callable[[str | None], Awaitable[P]], items: Callable[[P], Sequence[T]]) -> AsyncIterator[T]:
    """`items` of each page `fetch(page_token)` gives, from the first page to the last."""
    page_token: str | None = None
    while True:
        page = await fetch(page_token)
        for item in items(page):
            yield item
        if not page.next_page_token:
            return
        page_token = page.next_page_token


def every_sync(fetch: Callable[[str | None], P], items: Callable[[P], Sequence[T]]) -> Iterator[T]:
    """`every`, for the blocking client."""
    page_token: str | None = None
    while True:
        page = fetch(page_token)
        yield from items(page)
        if not page.next_page_token:
            return
        page_token = page.next_page_token
