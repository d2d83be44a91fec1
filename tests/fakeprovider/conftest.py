"""Fixtures for the fakeprovider tests: a real server on port 0 and an httpx
client for it, plus a small JSON-schema checker (jsonschema is not a project
dependency) covering the subset the fake generates for."""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from fakeprovider.server import base_url, serve


@pytest_asyncio.fixture
async def fake_runner() -> AsyncIterator[web.AppRunner]:
    """The fake provider, listening on a free port for one test."""
    runner = await serve("127.0.0.1", 0)
    try:
        yield runner
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def fake_url(fake_runner: web.AppRunner) -> str:
    """``http://127.0.0.1:<port>`` of :func:`fake_runner`."""
    return base_url(fake_runner)


@pytest_asyncio.fixture
async def client(fake_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client pointed at the fake provider."""
    async with httpx.AsyncClient(
        base_url=fake_url,
        timeout=httpx.Timeout(5.0),
        headers={"Authorization": "Bearer sk-dummy"},
    ) as http:
        yield http


# ---------------------------------------------------------------------------
# Minimal JSON Schema checker
# ---------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TYPE_CHECKS: Mapping[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _format_ok(fmt: str, value: str) -> bool:
    try:
        if fmt == "email":
            return bool(_EMAIL_RE.match(value))
        if fmt == "date-time":
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.tzinfo is not None
        if fmt == "date":
            datetime.date.fromisoformat(value)
        elif fmt.startswith("uuid"):
            parsed_uuid = uuid.UUID(value)
            return fmt == "uuid" or parsed_uuid.version == int(fmt[4:])
        elif fmt in ("uri", "url"):
            return value.startswith(("http://", "https://"))
    except ValueError:
        return False
    return True


def schema_errors(value: Any, schema: Any, root: Any = None, where: str = "$") -> list[str]:
    """Violations of ``schema`` by ``value`` (empty list: valid)."""
    root = schema if root is None else root
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{where}: schema false"]
    errors: list[str] = []
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        errors += schema_errors(value, target, root, where)
    for sub in schema.get("allOf", []):
        errors += schema_errors(value, sub, root, where)
    if "anyOf" in schema and not any(not schema_errors(value, s, root, where) for s in schema["anyOf"]):
        errors.append(f"{where}: matches no anyOf branch")
    if "oneOf" in schema and sum(not schema_errors(value, s, root, where) for s in schema["oneOf"]) != 1:
        errors.append(f"{where}: does not match exactly one oneOf branch")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: != const {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in enum")
    declared = schema.get("type")
    if declared is not None:
        types = declared if isinstance(declared, list) else [declared]
        if not any(_TYPE_CHECKS[t](value) for t in types):
            return [*errors, f"{where}: {value!r} is not of type {declared}"]
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: missing required {key!r}")
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], root, f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(item, schema["additionalProperties"], root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected property {key!r}")
    if isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else schema.get("items", {})
            errors += schema_errors(item, sub, root, f"{where}[{index}]")
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: fewer than minItems")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: more than maxItems")
        if schema.get("uniqueItems") and len({repr(v) for v in value}) != len(value):
            errors.append(f"{where}: items not unique")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: shorter than minLength")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than maxLength")
        if "format" in schema and not _format_ok(schema["format"], value):
            errors.append(f"{where}: {value!r} is not a {schema['format']}")
    if _TYPE_CHECKS["number"](value):
        checks = {
            "minimum": lambda b: value >= b,
            "maximum": lambda b: value <= b,
            "exclusiveMinimum": lambda b: value > b,
            "exclusiveMaximum": lambda b: value < b,
            "multipleOf": lambda b: (value / b) == int(value / b),
        }
        for keyword, check in checks.items():
            if keyword in schema and not check(schema[keyword]):
                errors.append(f"{where}: {value!r} violates {keyword} {schema[keyword]!r}")
    return errors


@pytest.fixture
def check_schema() -> Callable[..., list[str]]:
    """The :func:`schema_errors` checker."""
    return schema_errors


# A hand-written copy of what Pydantic v2 emits for
#
#   class Role(str, Enum): admin = "admin"; user = "user"
#   class Address(BaseModel):
#       street: str; city: str; postcode: str | None = None
#       country: Literal["UK", "FR"] = "UK"
#   class Person(BaseModel):
#       name: str = Field(min_length=2, max_length=50); email: str
#       contact: EmailStr; website: HttpUrl; age: int = Field(ge=0, le=150)
#       height_m: float = Field(gt=0, lt=3); is_active: bool
#       created_at: datetime; birthday: date; id: UUID4; role: Role
#       tags: list[str] = Field(min_length=2); uniq: set[int] = Field(min_length=3)
#       address: Address; previous_addresses: list[Address] = []
#       manager: Optional["Person"] = None; nickname: Optional[str] = None
#       scores: dict[str, float]; kind: Literal["person"] = "person"
#       pair: tuple[int, str]; something: Union[int, str]
#       described: Address = Field(description="with description")
#       even: int = Field(multiple_of=2, gt=41)
#
# (pydantic is not installed in the test environment).
PERSON_SCHEMA: dict[str, Any] = {
    "$defs": {
        "Address": {
            "properties": {
                "street": {"title": "Street", "type": "string"},
                "city": {"title": "City", "type": "string"},
                "postcode": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Postcode"},
                "country": {"default": "UK", "enum": ["UK", "FR"], "title": "Country", "type": "string"},
            },
            "required": ["street", "city"],
            "title": "Address",
            "type": "object",
        },
        "Person": {
            "properties": {
                "name": {"maxLength": 50, "minLength": 2, "title": "Name", "type": "string"},
                "email": {"title": "Email", "type": "string"},
                "contact": {"format": "email", "title": "Contact", "type": "string"},
                "website": {"format": "uri", "maxLength": 2083, "minLength": 1, "title": "Website", "type": "string"},
                "age": {"maximum": 150, "minimum": 0, "title": "Age", "type": "integer"},
                "height_m": {"exclusiveMaximum": 3, "exclusiveMinimum": 0, "title": "Height M", "type": "number"},
                "is_active": {"title": "Is Active", "type": "boolean"},
                "created_at": {"format": "date-time", "title": "Created At", "type": "string"},
                "birthday": {"format": "date", "title": "Birthday", "type": "string"},
                "id": {"format": "uuid4", "title": "Id", "type": "string"},
                "role": {"$ref": "#/$defs/Role"},
                "tags": {"items": {"type": "string"}, "minItems": 2, "title": "Tags", "type": "array"},
                "uniq": {
                    "items": {"type": "integer"},
                    "minItems": 3,
                    "title": "Uniq",
                    "type": "array",
                    "uniqueItems": True,
                },
                "address": {"$ref": "#/$defs/Address"},
                "previous_addresses": {
                    "default": [],
                    "items": {"$ref": "#/$defs/Address"},
                    "title": "Previous Addresses",
                    "type": "array",
                },
                "manager": {"anyOf": [{"$ref": "#/$defs/Person"}, {"type": "null"}], "default": None},
                "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Nickname"},
                "scores": {"additionalProperties": {"type": "number"}, "title": "Scores", "type": "object"},
                "kind": {"const": "person", "default": "person", "title": "Kind", "type": "string"},
                "pair": {
                    "maxItems": 2,
                    "minItems": 2,
                    "prefixItems": [{"type": "integer"}, {"type": "string"}],
                    "title": "Pair",
                    "type": "array",
                },
                "something": {"anyOf": [{"type": "integer"}, {"type": "string"}], "title": "Something"},
                "described": {"$ref": "#/$defs/Address", "description": "with description"},
                "even": {"exclusiveMinimum": 41, "multipleOf": 2, "title": "Even", "type": "integer"},
            },
            "required": (
                "name email contact website age height_m is_active created_at birthday id role tags uniq "
                "address scores pair something described even"
            ).split(),
            "title": "Person",
            "type": "object",
        },
        "Role": {"enum": ["admin", "user"], "title": "Role", "type": "string"},
    },
    "$ref": "#/$defs/Person",
}


@pytest.fixture
def person_schema() -> dict[str, Any]:
    """A Pydantic-v2-style schema with $defs, $ref, anyOf, enum and formats."""
    return PERSON_SCHEMA
