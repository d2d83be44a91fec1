"""JSON schemas for structured outputs, derived from Pydantic models. Pure functions.

OpenAI's strict mode (`"strict": true`) accepts a subset of JSON Schema: every object
lists all its properties in `required` and sets `additionalProperties: false`; optional
fields are expressed as nullable types instead. `strict_json_schema` rewrites Pydantic's
schema that way. Where a model cannot be strict (a free-form `dict[str, X]` field, an
object without declared properties), the schema is still sent, with `strict: false`; the
reply is validated against the model either way.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pydantic import BaseModel


def strict_json_schema(model: type[BaseModel]) -> tuple[dict[str, Any], bool]:
    """The model's JSON schema made strict-mode compatible, and whether that fully succeeded."""
    schema = copy.deepcopy(model.model_json_schema(mode="validation"))
    strict = _strictify(schema, root=schema, inlining=frozenset())
    return schema, strict


def schema_name(model: type[BaseModel]) -> str:
    """A `json_schema.name` OpenAI accepts: letters, digits, `_` and `-`, at most 64 characters."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", model.__name__)[:64] or "response"


def response_format(model: type[BaseModel], *, strict: bool | None = None) -> dict[str, Any]:
    """The `response_format` asking for JSON that fits `model`.

    `strict=None` asks for strict mode when the schema allows it; `False` never does.
    """
    schema, strict_ok = strict_json_schema(model)
    return {
        "type": "json_schema",
        "json_schema": {
            "name": schema_name(model),
            "schema": schema,
            "strict": strict_ok if strict is None else (strict and strict_ok),
        },
    }


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any] | None:
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None


def _strictify(node: Any, *, root: dict[str, Any], inlining: frozenset[str]) -> bool:
    """Rewrites `node` in place; returns False where strict mode cannot be honoured.

    `inlining` holds the definitions being inlined above `node`, so that a recursive
    model is not inlined forever.
    """
    if not isinstance(node, dict):
        return True
    ok = True

    # A $ref with sibling keywords (Pydantic puts a field's description next to it):
    # strict mode wants a bare $ref, so inline the definition under the siblings.
    if "$ref" in node and len(node) > 1:
        ref = node["$ref"]
        target = _resolve(ref, root)
        if target is None or ref in inlining:
            return False
        node.pop("$ref")
        merged = {**copy.deepcopy(target), **node}
        node.clear()
        node.update(merged)
        inlining = inlining | {ref}

    # A single-branch allOf is the same schema: merge it.
    if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
        only = node.pop("allOf")[0]
        if isinstance(only, dict):
            for key, value in only.items():
                node.setdefault(key, value)
            return _strictify(node, root=root, inlining=inlining)

    if "oneOf" in node:  # strict mode knows anyOf only; the model still validates the reply exactly
        node["anyOf"] = node.pop("oneOf")
        node.pop("discriminator", None)

    if node.get("default", ...) is None:
        node.pop("default")

    for definitions in ("$defs", "definitions"):
        for definition in (node.get(definitions) or {}).values():
            ok &= _strictify(definition, root=root, inlining=inlining)

    if node.get("type") == "object" or "properties" in node:
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if isinstance(properties, dict) and properties and extra in (None, False):
            node["additionalProperties"] = False
            node["required"] = list(properties)
        else:
            ok = False
        for value in (properties or {}).values():
            ok &= _strictify(value, root=root, inlining=inlining)
        if isinstance(extra, dict):
            ok &= _strictify(extra, root=root, inlining=inlining)

    for key in ("items", "not"):
        if isinstance(node.get(key), dict):
            ok &= _strictify(node[key], root=root, inlining=inlining)
    for key in ("anyOf", "allOf", "prefixItems"):
        for branch in node.get(key) or ():
            ok &= _strictify(branch, root=root, inlining=inlining)
    return ok
