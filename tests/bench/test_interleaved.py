"""bench.load.interleaved: which requests it keeps, in what order it makes them."""

from __future__ import annotations

import asyncio

from bench.load import interleaved


def _run(block: int, rounds: int, warmup_rounds: int) -> tuple[list[str], dict]:
    made: list[str] = []

    def path(name: str):
        async def call() -> str:
            made.append(name)
            return f"{name}{len(made)}"

        return call

    samples = asyncio.run(
        interleaved({"a": path("a"), "b": path("b")}, rounds=rounds, warmup_rounds=warmup_rounds, block=block)
    )
    return made, samples


def test_one_by_one_turns_keep_every_request_after_the_warm_up() -> None:
    made, samples = _run(block=1, rounds=3, warmup_rounds=1)
    assert made == ["a", "b"] * 4
    assert samples["a"].results == ["a3", "a5", "a7"] and samples["b"].results == ["b4", "b6", "b8"]
    assert samples["a"].requests == samples["b"].requests == 4


def test_a_block_keeps_only_requests_that_follow_their_own_path() -> None:
    made, samples = _run(block=3, rounds=5, warmup_rounds=1)
    # A warm-up round, then ceil(5 / 2) rounds; each turn is 3 requests on one path.
    assert made == (["a"] * 3 + ["b"] * 3) * 4
    # Kept: the 2nd and 3rd of each kept turn (the 1st follows the other path), 5 at most.
    assert samples["a"].results == ["a8", "a9", "a14", "a15", "a20"]
    assert samples["b"].results == ["b11", "b12", "b17", "b18", "b23"]
    assert all(made[int(r[1:]) - 2] == r[0] for s in samples.values() for r in s.results)
    assert len(samples["a"].latencies) == 5 and samples["a"].requests == 12
