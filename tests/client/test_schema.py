"""Unit: JSON schemas for structured outputs, derived from Pydantic models (pure)."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from saas_litellm_client import response_format, strict_json_schema
from saas_litellm_client.schema import schema_name


class Person(BaseModel):
    name: str
    age: int
    email: str


class Address(BaseModel):
    """Where someone lives."""

    city: str
    postcode: str | None = None


class Employee(BaseModel):
    person: Person
    home: Address = Field(description="home address")
    previous: list[Address] = []
    level: Literal["junior", "senior"] = "junior"
    manager: Employee | None = None


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Pet(BaseModel):
    animal: Cat | Dog = Field(discriminator="kind")


class Tagged(BaseModel):
    tags: dict[str, str]


class Node(BaseModel):
    value: int
    child: Node = Field(description="the next node")


def objects(schema: dict) -> list[dict]:
    """Every object schema in `schema`, definitions included."""
    found, stack = [], [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "object" or "properties" in node:
                found.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_the_seed_person_is_strict_with_every_property_required():
    fmt = response_format(Person)
    assert fmt["type"] == "json_schema"
    spec = fmt["json_schema"]
    assert spec["name"] == "Person" and spec["strict"] is True
    schema = spec["schema"]
    assert schema["required"] == ["name", "age", "email"]
    assert schema["additionalProperties"] is False
    assert {k: v["type"] for k, v in schema["properties"].items()} == {
        "name": "string",
        "age": "integer",
        "email": "string",
    }
    json.dumps(fmt)  # sent as JSON as it is


def test_nested_models_are_strict_everywhere_and_optional_fields_are_nullable_but_required():
    schema, strict = strict_json_schema(Employee)
    assert strict is True
    for node in objects(schema):
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])
    address = schema["$defs"]["Address"]
    assert address["properties"]["postcode"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert "default" not in address["properties"]["postcode"]  # `default: null` is not strict-mode JSON schema


def test_a_ref_with_siblings_is_inlined_so_the_description_survives():
    schema, _ = strict_json_schema(Employee)
    home = schema["properties"]["home"]
    assert "$ref" not in home
    assert home["description"] == "home address" and home["properties"]["city"] == {"title": "City", "type": "string"}
    assert home["additionalProperties"] is False


def test_discriminated_unions_become_any_of():
    schema, strict = strict_json_schema(Pet)
    animal = schema["properties"]["animal"]
    assert strict is True and "oneOf" not in animal and "discriminator" not in animal
    assert [branch["$ref"] for branch in animal["anyOf"]] == ["#/$defs/Cat", "#/$defs/Dog"]


def test_free_form_dicts_cannot_be_strict_but_the_schema_is_still_sent():
    fmt = response_format(Tagged)
    assert fmt["json_schema"]["strict"] is False
    assert fmt["json_schema"]["schema"]["properties"]["tags"]["additionalProperties"] == {"type": "string"}


def test_a_recursive_model_with_a_described_self_reference_terminates_and_is_not_strict():
    schema, strict = strict_json_schema(Node)
    assert strict is False
    assert schema["type"] == "object" and schema["required"] == ["value", "child"]  # the root $ref is inlined
    assert schema["properties"]["child"]["$ref"] == "#/$defs/Node"  # the recursion is left as a reference


@pytest.mark.parametrize(("strict", "expected"), [(None, True), (True, True), (False, False)])
def test_strict_can_be_turned_off_but_not_forced(strict, expected):
    assert response_format(Person, strict=strict)["json_schema"]["strict"] is expected
    assert response_format(Tagged, strict=True)["json_schema"]["strict"] is False


def test_the_model_is_not_changed_by_the_derivation():
    before = Employee.model_json_schema()
    strict_json_schema(Employee)
    assert Employee.model_json_schema() == before


def test_schema_names_fit_openais_pattern():
    generic = type("Page[Person]", (BaseModel,), {"__annotations__": {"items": list[Person]}})
    assert schema_name(generic) == "Page_Person_"
    assert schema_name(Person) == "Person"
