"""The runnable examples in examples/ work against the real stack, configured only through
the environment variables they document."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx

from tests.conftest import ADMIN_KEY, ROOT

EXAMPLES = ROOT / "examples"


def run_example(name: str, stack, team, **extra_env: str) -> str:
    env = {
        **os.environ,
        "SAAS_LITELLM_API_URL": stack.api_url,
        "SAAS_LITELLM_TEAM_ID": team.team_id,
        "SAAS_LITELLM_VIRTUAL_KEY": team.key,
        **extra_env,
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert team.key not in result.stdout and team.key not in result.stderr
    return result.stdout


def credits_of(api: str, team) -> int:
    return httpx.get(f"{api}/teams/{team.team_id}", headers={"X-Admin-Key": ADMIN_KEY}, timeout=10).json()[
        "credits_remaining"
    ]


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == [
        "basic_usage.py",
        "multi_call_job.py",
        "openai_sdk.py",
        "price_quote.py",
        "streaming.py",
        "structured_outputs.py",
    ]


def test_basic_usage(stack, api, team):
    output = run_example("basic_usage.py", stack, team, SAAS_LITELLM_MODEL=team.alias)
    assert re.search(r"^Job: [0-9a-f-]{36} \(PENDING\)$", output, re.M)
    assert "Answer: Hello from fake! You said: Analyze this quarterly report" in output
    assert output.endswith("Credits remaining: 99\n") and credits_of(api, team) == 99


def test_streaming(stack, api, team):
    output = run_example("streaming.py", stack, team)
    assert output.startswith("Hello from fake! You said: Tell me a story\n")
    assert re.search(r"^Tokens: \d+, cost: \$0\.0000\d\d$", output, re.M)
    assert output.endswith("Credits remaining: 99\n")


def test_structured_outputs(stack, api, team):
    output = run_example("structured_outputs.py", stack, team)
    assert "Name: Ada Lovelace, Age: 36, Email: user@example.com\n" in output
    assert output.endswith("Credits remaining: 99\n")


def test_multi_call_job(stack, api, team):
    output = run_example("multi_call_job.py", stack, team)
    assert re.search(r"^Job [0-9a-f-]{36}: COMPLETED, 3 calls$", output, re.M)
    for purpose in ("extract_text", "classify_content", "generate_summary"):
        assert re.search(rf"^  {purpose} +\d+ tokens  \$0\.\d{{6}}  \d+ ms$", output, re.M)
    assert "credits charged: 1" in output
    assert re.search(r"failed \(MODEL_NOT_ALLOWED\): FAILED, no credit charged", output)
    assert output.endswith("Credits remaining: 99\n") and credits_of(api, team) == 99


def test_openai_sdk(stack, api, team):
    output = run_example("openai_sdk.py", stack, team)
    assert re.search(
        r"^Answer: Hello from fake! You said: Analyze this quarterly report \(job [0-9a-f-]{36}\)$", output, re.M
    )
    assert "Story: Hello from fake! You said: Tell me a story\n" in output
    assert re.search(r"^Job [0-9a-f-]{36}: COMPLETED, 3 calls$", output, re.M)
    # Three credits: two single-call jobs and one job of three calls.
    assert output.endswith("Credits remaining: 97\n") and credits_of(api, team) == 97


def test_price_quote(stack, api, team):
    output = run_example("price_quote.py", stack, team)
    assert re.search(r"^Quote: at most \$0\.000\d+ \(likely at most \$0\.000\d+\), 1 credit\(s\)$", output, re.M)
    assert "Cost: $0.0000" in output and "within the quote: True" in output
    assert "Agent job: 10 steps" in output and "Stopping" not in output  # no cost limit: every step
    assert output.endswith("Credits remaining: 98\n")


def test_price_quote_stops_the_agent_before_the_teams_cost_per_job(stack, api, team):
    # Each step costs about $0.00003 and could cost about $0.00027: $0.0004 holds a few.
    limited = httpx.patch(
        f"{api}/teams/{team.team_id}",
        json={"max_cost_usd_per_job": "0.0004"},
        headers={"X-Admin-Key": ADMIN_KEY},
        timeout=10,
    )
    assert limited.status_code == 200, limited.text
    output = run_example("price_quote.py", stack, team)
    stopped = re.search(r"^Stopping before step (\d+): \$0\.000\d+ left of the job's limit", output, re.M)
    assert stopped and 2 < int(stopped.group(1)) < 10, output
    assert re.search(rf"^Agent job: {int(stopped.group(1)) - 1} steps, \$0\.000\d+, COMPLETED$", output, re.M)


def test_an_example_without_a_key_fails_clearly(stack, team):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAAS_LITELLM_")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "basic_usage.py")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "SAAS_LITELLM_VIRTUAL_KEY" in result.stderr
