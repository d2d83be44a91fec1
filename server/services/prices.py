"""Model prices, for costing calls whose provider reported no cost (e.g. a stream cut
short, whose cost LiteLLM never computed). Prices come from the LiteLLM proxy's model
info, cached and refreshed lazily, so a price change there reaches billing within
REFRESH_SECONDS."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from server.domain.completion import Usage
from server.upstream.litellm import LiteLLMClient

REFRESH_SECONDS = 300.0


class PriceCatalog:
    def __init__(self, upstream: LiteLLMClient) -> None:
        self._upstream = upstream
        self._prices: dict[str, tuple[Decimal, Decimal]] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def cost(self, model: str, usage: Usage) -> Decimal | None:
        """USD cost of `usage` on `model`, or None when its price is unknown."""
        prices = await self._current()
        if model not in prices:
            return None
        cost_in, cost_out = prices[model]
        return cost_in * usage.prompt_tokens + cost_out * usage.completion_tokens

    async def _current(self) -> dict[str, tuple[Decimal, Decimal]]:
        if time.monotonic() - self._loaded_at < REFRESH_SECONDS:
            return self._prices
        async with self._lock:
            if time.monotonic() - self._loaded_at >= REFRESH_SECONDS:
                self._prices = await self._upstream.model_prices()
                self._loaded_at = time.monotonic()
        return self._prices
