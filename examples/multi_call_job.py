"""A multi-call job: three calls (extract, classify, summarize) billed as one credit.

Shows call labels (`purpose`), job metadata, the cost totals of the job, and how a failure
inside the job completes it as failed (no credit charged). Environment:
SAAS_LITELLM_API_URL (default http://localhost:8003), SAAS_LITELLM_VIRTUAL_KEY (required),
SAAS_LITELLM_TEAM_ID and SAAS_LITELLM_MODEL (optional).

    python examples/multi_call_job.py
"""

import asyncio
import os

from saas_litellm_client import ModelNotAllowedError, SaasLiteLLMClient

DOCUMENT = "ACME Corp. Q3 report: revenue grew 12% to $4.2M; churn fell to 2.1%; two new regions opened."


async def main() -> None:
    model = os.environ.get("SAAS_LITELLM_MODEL")
    async with SaasLiteLLMClient(
        base_url=os.environ.get("SAAS_LITELLM_API_URL", "http://localhost:8003"),
        team_id=os.environ.get("SAAS_LITELLM_TEAM_ID"),
        virtual_key=os.environ["SAAS_LITELLM_VIRTUAL_KEY"],
    ) as client:
        async with client.job("document_analysis", metadata={"document": "q3-report"}) as job:
            text = await job.llm_call(
                [{"role": "user", "content": f"Extract the key facts: {DOCUMENT}"}], purpose="extract_text", model=model
            )
            category = await job.llm_call(
                [{"role": "user", "content": f"Classify: {text.content}"}],
                purpose="classify_content",
                model=model,
                call_metadata={"category_checked": True},
            )
            summary = await job.llm_call(
                [
                    {"role": "system", "content": "You write one-line executive summaries."},
                    {"role": "user", "content": f"Summarize: {text.content} ({category.content})"},
                ],
                purpose="generate_summary",
                model=model,
                temperature=0.2,
                max_tokens=60,
            )
            print(f"Summary: {summary.content}")

        result = job.result
        print(f"Job {result.job_id}: {result.status}, {result.costs.total_calls} calls")
        for call in result.calls:
            print(f"  {call.purpose:<17} {call.tokens:>5} tokens  ${call.cost_usd:.6f}  {call.latency_ms} ms")
        print(f"Total cost: ${result.costs.total_cost_usd:.6f}; credits charged: {result.costs.credits_charged}")
        print(f"Credits remaining: {result.credits_remaining}")

        # A job whose block raises is completed "failed": its credit is released, not charged.
        try:
            async with client.job("document_analysis") as failing:
                await failing.llm_call([{"role": "user", "content": "Hi"}], model="NoSuchModel")
        except ModelNotAllowedError as error:
            print(f"Job {failing.job_id} failed ({error.reason}): {failing.result.status}, no credit charged")
            print(f"Credits remaining: {failing.result.credits_remaining}")


if __name__ == "__main__":
    asyncio.run(main())
