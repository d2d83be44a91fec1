"""A provider's usage no call could have (3 billion prompt tokens, negative counts), through
the real LiteLLM proxy: LiteLLM prices it ($3000 for the billion tokens) in the usage and in
its cost header. Neither the count nor that cost is believed: the call's tokens are counted,
and it is costed from the model's price, plain or streamed, so a consumption-mode job is not
billed thousands of credits for a few words."""

from __future__ import annotations

import json

import pytest
import requests

from tests.e2e.conftest import rest_team


@pytest.mark.parametrize("usage", ["huge", "negative"])
def test_a_cost_computed_from_an_implausible_usage_is_not_billed(api, usage):
    team = rest_team(api, credits=1000, budget_mode="consumption_usd", credits_per_dollar="100")
    job = requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=team.headers, timeout=10).json()
    prompt = {"messages": [{"role": "user", "content": f"count me [fake tokens=20 usage={usage}]"}]}
    plain = requests.post(f"{api}/jobs/{job['job_id']}/llm-call", json=prompt, headers=team.headers, timeout=30)
    assert plain.status_code == 200, plain.text
    streamed = requests.post(
        f"{api}/jobs/{job['job_id']}/llm-call-stream", json=prompt, headers=team.headers, timeout=30, stream=True
    )
    events = [json.loads(line[5:]) for line in streamed.iter_lines(decode_unicode=True) if line.startswith("data:")]
    assert events[-1]["done"] and not events[-1].get("error"), events[-1]
    done = requests.post(
        f"{api}/jobs/{job['job_id']}/complete", json={"status": "completed"}, headers=team.headers, timeout=10
    ).json()
    costs = done["costs"]
    assert costs["total_calls"] == 2 and 0 < costs["total_tokens"] < 200
    assert float(costs["total_cost_usd"]) < 0.001  # fake-gpt's price for a few dozen tokens
    assert costs["credits_charged"] == 1  # ceil(< $0.001 x 100 credits a dollar), at least 1
