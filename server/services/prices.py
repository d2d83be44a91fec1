"""Model prices, for bounding what a call may cost (a job's cost limit, EstimateCall) and
costing calls whose provider reported no cost (e.g. a stream cut short, whose cost LiteLLM
never computed). Prices come from the LiteLLM proxy's model info, cached and refreshed
lazily, so a price change there reaches billing within REFRESH_SECONDS; at once when a
call's cost, as LiteLLM reported it, shows the change (`check_reported`). A model name's
price is its priciest deployment's (server.upstream.litellm.ModelPrices); a call whose
deployment LiteLLM named is costed at that one's. A call on a model with no price at all
is recorded at $0 and reported (`unpriced`): a warning in the log and
`saaslitellm_llm_calls_unpriced_total`, so the operator's margins never look better than
they are without anyone being told."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal

from server.domain import credits
from server.domain.completion import Usage
from server.upstream.litellm import LiteLLMClient, ModelPrices, Price

log = logging.getLogger(__name__)

# A read is one GET of /model/info per process (a few milliseconds of LiteLLM's for a
# handful of models); a price raised in LiteLLM lets a job's calls reserve less than they
# cost until it is read (README "Cost per job").
REFRESH_SECONDS = 30.0
RETRY_SECONDS = 10.0  # after LiteLLM could not be asked: the known prices stay meanwhile


class PriceCatalog:
    def __init__(self, upstream: LiteLLMClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._upstream = upstream
        self._clock = clock
        self._prices = ModelPrices()
        self._next_load = float("-inf")
        self._next_missing_load = float("-inf")
        self._lock = asyncio.Lock()
        self._warned: set[str] = set()
        self._loaded = False
        self._reads = 0  # reads begun
        # Models or deployments whose reported costs disagree with their price read again:
        # not read for again until then (check_reported).
        self._disagreeing: dict[str, float] = {}

    async def price(self, model: str, deployment: str = "") -> Price | None:
        """The model's per-token (input, output) USD price, its priciest deployment's, or
        None when unknown (for one of its deployments); with the `deployment` that served a
        call (its id, as LiteLLM said), that one's price when known. A model or deployment
        missing from the known prices has them read again, at most every RETRY_SECONDS:
        one added to LiteLLM since (LiteLLM would cost its calls) is priced within that."""
        await self._read_when_due(model, deployment)
        return self._known(model, deployment)

    def _known(self, model: str, deployment: str) -> Price | None:
        if deployment in self._prices.by_deployment:
            return self._prices.by_deployment[deployment]
        return self._prices.get(model)

    async def check_reported(self, model: str, deployment: str, usage: Usage, reported_usd: Decimal) -> None:
        """Read the prices again at once when LiteLLM reported a call's cost that the known
        price of the deployment that served it (its model's, when LiteLLM did not say which)
        does not give for its usage: the price changed in LiteLLM, and until it is read
        again, calls under a job's cost limit reserve what the old price gives. Once,
        however many calls notice at the same time. A model or deployment whose costs still
        disagree with its price read again (a provider's discount for cached tokens, a
        price per tier) is not read for again until the next refresh is due."""
        key = deployment or model
        if not self._disagrees(key, model, deployment, usage, reported_usd):
            return
        noticed = self._reads
        async with self._lock:
            # Another call's notice may have had them read meanwhile: the price now gives
            # this cost, or the disagreement was found lasting.
            if not self._disagrees(key, model, deployment, usage, reported_usd):
                return
            if self._reads == noticed:  # else a read began after this call's cost was known: it saw the price
                await self.prices_now()
            if self._disagrees(key, model, deployment, usage, reported_usd):
                self._disagreeing[key] = self._next_load

    def _disagrees(self, key: str, model: str, deployment: str, usage: Usage, reported_usd: Decimal) -> bool:
        """The known price does not give the reported cost, and `key` is not known to disagree."""
        if self._clock() < self._disagreeing.get(key, float("-inf")):
            return False
        price = self._known(model, deployment)
        return price is not None and credits.cost_disagrees(reported_usd, usage, price)

    @property
    def loaded(self) -> bool:
        """The prices were read at least once."""
        return self._loaded

    async def keep_fresh(self) -> None:
        """A round of the server's own refresh, every RETRY_SECONDS from start-up: read the
        prices when due. So a process knows them before its first call needs them, and
        still knows them when LiteLLM goes away: a stream cut by LiteLLM's death is then
        costed from its model's price, not recorded at $0 because a first read failed."""
        await self._read_when_due(None)

    async def _read_when_due(self, model: str | None, deployment: str = "") -> None:
        """Read the prices when the refresh is due, or `model` (or `deployment`) is missing
        from them and was not looked for in the last RETRY_SECONDS; once, however many ask
        at the same time."""
        if self._due(model, deployment):
            async with self._lock:
                if self._due(model, deployment):
                    if model is not None:
                        self._next_missing_load = self._clock() + RETRY_SECONDS
                    await self.prices_now()

    def _due(self, model: str | None, deployment: str) -> bool:
        now = self._clock()
        missing = model is not None and (
            model not in self._prices or (bool(deployment) and deployment not in self._prices.by_deployment)
        )
        return now >= self._next_load or (missing and now >= self._next_missing_load)

    async def prices_now(self) -> ModelPrices | None:
        """Every known price, asked of LiteLLM now; None if it could not be asked. A failed
        read keeps the prices known before (a blip must not make priced calls $0) and is
        retried after RETRY_SECONDS."""
        self._reads += 1
        prices = await self._upstream.model_prices()
        if prices is None:
            self._next_load = self._clock() + RETRY_SECONDS
            log.warning(
                "could not read model prices from LiteLLM's /model/info; keeping the %d known, retrying in %.0f s",
                len(self._prices),
                RETRY_SECONDS,
            )
            return None
        self._prices = prices
        self._loaded = True
        self._next_load = self._clock() + REFRESH_SECONDS
        return prices

    def unpriced(self, model: str) -> None:
        """A call that used tokens on `model` was recorded at $0: no price is known for it.
        Said once per model and process, with what to do; counted by the observed catalog."""
        if not self._loaded:  # LiteLLM never answered: its price may well be known there
            log.warning(
                "a call on model '%s' is recorded at $0: LiteLLM reported no cost and its model info could not "
                "be read since this process started; check that LiteLLM is reachable",
                model,
            )
            return
        if model not in self._warned:
            self._warned.add(model)
            log.warning(
                "calls on model '%s' are recorded at $0: LiteLLM reported no cost and its model info has no "
                "price for it (or for one of its deployments). Set input_cost_per_token and output_cost_per_token "
                "in the model_info of each of its deployments in the LiteLLM config (0 for a free model)",
                model,
            )
