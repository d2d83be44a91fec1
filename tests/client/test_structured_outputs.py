"""Structured outputs against the real stack: the schema goes out as a json_schema
response_format, the reply comes back as a validated model, and replies that do not fit
(broken JSON, schema-violating JSON) raise a typed error carrying the raw content."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from saas_litellm_client import StructuredOutputError
from tests.client.conftest import marker


class Person(BaseModel):
    name: str
    age: int
    email: str


class Address(BaseModel):
    city: str
    postcode: str | None = None


class Contact(BaseModel):
    person: Person
    addresses: list[Address]
    vip: bool


def ask(word: str, directive: str = "") -> list[dict]:
    return [{"role": "user", "content": f"Extract person info {word} {directive}".strip()}]


async def test_a_valid_reply_returns_the_model_and_the_schema_went_out_strict(client, fake):
    job = await client.create_job("extract")
    word = marker()
    person = await client.structured_call(job_id=job.job_id, messages=ask(word), response_model=Person)
    assert person == Person(name="Ada Lovelace", age=36, email="user@example.com")
    [body] = fake.bodies(word)
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Person" and fmt["json_schema"]["strict"]
    schema = fmt["json_schema"]["schema"]
    assert schema["required"] == ["name", "age", "email"] and schema["additionalProperties"] is False


async def test_nested_models_round_trip(client):
    job = await client.create_job("extract")
    contact = await client.structured_call(job.job_id, ask(marker()), Contact, temperature=0)
    assert isinstance(contact.person, Person) and contact.addresses and isinstance(contact.addresses[0], Address)
    assert isinstance(contact.vip, bool)


async def test_invalid_json_raises_with_the_raw_content(client):
    job = await client.create_job("extract")
    with pytest.raises(StructuredOutputError) as failed:
        await client.structured_call(job.job_id, ask(marker(), "[fake json=invalid]"), Person)
    error = failed.value
    with pytest.raises(ValueError):
        json.loads(error.raw_content)
    assert error.raw_content.startswith("{") and error.attempts == 1
    assert error.validation_error.errors()[0]["type"] == "json_invalid"
    assert error.response.call_id == (await client.get_job(job.job_id)).calls[0].call_id


async def test_schema_violating_json_raises_with_the_raw_content_and_what_is_wrong(client):
    job = await client.create_job("extract")
    with pytest.raises(StructuredOutputError) as failed:
        await client.structured_call(job.job_id, ask(marker(), "[fake json=mismatch]"), Person)
    error = failed.value
    raw = json.loads(error.raw_content)  # valid JSON, wrong shape
    assert "name" not in raw
    problems = {(e["loc"][0], e["type"]) for e in error.validation_error.errors()}
    assert ("name", "missing") in problems and len(problems) >= 2


async def test_one_retry_feeds_the_validation_error_back_when_asked(client, fake):
    job = await client.create_job("extract")
    word = marker()
    person = await client.structured_call(job.job_id, ask(word, "[fake json=invalid]"), Person, validation_retries=1)
    assert person.name == "Ada Lovelace"
    first, second = fake.bodies(word)
    assert len(second["messages"]) == len(first["messages"]) + 2
    assistant, feedback = second["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["content"].startswith("{")
    assert feedback["role"] == "user" and "does not match the required JSON schema" in feedback["content"]
    assert len((await client.get_job(job.job_id)).calls) == 2


async def test_retries_are_off_by_default_and_response_format_is_the_clients(client, fake):
    job = await client.create_job("extract")
    word = marker()
    with pytest.raises(StructuredOutputError):
        await client.structured_call(job.job_id, ask(word, "[fake json=invalid]"), Person)
    assert len(fake.bodies(word)) == 1
    with pytest.raises(TypeError, match="response_format"):
        await client.structured_call(job.job_id, ask(word), Person, response_format={"type": "json_object"})
