"""The OpenAI SDK, unchanged but for its base URL and key, billing by the job.

Each plain completion is a job of its own (one credit); an agent's several completions
share one job when they name it in the `X-Job-Id` header. Environment:
SAAS_LITELLM_API_URL (default http://localhost:8003), SAAS_LITELLM_VIRTUAL_KEY (required),
SAAS_LITELLM_TEAM_ID and SAAS_LITELLM_MODEL (optional: the first model of `GET /v1/models`).

    python examples/openai_sdk.py
"""

import os

from openai import OpenAI

from saas_litellm_client import SyncSaasLiteLLMClient

API_URL = os.environ.get("SAAS_LITELLM_API_URL", "http://localhost:8003")
KEY = os.environ["SAAS_LITELLM_VIRTUAL_KEY"]


def main() -> None:
    openai = OpenAI(base_url=f"{API_URL}/v1", api_key=KEY)
    model = os.environ.get("SAAS_LITELLM_MODEL") or openai.models.list().data[0].id

    # One completion, one single-call job.
    raw = openai.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Analyze this quarterly report"}]
    )
    print(f"Answer: {raw.parse().choices[0].message.content} (job {raw.headers['x-job-id']})")

    # Streamed, as OpenAI streams.
    stream = openai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Tell me a story"}], stream=True
    )
    print("Story:", "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices))

    # An agent's three steps in one job: one credit for all of them.
    with SyncSaasLiteLLMClient(API_URL, os.environ.get("SAAS_LITELLM_TEAM_ID"), KEY) as client:
        with client.job("agent_run") as job:
            agent = openai.with_options(default_headers={"X-Job-Id": job.job_id})
            for step in ("plan", "act", "check"):
                agent.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": f"Next step: {step}"}],
                    extra_headers={"X-Call-Purpose": step},
                )
        result = job.result
        print(f"Job {result.job_id}: {result.status}, {result.costs.total_calls} calls")
        print(f"Credits remaining: {result.credits_remaining}")


if __name__ == "__main__":
    main()
