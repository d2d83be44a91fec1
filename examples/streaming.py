"""Streaming: print an answer as it arrives (Server-Sent Events), then its usage and cost.

Environment: SAAS_LITELLM_API_URL (default http://localhost:8003), SAAS_LITELLM_VIRTUAL_KEY
(required), SAAS_LITELLM_TEAM_ID and SAAS_LITELLM_MODEL (optional); see basic_usage.py.

    python examples/streaming.py
"""

import asyncio
import os

from saas_litellm_client import SaasLiteLLMClient, StreamCutError


async def main() -> None:
    async with SaasLiteLLMClient(
        base_url=os.environ.get("SAAS_LITELLM_API_URL", "http://localhost:8003"),
        team_id=os.environ.get("SAAS_LITELLM_TEAM_ID"),
        virtual_key=os.environ["SAAS_LITELLM_VIRTUAL_KEY"],
    ) as client:
        # The job is completed "completed" when the block ends, "failed" if it raises.
        async with client.job("chat") as job:
            stream = client.llm_call_stream(
                job_id=job.job_id,
                messages=[{"role": "user", "content": "Tell me a story"}],
                model=os.environ.get("SAAS_LITELLM_MODEL"),
            )
            try:
                async for chunk in stream:
                    print(chunk.content, end="", flush=True)
            except StreamCutError as cut:
                # The stream ended without its final event: what arrived is incomplete.
                print(f"\n[stream cut after {len(cut.content)} characters]")
                raise
            print()
            usage = stream.final.usage if stream.final else None
            print(f"Tokens: {usage.total_tokens if usage else '?'}, cost: ${stream.cost_usd or 0:.6f}")
        print(f"Credits remaining: {job.result.credits_remaining}")


if __name__ == "__main__":
    asyncio.run(main())
