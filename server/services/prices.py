"""Model prices, for costing calls whose provider reported no cost (e.g. a stream cut
short, whose cost LiteLLM never computed). Prices come from the LiteLLM proxy's model
info, cached and refreshed lazily, so a price change there reaches billing within
REFRESH_SECONDS. A call on a model with no price at all is recorded at $0 and reported
(`unpriced`): a warning in the log and `saaslitellm_llm_calls_unpriced_total`, so the
operator's margins never look better than they are without anyone being told."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

from server.upstream.litellm import LiteLLMClient

log = logging.getLogger(__name__)

REFRESH_SECONDS = 300.0


class PriceCatalog:
    def __init__(self, upstream: LiteLLMClient) -> None:
        self._upstream = upstream
        self._prices: dict[str, tuple[Decimal, Decimal]] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()
        self._warned: set[str] = set()

    async def price(self, model: str) -> tuple[Decimal, Decimal] | None:
        """The model's per-token (input, output) USD price, or None when unknown."""
        return (await self._current()).get(model)

    def unpriced(self, model: str) -> None:
        """A call that used tokens on `model` was recorded at $0: no price is known for it.
        Said once per model and process, with what to do; counted by the observed catalog."""
        if model not in self._warned:
            self._warned.add(model)
            log.warning(
                "calls on model '%s' are recorded at $0: LiteLLM reported no cost and its model info has no "
                "price for it. Set input_cost_per_token and output_cost_per_token in the model's model_info "
                "in the LiteLLM config (0 for a free model)",
                model,
            )

    async def _current(self) -> dict[str, tuple[Decimal, Decimal]]:
        if time.monotonic() - self._loaded_at < REFRESH_SECONDS:
            return self._prices
        async with self._lock:
            if time.monotonic() - self._loaded_at >= REFRESH_SECONDS:
                self._prices = await self._upstream.model_prices()
                self._loaded_at = time.monotonic()
        return self._prices
