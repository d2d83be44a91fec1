"""Basic usage: create a job, make one LLM call, complete the job (1 credit).

export SAAS_LITELLM_API_URL=http://localhost:8003     # the API (Envoy); default shown
export SAAS_LITELLM_TEAM_ID=acme-corp                 # optional: checked against the key
export SAAS_LITELLM_VIRTUAL_KEY=sk-...                # the team's virtual key (required)
export SAAS_LITELLM_MODEL=ChatAgent                   # optional: default is the team's model
python examples/basic_usage.py
"""

import asyncio
import os

from saas_litellm_client import SaasLiteLLMClient


async def main() -> None:
    async with SaasLiteLLMClient(
        base_url=os.environ.get("SAAS_LITELLM_API_URL", "http://localhost:8003"),
        team_id=os.environ.get("SAAS_LITELLM_TEAM_ID"),
        virtual_key=os.environ["SAAS_LITELLM_VIRTUAL_KEY"],
    ) as client:
        # Create job
        job = await client.create_job("document_analysis")
        print(f"Job: {job.job_id} ({job.status})")

        # Make LLM call
        response = await client.llm_call(
            job_id=job.job_id,
            messages=[{"role": "user", "content": "Analyze this quarterly report in one sentence."}],
            model=os.environ.get("SAAS_LITELLM_MODEL"),
        )
        print(f"Answer: {response.response.content}")
        print(f"Tokens: {response.metadata.tokens_used}, cost: ${response.metadata.cost_usd:.6f}")

        # Complete job
        result = await client.complete_job(job.job_id, "completed")
        print(f"Credits remaining: {result.credits_remaining}")


if __name__ == "__main__":
    asyncio.run(main())
