"""Quote before you spend: what a call could cost, then the call, then an agent loop that
stops before its job's cost limit (when the operator set one for the team:
`max_cost_usd_per_job`).

export SAAS_LITELLM_API_URL=http://localhost:8003     # the API (Envoy); default shown
export SAAS_LITELLM_TEAM_ID=acme-corp                 # optional: checked against the key
export SAAS_LITELLM_VIRTUAL_KEY=sk-...                # the team's virtual key (required)
export SAAS_LITELLM_MODEL=ChatAgent                   # optional: default is the team's model
python examples/price_quote.py
"""

import asyncio
import os

from saas_litellm_client import SaasLiteLLMClient

MAX_TOKENS = 100  # the answer's bound: a quote needs one, and so does a cost-limited team


async def main() -> None:
    model = os.environ.get("SAAS_LITELLM_MODEL")
    async with SaasLiteLLMClient(
        base_url=os.environ.get("SAAS_LITELLM_API_URL", "http://localhost:8003"),
        team_id=os.environ.get("SAAS_LITELLM_TEAM_ID"),
        virtual_key=os.environ["SAAS_LITELLM_VIRTUAL_KEY"],
    ) as client:
        # The price to show your user before they commit; nothing is spent yet.
        question = [{"role": "user", "content": "Summarize our Q3 report in one sentence."}]
        quote = await client.estimate_call(question, model=model, max_tokens=MAX_TOKENS)
        print(
            f"Quote: at most ${quote.max_cost_usd} (likely at most ${quote.likely_max_cost_usd}), "
            f"{quote.max_credits} credit(s)"
        )

        # They accept: one single-call job.
        answer = await client.create_and_call("quoted_summary", question, model=model, max_tokens=MAX_TOKENS)
        cost = answer.metadata.cost_usd
        print(f"Answer: {answer.content}")
        print(f"Cost: ${cost:.6f}, within the quote: {cost <= quote.max_cost_usd}")

        # An agent whose steps all run in one job: before each step, ask whether it still
        # fits the job's cost limit, instead of being refused halfway (JobCostLimitReachedError).
        async with client.job("research_agent") as job:
            steps = 0
            for step in range(1, 11):
                ask = [{"role": "user", "content": f"Research step {step}: what next?"}]
                check = await client.estimate_call(ask, job_id=job.job_id, model=model, max_tokens=MAX_TOKENS)
                if check.fits_job_cost_limit is False:
                    print(
                        f"Stopping before step {step}: ${check.job_cost_remaining_usd} left of the job's limit, "
                        f"the step could cost ${check.max_cost_usd}"
                    )
                    break
                await job.llm_call(ask, model=model, max_tokens=MAX_TOKENS, purpose=f"step_{step}")
                steps += 1
        print(f"Agent job: {steps} steps, ${job.result.costs.total_cost_usd:.6f}, {job.result.status}")
        print(f"Credits remaining: {job.result.credits_remaining}")


if __name__ == "__main__":
    asyncio.run(main())
