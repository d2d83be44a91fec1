"""Structured outputs: get a validated Pydantic object instead of text.

The model's JSON schema is sent as the call's `response_format`; the reply is validated
against the model. Environment: SAAS_LITELLM_API_URL (default http://localhost:8003),
SAAS_LITELLM_VIRTUAL_KEY (required), SAAS_LITELLM_TEAM_ID and SAAS_LITELLM_MODEL (optional).

    python examples/structured_outputs.py
"""

import asyncio
import os

from pydantic import BaseModel

from saas_litellm_client import SaasLiteLLMClient, StructuredOutputError


class Person(BaseModel):
    name: str
    age: int
    email: str


async def main() -> None:
    async with SaasLiteLLMClient(
        base_url=os.environ.get("SAAS_LITELLM_API_URL", "http://localhost:8003"),
        team_id=os.environ.get("SAAS_LITELLM_TEAM_ID"),
        virtual_key=os.environ["SAAS_LITELLM_VIRTUAL_KEY"],
    ) as client:
        async with client.job("contact_extraction") as job:
            try:
                # Get structured response
                person = await client.structured_call(
                    job_id=job.job_id,
                    messages=[
                        {
                            "role": "user",
                            "content": "Extract person info: Ada Lovelace, 36, reachable at ada@example.com",
                        }
                    ],
                    response_model=Person,
                    model=os.environ.get("SAAS_LITELLM_MODEL"),
                    validation_retries=1,  # on a reply that does not fit, ask once more
                )
            except StructuredOutputError as error:
                print(f"The model's reply did not fit Person: {error.raw_content!r}")
                raise
            print(f"Name: {person.name}, Age: {person.age}, Email: {person.email}")
        print(f"Credits remaining: {job.result.credits_remaining}")


if __name__ == "__main__":
    asyncio.run(main())
