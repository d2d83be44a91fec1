"""The user-facing documentation (docs/integration-overview.md) works as written.

The code blocks below are copied verbatim from the seed document (the test below checks
they still are). The only changes a
reader makes are the ones the document asks for: the real base URL and virtual key, the
admin key header on admin requests (ours are never open), and the one step that registers
the model alias the team's access group grants (POST /api/models/create).
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess

import psycopg
import requests

from tests.conftest import ADMIN_KEY, ROOT

QUICK_START_STEP_1 = """
# Create organization
curl -X POST http://localhost:8003/api/organizations/create \\
  -H "Content-Type: application/json" \\
  -d '{
    "organization_id": "org_acme",
    "name": "ACME Corporation"
  }'

# Create model access group
curl -X POST http://localhost:8003/api/model-access-groups/create \\
  -H "Content-Type: application/json" \\
  -d '{
    "group_name": "gpt-models",
    "description": "GPT models"
  }'

# Create team
curl -X POST http://localhost:8003/api/teams/create \\
  -H "Content-Type: application/json" \\
  -d '{
    "organization_id": "org_acme",
    "team_id": "acme-corp",
    "team_alias": "ACME Corp Team",
    "access_groups": ["gpt-models"],
    "credits_allocated": 1000
  }'
"""

REGISTER_ALIAS = """
curl -X POST http://localhost:8003/api/models/create \\
  -H "Content-Type: application/json" \\
  -d '{"model_alias": "ChatAgent", "actual_model": "fake-gpt", "access_groups": ["gpt-models"]}'
"""

QUICK_START_STEP_2 = """
import requests

API = "http://localhost:8003/api"
VIRTUAL_KEY = "sk-your-virtual-key-here"

headers = {
    "Authorization": f"Bearer {VIRTUAL_KEY}",
    "Content-Type": "application/json"
}

# Create job
job = requests.post(f"{API}/jobs/create", headers=headers, json={
    "team_id": "acme-corp",
    "job_type": "test",
    "metadata": {"test": True}
}).json()

print(f"Created job: {job['job_id']}")

# Make LLM call
response = requests.post(
    f"{API}/jobs/{job['job_id']}/llm-call",
    headers=headers,
    json={
        "messages": [
            {"role": "user", "content": "Say hello!"}
        ]
    }
).json()

print(f"Response: {response['response']['content']}")

# Complete job
result = requests.post(
    f"{API}/jobs/{job['job_id']}/complete",
    headers=headers,
    json={"status": "completed"}
).json()

print(f"Credits remaining: {result['costs']['credits_remaining']}")
"""

PATTERN_A = """
import requests

API = "http://localhost:8003/api"
headers = {"Authorization": "Bearer sk-your-virtual-key"}

# 1. Create job
job = requests.post(f"{API}/jobs/create", headers=headers, json={
    "team_id": "acme-corp",
    "job_type": "document_analysis"
}).json()

# 2. Make LLM calls
response = requests.post(f"{API}/jobs/{job['job_id']}/llm-call",
    headers=headers,
    json={
        "messages": [{"role": "user", "content": "Analyze this..."}]
    }
).json()

# 3. Complete job
result = requests.post(f"{API}/jobs/{job['job_id']}/complete",
    headers=headers,
    json={"status": "completed"}
).json()

print(f"Credits remaining: {result['costs']['credits_remaining']}")
"""

PATTERN_B = """
import requests

API = "http://localhost:8003/api"
headers = {"Authorization": "Bearer sk-your-virtual-key"}

# Create job and make streaming call
response = requests.post(
    f"{API}/jobs/{job_id}/llm-call-stream",
    headers=headers,
    json={
        "messages": [{"role": "user", "content": "Tell me a story"}]
    },
    stream=True
)

# Process Server-Sent Events
for line in response.iter_lines():
    if line.startswith(b'data: '):
        chunk = json.loads(line[6:])
        if chunk.get("content"):
            print(chunk["content"], end="", flush=True)
"""


def as_reader_would(code: str, base_url: str, key: str = "") -> str:
    code = code.replace("http://localhost:8003", base_url)
    return code.replace("sk-your-virtual-key-here", key).replace("sk-your-virtual-key", key)


def with_admin_header(script: str) -> str:
    return script.replace(
        '-H "Content-Type: application/json"', f'-H "Content-Type: application/json" -H "X-Admin-Key: {ADMIN_KEY}"'
    )


def run_python(code: str, **namespace: object) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<seed document>", "exec"), {"json": json, **namespace})
    return out.getvalue()


def curl(script: str) -> list[dict]:
    """Run a curl script; return each JSON document it printed."""
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    decoder, text, docs, index = json.JSONDecoder(), result.stdout.strip(), [], 0
    while index < len(text):
        doc, end = decoder.raw_decode(text, index)
        docs.append(doc)
        index = end
        while index < len(text) and text[index].isspace():
            index += 1
    return docs


def test_quick_start_and_patterns_work_as_written(stack):
    base = stack.api_url
    org, group, team = curl(with_admin_header(as_reader_would(QUICK_START_STEP_1, base)))
    assert org["organization_id"] == "org_acme" and group["group_name"] == "gpt-models"
    assert team["team_id"] == "acme-corp" and team["virtual_key"].startswith("sk-")
    assert team["credits_allocated"] == 1000 and team["credits_remaining"] == 1000
    (alias,) = curl(with_admin_header(as_reader_would(REGISTER_ALIAS, base)))
    assert alias["model_alias"] == "ChatAgent"
    key = team["virtual_key"]

    step_2 = run_python(as_reader_would(QUICK_START_STEP_2, base, key))
    lines = step_2.splitlines()
    assert lines[0].startswith("Created job: ")
    assert lines[1] == "Response: Hello from fake! You said: Say hello!"
    assert lines[2] == "Credits remaining: 999"

    assert run_python(as_reader_would(PATTERN_A, base, key)) == "Credits remaining: 998\n"

    job = requests.post(
        f"{base}/api/jobs/create", headers={"Authorization": f"Bearer {key}"}, json={"job_type": "chat"}, timeout=10
    ).json()
    story = run_python(as_reader_would(PATTERN_B, base, key), job_id=job["job_id"])
    assert story == "Hello from fake! You said: Tell me a story"

    with psycopg.connect(stack.postgres.url) as conn:
        calls = conn.execute(
            "SELECT c.status, c.streamed, c.prompt_tokens > 0, c.completion_tokens > 0, c.provider_cost_usd > 0, "
            "c.model_alias, c.served_model FROM llm_calls c JOIN jobs j USING (job_id) "
            "WHERE j.team_id = 'acme-corp' ORDER BY c.created_at"
        ).fetchall()
    assert calls == [
        ("succeeded", False, True, True, True, "ChatAgent", "fake-gpt"),
        ("succeeded", False, True, True, True, "ChatAgent", "fake-gpt"),
        ("succeeded", True, True, True, True, "ChatAgent", "fake-gpt"),
    ]


def test_the_blocks_here_are_the_documents_own():
    from tests.client.test_seed_client_examples import STRUCTURED_OUTPUTS, TYPED_CLIENT

    document = (ROOT / "docs" / "integration-overview.md").read_text()
    for block in (QUICK_START_STEP_1, QUICK_START_STEP_2, PATTERN_A, PATTERN_B, TYPED_CLIENT, STRUCTURED_OUTPUTS):
        assert block.strip("\n") in document
