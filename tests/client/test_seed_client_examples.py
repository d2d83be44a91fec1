"""The seed document's "Client Libraries" examples (docs/integration-overview.md)
run against the real stack. The code blocks are copied verbatim; the only changes are the
ones a reader makes: the real base URL, team and virtual key, and the structured-output
snippet placed inside the client block (it uses `client` and a `job_id`)."""

from __future__ import annotations

import contextlib
import io
import textwrap

from tests.e2e.conftest import RestTeam

TYPED_CLIENT = """
from saas_litellm_client import SaasLiteLLMClient

async with SaasLiteLLMClient(
    base_url="http://localhost:8003",
    team_id="acme-corp",
    virtual_key="sk-your-key"
) as client:
    # Create job
    job = await client.create_job("document_analysis")

    # Make LLM call
    response = await client.llm_call(
        job_id=job.job_id,
        messages=[{"role": "user", "content": "Analyze..."}]
    )

    # Complete job
    result = await client.complete_job(job.job_id, "completed")
    print(f"Credits remaining: {result.credits_remaining}")
"""

STRUCTURED_OUTPUTS = """
from pydantic import BaseModel

class Person(BaseModel):
    name: str
    age: int
    email: str

# Get structured response
person = await client.structured_call(
    job_id=job_id,
    messages=[{"role": "user", "content": "Extract person info..."}],
    response_model=Person
)

print(f"Name: {person.name}, Age: {person.age}")
"""


async def run_async_block(source: str) -> tuple[str, dict]:
    """Runs top-level-await code as the body of a coroutine; returns its output and locals."""
    scope: dict = {}
    exec(f"async def _block():\n{textwrap.indent(source, '    ')}\n    return locals()", scope)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        names = await scope["_block"]()
    return output.getvalue(), names


def as_reader_would(source: str, stack, team: RestTeam) -> str:
    return (
        source.replace("http://localhost:8003", stack.api_url)
        .replace("acme-corp", team.team_id)
        .replace("sk-your-key", team.key)
    )


async def test_the_typed_client_example_runs_as_written(stack, team):
    output, names = await run_async_block(as_reader_would(TYPED_CLIENT, stack, team))
    assert output == "Credits remaining: 99\n"
    assert names["response"].response.content.startswith("Hello from fake!")
    assert names["result"].status == "COMPLETED" and names["result"].costs.total_calls == 1


async def test_the_structured_outputs_example_runs_as_written(stack, team):
    client_block, _ = TYPED_CLIENT.split("    # Make LLM call")
    source = (
        as_reader_would(client_block, stack, team)
        + "    job_id = job.job_id\n"
        + textwrap.indent(STRUCTURED_OUTPUTS, "    ")
        + '    await client.complete_job(job_id, "completed")\n'
    )
    output, names = await run_async_block(source)
    assert output == "Name: Ada Lovelace, Age: 36\n"
    assert names["person"].email == "user@example.com"
