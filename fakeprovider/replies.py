"""Pure, deterministic generation of fake replies.

Given a parsed request body and its directive, :func:`build_reply` decides
the reply content (default text, generated words, echo, JSON from a schema)
or a tool call, applies ``stop``/``max_tokens`` and counts tokens.  The
helpers for splitting a reply into stream chunks live here as well.  Nothing
in this module does I/O; the only state is a bounded memo of generated text.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .directives import Directive, InvalidRequestError, message_text

__all__ = [
    "DEFAULT_STREAM_CHUNKS",
    "Reply",
    "ToolCall",
    "apply_stop",
    "build_reply",
    "count_words",
    "default_reply_text",
    "generated_text",
    "invalid_json_text",
    "logprobs_for",
    "mismatching_value",
    "prompt_tokens",
    "requested_logprobs",
    "split_chunks",
    "truncate_words",
    "value_for_schema",
]

# Streaming splits content into min(tokens, DEFAULT_STREAM_CHUNKS) chunks
# unless the directive sets ``chunks``.
DEFAULT_STREAM_CHUNKS = 8

DEFAULT_REPLY_PREFIX = "Hello from fake! You said:"
DEFAULT_REPLY_WORDS = 6

# Words for ``tokens=N`` replies; 32 entries so an index is 5 bits.
VOCABULARY: tuple[str, ...] = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
    "yankee", "zulu", "amber", "cobalt", "ember", "lumen", "quartz", "zephyr",
)  # fmt: skip

_WORD_RE = re.compile(r"\S+")
# A token with the whitespace that precedes it, so pieces concatenate back.
_PIECE_RE = re.compile(r"\s*\S+")


# ---------------------------------------------------------------------------
# Token rule
# ---------------------------------------------------------------------------


def count_words(text: str) -> int:
    """Tokens in ``text`` under the fake's rule: whitespace-separated words."""
    return len(text.split())


def prompt_tokens(messages: Sequence[Any]) -> int:
    """Words across all messages' text content + 1 per message; at least 1."""
    total = 0
    for message in messages:
        total += 1
        if isinstance(message, dict):
            total += count_words(message_text(message.get("content")))
    return max(total, 1)


def truncate_words(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` right after its ``limit``-th word; report whether it was cut.

    The kept prefix is byte-for-byte the original text (whitespace inside is
    preserved, whitespace after the last kept word is dropped).
    """
    if limit <= 0:
        return "", bool(text.strip())
    for index, match in enumerate(_WORD_RE.finditer(text), start=1):
        if index == limit:
            end = match.end()
            return text[:end], bool(text[end:].strip())
    return text, False


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest occurrence of any stop sequence."""
    cut = -1
    for sequence in stop:
        if sequence:
            position = text.find(sequence)
            if position >= 0 and (cut < 0 or position < cut):
                cut = position
    if cut < 0:
        return text, False
    return text[:cut], True


# ---------------------------------------------------------------------------
# Text content
# ---------------------------------------------------------------------------


def default_reply_text(user_text: str) -> str:
    """``Hello from fake! You said: <first 6 words of the user text>``."""
    words = user_text.split()[:DEFAULT_REPLY_WORDS]
    if not words:
        return DEFAULT_REPLY_PREFIX
    return f"{DEFAULT_REPLY_PREFIX} {' '.join(words)}"


def generated_text(count: int, seed_text: str) -> str:
    """``count`` words from VOCABULARY, single-spaced, seeded by ``seed_text``.

    Uses zlib.crc32 (stable across processes, unlike ``hash()``) and a small
    linear congruential generator, so the same text always yields the same
    words and the streamed and non-streamed replies agree.  Short replies
    are memoised because benchmarks repeat the same prompt.
    """
    if count <= _CACHED_MAX_WORDS:
        return _generated_text_cached(count, seed_text)
    return _generate_words(count, seed_text)


def _generate_words(count: int, seed_text: str) -> str:
    """Uncached worker of :func:`generated_text`."""
    state = zlib.crc32(seed_text.encode("utf-8", "surrogatepass"))
    vocabulary = VOCABULARY
    words = []
    append = words.append
    for _ in range(count):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        append(vocabulary[(state >> 16) & 31])
    return " ".join(words)


_CACHED_MAX_WORDS = 2048  # bounds the cache to a few MB
_generated_text_cached = functools.lru_cache(maxsize=512)(_generate_words)


def split_chunks(text: str, count: int) -> list[str]:
    """Split ``text`` into ``min(count, words)`` pieces that concatenate to it.

    Each word travels with the whitespace before it; pieces hold as even a
    number of words as possible (earlier pieces get the extra ones).  Empty
    text yields no pieces; whitespace-only text yields one.
    """
    if not text:
        return []
    pieces = _PIECE_RE.findall(text)
    if not pieces:
        return [text]
    consumed = sum(len(piece) for piece in pieces)
    if consumed < len(text):  # trailing whitespace rides on the last word
        pieces[-1] += text[consumed:]
    total = len(pieces)
    count = max(1, min(count, total))
    if count == total:
        return pieces
    base, extra = divmod(total, count)
    chunks = []
    start = 0
    for index in range(count):
        size = base + (1 if index < extra else 0)
        chunks.append("".join(pieces[start : start + size]))
        start += size
    return chunks


# ---------------------------------------------------------------------------
# JSON from a JSON schema
# ---------------------------------------------------------------------------

_MAX_DEPTH = 8  # beyond this, generate minimal values (recursive models)
_HARD_DEPTH = 16  # beyond this, give up with null

_FORMAT_VALUES: Mapping[str, Any] = {
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "date-time": "2024-01-01T12:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "duration": "P1D",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "iri-reference": "https://example.com/",
    "multi-host-uri": "https://example.com/",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
    # Pydantic's UUID1..UUID8 types emit "uuid<version>" and check the version.
    "uuid1": "c232ab00-9414-11ec-b3c8-9f6bdeced846",
    "uuid3": "6fa459ea-ee8a-3ca4-894e-db77e160355e",
    "uuid4": "123e4567-e89b-42d3-a456-426614174000",
    "uuid5": "886313e1-3b8a-5372-9b90-0c9aee199e5d",
    "uuid6": "1ef21d2f-1207-6660-8c4f-419efbd44d48",
    "uuid7": "01906f3c-8d5f-7b6e-9c1a-3f5e2d4b6a7c",
    "uuid8": "0e7b1e2a-3c4d-8e5f-9a6b-7c8d9e0f1a2b",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "ipvanyaddress": "192.0.2.1",
    "ipv4interface": "192.0.2.1/24",
    "ipv6interface": "2001:db8::1/64",
    "ipvanyinterface": "192.0.2.1/24",
    "ipv4network": "192.0.2.0/24",
    "ipv6network": "2001:db8::/32",
    "ipvanynetwork": "192.0.2.0/24",
    "password": "secret",
    "binary": "example",
    "base64": "ZXhhbXBsZQ==",
    "path": "/tmp/example.txt",
    "file-path": "/tmp/example.txt",
    "directory-path": "/tmp",
    "color": "#1e90ff",
}

# (words that must all appear in the property name, value); first match wins.
_STRING_HINTS: tuple[tuple[frozenset[str], str], ...] = tuple(
    (frozenset(words.split()), value)
    for words, value in (
        ("email", "user@example.com"),
        ("mail", "user@example.com"),
        ("first name", "Ada"),
        ("firstname", "Ada"),
        ("given name", "Ada"),
        ("last name", "Lovelace"),
        ("lastname", "Lovelace"),
        ("family name", "Lovelace"),
        ("surname", "Lovelace"),
        ("username", "ada"),
        ("user name", "ada"),
        ("login", "ada"),
        ("handle", "ada"),
        ("file name", "example.txt"),
        ("filename", "example.txt"),
        ("name", "Ada Lovelace"),
        ("author", "Ada Lovelace"),
        ("phone", "+1-555-0100"),
        ("mobile", "+1-555-0100"),
        ("url", "https://example.com/"),
        ("uri", "https://example.com/"),
        ("website", "https://example.com/"),
        ("homepage", "https://example.com/"),
        ("link", "https://example.com/"),
        ("city", "London"),
        ("country", "United Kingdom"),
        ("street", "12 St James's Square"),
        ("address", "12 St James's Square, London"),
        ("zip", "SW1Y 4JH"),
        ("postcode", "SW1Y 4JH"),
        ("postal", "SW1Y 4JH"),
        ("timestamp", "2024-01-01T12:00:00Z"),
        ("at", "2024-01-01T12:00:00Z"),
        ("datetime", "2024-01-01T12:00:00Z"),
        ("date", "2024-01-01"),
        ("birthday", "1815-12-10"),
        ("title", "Notes on the Analytical Engine"),
        ("language", "en"),
        ("lang", "en"),
        ("locale", "en-GB"),
        ("currency", "GBP"),
        ("color", "blue"),
        ("colour", "blue"),
        ("status", "active"),
        ("role", "user"),
        ("sentiment", "positive"),
        ("category", "general"),
        ("id", "id-0001"),
        ("uuid", "123e4567-e89b-42d3-a456-426614174000"),
        ("reason", "The fake provider decided so."),
        ("reasoning", "The fake provider decided so."),
        ("explanation", "The fake provider decided so."),
        ("description", "A deterministic value from the fake provider."),
        ("summary", "A deterministic value from the fake provider."),
        ("text", "A deterministic value from the fake provider."),
        ("content", "A deterministic value from the fake provider."),
        ("message", "A deterministic value from the fake provider."),
        ("answer", "Forty-two."),
    )
)

_INTEGER_HINTS: tuple[tuple[frozenset[str], int], ...] = tuple(
    (frozenset(words.split()), value)
    for words, value in (
        ("age", 36),
        ("year", 1843),
        ("page", 1),
        ("port", 8080),
        ("count", 3),
        ("quantity", 3),
        ("qty", 3),
        ("number", 3),
        ("num", 3),
        ("total", 3),
        ("rating", 5),
        ("stars", 5),
        ("score", 7),
        ("priority", 1),
        ("id", 1),
        ("seconds", 60),
        ("duration", 60),
        ("limit", 10),
        ("size", 10),
    )
)

_NUMBER_HINTS: tuple[tuple[frozenset[str], float], ...] = tuple(
    (frozenset(words.split()), value)
    for words, value in (
        ("latitude", 51.5074),
        ("lat", 51.5074),
        ("longitude", -0.1278),
        ("lng", -0.1278),
        ("lon", -0.1278),
        ("price", 9.99),
        ("amount", 9.99),
        ("cost", 9.99),
        ("total", 9.99),
        ("confidence", 0.87),
        ("probability", 0.87),
        ("score", 0.87),
        ("temperature", 21.5),
        ("rating", 4.5),
        ("weight", 70.5),
        ("height", 1.7),
        ("percent", 50.0),
        ("percentage", 50.0),
        ("age", 36.0),
    )
)

_CAMEL_RE = re.compile(r"([a-z0-9])([A-Z])")
_NAME_WORD_RE = re.compile(r"[a-z]+|[0-9]+")


@functools.lru_cache(maxsize=2048)
def _name_words(name: str) -> frozenset[str]:
    """``firstName`` / ``first_name`` / ``first-name`` -> {"first", "name"}."""
    return frozenset(_NAME_WORD_RE.findall(_CAMEL_RE.sub(r"\1_\2", name).lower()))


def _hint(name: str, hints: tuple[tuple[frozenset[str], Any], ...]) -> Any:
    """The first hint whose words all occur in ``name``, else None."""
    if not name:
        return None
    words = _name_words(name)
    for needed, value in hints:
        if needed <= words:
            return value
    return None


def _resolve_ref(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local JSON pointer such as ``#/$defs/Address``."""
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return {}
        node = node[part]
    return node if isinstance(node, Mapping) else {}


def _deref(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Resolve ``$ref`` (keeping sibling keywords) and merge ``allOf``."""
    for _ in range(_HARD_DEPTH):
        if not isinstance(schema, Mapping):
            return {}
        if "$ref" in schema:
            target = _resolve_ref(schema["$ref"], root)
            siblings = {key: value for key, value in schema.items() if key != "$ref"}
            schema = {**target, **siblings}
            continue
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and all_of:
            merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
            for part in all_of:
                part = _deref(part, root)
                for key, value in part.items():
                    if key in ("properties",) and isinstance(merged.get(key), Mapping):
                        merged[key] = {**merged[key], **value}
                    elif key == "required" and isinstance(merged.get(key), list):
                        merged[key] = merged[key] + [r for r in value if r not in merged[key]]
                    else:
                        merged.setdefault(key, value)
            schema = merged
            continue
        return schema
    return {}


def _branches(schema: Mapping[str, Any]) -> list[Any] | None:
    """The ``anyOf``/``oneOf`` alternatives of ``schema``, if any."""
    for key in ("anyOf", "oneOf"):
        value = schema.get(key)
        if isinstance(value, list) and value:
            return value
    return None


def _is_null_schema(schema: Any, root: Mapping[str, Any]) -> bool:
    """True for ``{"type": "null"}`` (after resolving refs)."""
    return _deref(schema, root).get("type") == "null"


def _schema_type(schema: Mapping[str, Any]) -> str | None:
    """The JSON type ``schema`` describes, inferred when ``type`` is absent."""
    declared = schema.get("type")
    if isinstance(declared, list):
        non_null = [t for t in declared if t != "null"]
        return non_null[0] if non_null else ("null" if declared else None)
    if isinstance(declared, str):
        return declared
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if "format" in schema or "minLength" in schema or "maxLength" in schema or "pattern" in schema:
        return "string"
    if "minimum" in schema or "maximum" in schema:
        return "number"
    return None


@dataclass(frozen=True, slots=True)
class _Path:
    """Where the generator is in the schema: refs being expanded and depth.

    ``minimal`` is set once a ``$ref`` recurses into itself or the depth
    passes _MAX_DEPTH; from then on optional branches prefer null, arrays
    get only ``minItems`` items and objects only required properties.
    """

    refs: frozenset[str] = frozenset()
    depth: int = 0
    minimal: bool = False

    def through(self, ref: str) -> _Path:
        """The path after following ``ref``."""
        return _Path(self.refs | {ref}, self.depth, self.minimal or ref in self.refs)

    def child(self) -> _Path:
        """The path one level deeper."""
        depth = self.depth + 1
        return _Path(self.refs, depth, self.minimal or depth >= _MAX_DEPTH)

    def cyclic(self, schema: Any) -> bool:
        """True if ``schema`` is a ``$ref`` to something being expanded."""
        return isinstance(schema, Mapping) and schema.get("$ref") in self.refs


_TOP = _Path()


def value_for_schema(schema: Any, root: Mapping[str, Any] | None = None) -> Any:
    """A deterministic JSON value that validates against ``schema``.

    Supports what Pydantic v2's ``model_json_schema()`` emits for ordinary
    models (see the package docstring); ``pattern`` and ``not`` are ignored.
    ``root`` is the document ``$ref`` pointers resolve against (defaults to
    ``schema`` itself).
    """
    if not isinstance(schema, Mapping):
        return "example"
    return _generate(schema, schema if root is None else root, "", 0, _TOP)


def _generate(schema: Any, root: Mapping[str, Any], name: str, index: int, path: _Path) -> Any:
    """Recursive worker of :func:`value_for_schema`.

    ``name`` is the property name (for plausible values), ``index`` the
    position in an array (items are varied so ``uniqueItems`` holds) and
    ``path`` guards against recursive models.
    """
    if path.depth > _HARD_DEPTH:
        return None
    if isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        path = path.through(schema["$ref"])
    schema = _deref(schema, root)
    if "const" in schema:
        return schema["const"]
    default = schema.get("default")
    if default is not None and index == 0:
        return default
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        non_null = [value for value in enum if value is not None] or enum
        return non_null[index % len(non_null)]
    branches = _branches(schema)
    if branches is not None:
        return _generate(_pick_branch(branches, root, path), root, name, index, path.child())

    kind = _schema_type(schema)
    if kind == "object":
        return _object(schema, root, path)
    if kind == "array":
        return _array(schema, root, name, path)
    if kind == "string":
        return _string(schema, name, index)
    if kind == "integer":
        return _integer(schema, name, index)
    if kind == "number":
        return _number(schema, name, index)
    if kind == "boolean":
        return index % 2 == 0
    if kind == "null":
        return None
    return _string(schema, name, index)  # untyped ("Any"): any value is valid


def _pick_branch(branches: list[Any], root: Mapping[str, Any], path: _Path) -> Any:
    """The first non-null, non-recursive alternative.

    Null is preferred when the path is minimal or the only non-null
    alternatives recurse (``manager: Person | None`` inside Person -> null).
    """
    null = next((branch for branch in branches if _is_null_schema(branch, root)), None)
    if path.minimal and null is not None:
        return null
    candidates = [branch for branch in branches if not _is_null_schema(branch, root)]
    for branch in candidates:
        if not path.cyclic(branch):
            return branch
    if null is not None:
        return null
    return candidates[0] if candidates else branches[0]


def _object(schema: Mapping[str, Any], root: Mapping[str, Any], path: _Path) -> dict[str, Any]:
    """All properties (only required ones on a minimal path), in schema order."""
    properties = schema.get("properties")
    result: dict[str, Any] = {}
    child = path.child()
    if isinstance(properties, Mapping) and properties:
        required = schema.get("required") or ()
        for key, subschema in properties.items():
            if path.minimal and key not in required:
                continue
            result[key] = _generate(subschema, root, key, 0, child)
        return result
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping) and not path.minimal and not path.cyclic(extra):
        result["key"] = _generate(extra, root, "key", 0, child)
    return result


def _array(schema: Mapping[str, Any], root: Mapping[str, Any], name: str, path: _Path) -> list[Any]:
    """``max(minItems, 1)`` items (all ``prefixItems``), capped by ``maxItems``.

    Only ``minItems`` items on a minimal path or when the items recurse
    (``children: list[Node]`` inside Node -> []).
    """
    items = schema.get("items", {})
    min_items = schema.get("minItems")
    min_items = min_items if isinstance(min_items, int) else 0
    count = min_items if path.minimal or path.cyclic(items) else max(min_items, 1)
    prefix = schema.get("prefixItems")
    prefix = prefix if isinstance(prefix, list) else []
    count = max(count, len(prefix))
    max_items = schema.get("maxItems")
    if isinstance(max_items, int):
        count = min(count, max_items)
    child = path.child()
    result = []
    for position in range(count):
        if position < len(prefix):
            subschema = prefix[position]
        elif isinstance(items, Mapping):
            subschema = items
        else:  # "items": false closes a tuple
            break
        result.append(_generate(subschema, root, name, position, child))
    return result


def _string(schema: Mapping[str, Any], name: str, index: int) -> str:
    """A format value, a name-based hint, or ``example <name>``; length-clamped."""
    fmt = schema.get("format")
    value = _FORMAT_VALUES.get(fmt) if isinstance(fmt, str) else None
    if value is None:
        value = _hint(name, _STRING_HINTS)
        if value is None:
            value = f"example {name}" if name else "example"
    if index:
        if value == "user@example.com":
            value = f"user{index + 1}@example.com"
        elif fmt is None:
            value = f"{value} {index + 1}"
    min_length = schema.get("minLength")
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and len(value) > max_length:
        value = value[:max_length]
    if isinstance(min_length, int) and len(value) < min_length:
        value = value + "x" * (min_length - len(value))
    return value


def _integer(schema: Mapping[str, Any], name: str, index: int) -> int:
    """A name-based hint or 42 (+ index), moved into the allowed range."""
    value = _hint(name, _INTEGER_HINTS)
    value = (42 if value is None else value) + index
    low, high = _bounds(schema)
    if low is not None:
        low = math.floor(low) + 1 if _exclusive(schema, "exclusiveMinimum") == low else math.ceil(low)
    if high is not None:
        high = math.ceil(high) - 1 if _exclusive(schema, "exclusiveMaximum") == high else math.floor(high)
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0 and value % step:
        value = (value // step + 1) * step
        if high is not None and value > high:
            value -= step
    return int(value)


def _number(schema: Mapping[str, Any], name: str, index: int) -> float:
    """A name-based hint or 3.14 (+ index), moved into the allowed range."""
    value = _hint(name, _NUMBER_HINTS)
    value = (3.14 if value is None else float(value)) + index
    low, high = _bounds(schema)
    low_open = low is not None and _exclusive(schema, "exclusiveMinimum") == low
    high_open = high is not None and _exclusive(schema, "exclusiveMaximum") == high
    too_low = low is not None and (value < low or (low_open and value == low))
    too_high = high is not None and (value > high or (high_open and value == high))
    if too_low or too_high:
        if low is not None and high is not None:
            value = (low + high) / 2
        elif low is not None:
            value = low + (1 if low_open else 0)
        else:
            value = high - (1 if high_open else 0)
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        value = math.ceil(value / step) * step
        if high is not None and value > high:
            value -= step
    return float(value)


def _exclusive(schema: Mapping[str, Any], key: str) -> float | None:
    """A numeric ``exclusiveMinimum``/``exclusiveMaximum`` (draft 6+) or None."""
    value = schema.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """The tightest lower/upper bounds from minimum/maximum and their exclusive forms."""

    def pick(*values: Any, lower: bool) -> float | None:
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if not numbers:
            return None
        return max(numbers) if lower else min(numbers)

    low = pick(schema.get("minimum"), schema.get("exclusiveMinimum"), lower=True)
    high = pick(schema.get("maximum"), schema.get("exclusiveMaximum"), lower=False)
    return low, high


# Values of one JSON type each, tried in order to break a schema on purpose.
_WRONG_VALUES: tuple[tuple[str, Any], ...] = (
    ("string", "not the expected type"),
    ("integer", 12345),
    ("boolean", True),
    ("object", {"unexpected": True}),
    ("array", ["unexpected"]),
    ("null", None),
)


def _allowed_types(schema: Any, root: Mapping[str, Any], depth: int = 0) -> set[str] | None:
    """JSON types ``schema`` accepts, or None if it accepts anything."""
    schema = _deref(schema, root)
    if depth > _HARD_DEPTH:
        return None
    if "const" in schema or "enum" in schema:
        values = [schema["const"]] if "const" in schema else list(schema.get("enum") or [])
        return {_json_type(value) for value in values}
    branches = _branches(schema)
    if branches is not None:
        allowed: set[str] = set()
        for branch in branches:
            types = _allowed_types(branch, root, depth + 1)
            if types is None:
                return None
            allowed |= types
        return allowed
    declared = schema.get("type")
    if isinstance(declared, list):
        return set(declared)
    kind = _schema_type(schema)
    return None if kind is None else {kind}


def _json_type(value: Any) -> str:
    """The JSON type name of a Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _wrong_value(schema: Any, root: Mapping[str, Any]) -> tuple[bool, Any]:
    """A value of a type ``schema`` rejects; ``(False, None)`` if it accepts all."""
    allowed = _allowed_types(schema, root)
    if allowed is None:
        return False, None
    for kind, value in _WRONG_VALUES:
        if kind in allowed or (kind == "integer" and "number" in allowed):
            continue
        return True, value
    return False, None


def mismatching_value(schema: Any, root: Mapping[str, Any] | None = None) -> Any:
    """Valid JSON that does NOT validate against ``schema``.

    For an object schema: the first required property is removed and every
    other property gets a value of a wrong type.  Otherwise (or if that
    changed nothing) a value of a wrong type for the whole document.
    """
    root = schema if root is None else root
    resolved = _deref(schema, root)
    if _schema_type(resolved) == "object" and isinstance(resolved.get("properties"), Mapping):
        valid = _object(resolved, root, _TOP)
        required = [key for key in resolved.get("required") or () if key in valid]
        properties = resolved["properties"]
        broken: dict[str, Any] = {}
        changed = bool(required)
        for key, value in valid.items():
            if required and key == required[0]:
                continue
            ok, wrong = _wrong_value(properties[key], root)
            broken[key] = wrong if ok else value
            changed = changed or ok
        if changed:
            return broken
    ok, wrong = _wrong_value(resolved, root)
    return wrong if ok else {"unexpected": ["mismatch"]}


def invalid_json_text(valid_text: str) -> str:
    """Text that is NOT valid JSON: the first half of a container document
    (e.g. ``{"name": "Ada", "age": ``), or an unterminated object otherwise."""
    if valid_text[:1] in ("{", "[") and len(valid_text) > 1:
        return valid_text[: max(1, len(valid_text) // 2)]
    return '{"value": ' + valid_text


# ---------------------------------------------------------------------------
# Whole replies
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function tool call the fake model makes."""

    id: str
    name: str
    arguments: str  # JSON text, as on the wire

    def to_openai(self) -> dict[str, Any]:
        """The ``message.tool_calls[i]`` object."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake model answers: content XOR a tool call, plus usage."""

    content: str | None
    tool_call: ToolCall | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    # ``top_logprobs`` when the request asked for ``logprobs`` (0 without
    # ``top_logprobs``), else None: no logprobs.
    top_logprobs: int | None = None
    # The model's reasoning (``reasoning=N``), sent before the answer as
    # ``reasoning_content``; None: no reasoning.  Its words are counted in
    # ``completion_tokens``, as reasoning providers bill them.
    reasoning: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def usage(self, kind: str | None = None) -> dict[str, Any]:
        """The OpenAI ``usage`` object; with the ``usage`` directive's ``zero``,
        ``negative`` or ``huge``, a wrong one as a broken provider might send."""
        prompt, completion = {
            "zero": (0, 0),
            "negative": (-self.prompt_tokens, -self.completion_tokens),
            "huge": (3_000_000_000, self.completion_tokens),
        }.get(kind or "", (self.prompt_tokens, self.completion_tokens))
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if self.reasoning is not None and not kind:
            usage["completion_tokens_details"] = {"reasoning_tokens": count_words(self.reasoning)}
        return usage

    def logprobs(self, text: str | None) -> dict[str, Any] | None:
        """The choice's ``logprobs`` for ``text`` (the content or one streamed piece of
        it), or None when not asked for or for a tool call."""
        if self.top_logprobs is None or self.tool_call is not None or text is None:
            return None
        return {"content": logprobs_for(text, self.top_logprobs), "refusal": None}

    def reasoning_pieces(self) -> list[str]:
        """The reasoning split for streaming: one piece per word."""
        return split_chunks(self.reasoning or "", len(self.reasoning or ""))

    def stream_pieces(self, chunks: int | None) -> list[str]:
        """Content (or tool-call arguments) split for streaming.

        ``chunks`` is the directive value; by default one piece per token up
        to DEFAULT_STREAM_CHUNKS pieces.
        """
        text = self.tool_call.arguments if self.tool_call is not None else (self.content or "")
        return split_chunks(text, DEFAULT_STREAM_CHUNKS if chunks is None else chunks)


def build_reply(body: Mapping[str, Any], directive: Directive, user_text: str) -> Reply:
    """Decide the reply for a chat completion request.

    ``user_text`` is the last user message with the directive removed.
    Precedence: tool call > JSON (``response_format``) > ``echo`` >
    ``tokens`` > default text.  Raises InvalidRequestError for bad ``tools``,
    ``tool_choice``, ``stop`` or ``max_tokens`` values.
    """
    messages = body.get("messages") or []
    prompt = prompt_tokens(messages)
    top_logprobs = requested_logprobs(body)
    reasoning = None if directive.reasoning is None else generated_text(directive.reasoning, "reasoning " + user_text)
    thought = 0 if reasoning is None else count_words(reasoning)

    tool = _select_tool(body, directive)
    if tool is not None:
        call = _tool_call(tool, user_text)
        return Reply(
            content=None,
            tool_call=call,
            finish_reason=directive.finish or "tool_calls",
            prompt_tokens=prompt,
            completion_tokens=max(1, count_words(call.arguments)) + thought,
            top_logprobs=top_logprobs,
            reasoning=reasoning,
        )

    content = _json_content(body.get("response_format"), directive, user_text)
    if content is None:
        if directive.echo:
            content = user_text
        elif directive.tokens is not None:
            content = generated_text(directive.tokens, user_text)
        else:
            content = default_reply_text(user_text)

    finish = "stop"
    stop = _stop_sequences(body.get("stop"))
    if stop:
        content, _ = apply_stop(content, stop)
    limit = _max_tokens(body)
    if limit is not None:
        content, truncated = truncate_words(content, limit)
        if truncated:
            finish = "length"
    return Reply(
        content=content,
        tool_call=None,
        finish_reason=directive.finish or finish,
        prompt_tokens=prompt,
        completion_tokens=count_words(content) + thought,
        top_logprobs=top_logprobs,
        reasoning=reasoning,
    )


def _json_content(response_format: Any, directive: Directive, user_text: str) -> str | None:
    """Content for ``json_object``/``json_schema`` response formats, else None."""
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    schema: Any = None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping) or not schema:
            schema = None
    elif kind != "json_object":
        return None
    if schema is None:
        value: Any = (
            ["not", "an", "object"] if directive.json == "mismatch" else {"result": default_reply_text(user_text)}
        )
    elif directive.json == "mismatch":
        value = mismatching_value(schema)
    else:
        value = value_for_schema(schema)
    text = json.dumps(value, ensure_ascii=False)
    return invalid_json_text(text) if directive.json == "invalid" else text


def _function_tools(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``function`` objects of the request's function tools."""
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequestError("'tools' must be a list", "tools")
    functions = []
    for tool in tools:
        if isinstance(tool, Mapping) and tool.get("type", "function") == "function":
            function = tool.get("function")
            if isinstance(function, Mapping) and isinstance(function.get("name"), str):
                functions.append(function)
    return functions


def _select_tool(body: Mapping[str, Any], directive: Directive) -> Mapping[str, Any] | None:
    """The function to call: directive ``tool=``, a forced ``tool_choice``
    or the first tool for ``tool_choice="required"``; None for a text reply."""
    choice = body.get("tool_choice")
    wanted: str | None = directive.tool
    source = "[fake] directive key 'tool'"
    if wanted is None and isinstance(choice, Mapping):
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            wanted = function["name"]
            source = "tool_choice"
    if wanted is None and choice != "required":
        return None
    functions = _function_tools(body)
    if wanted is None:
        if not functions:
            raise InvalidRequestError("tool_choice 'required' needs at least one tool in 'tools'", "tool_choice")
        return functions[0]
    for function in functions:
        if function["name"] == wanted:
            return function
    names = ", ".join(function["name"] for function in functions) or "none"
    raise InvalidRequestError(
        f"{source} names tool '{wanted}', which is not in the request's tools (tools: {names})",
        "tool" if directive.tool is not None else "tool_choice",
    )


def _tool_call(function: Mapping[str, Any], user_text: str) -> ToolCall:
    """A call to ``function`` with arguments generated from its parameters."""
    parameters = function.get("parameters")
    if isinstance(parameters, Mapping) and parameters:
        arguments = json.dumps(value_for_schema(parameters), ensure_ascii=False)
    else:
        arguments = "{}"
    name = function["name"]
    digest = hashlib.sha1(f"{name}\n{arguments}\n{user_text}".encode("utf-8", "surrogatepass"))
    return ToolCall(id=f"call_{digest.hexdigest()[:24]}", name=name, arguments=arguments)


def _stop_sequences(stop: Any) -> list[str]:
    """``stop`` as a list of strings (it may be null, a string or a list)."""
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return stop
    raise InvalidRequestError("'stop' must be a string or a list of strings", "stop")


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    """``max_completion_tokens`` (preferred) or ``max_tokens``, validated."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidRequestError(f"'{key}' must be a non-negative integer", key)
        return value
    return None


# ---------------------------------------------------------------------------
# Log probabilities
# ---------------------------------------------------------------------------

# The logprob of every token of a reply, and of the i-th alternative in top_logprobs.
TOKEN_LOGPROB = -0.1
MAX_TOP_LOGPROBS = 20


def requested_logprobs(body: Mapping[str, Any]) -> int | None:
    """``top_logprobs`` (0 when absent) if ``logprobs`` is true, else None.

    As OpenAI: ``logprobs`` must be a boolean and ``top_logprobs`` an integer in
    0..20 that needs ``logprobs: true``; anything else is an InvalidRequestError.
    """
    logprobs, top = body.get("logprobs"), body.get("top_logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise InvalidRequestError("'logprobs' must be a boolean", "logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise InvalidRequestError(f"'top_logprobs' must be an integer in 0..{MAX_TOP_LOGPROBS}", "top_logprobs")
        if logprobs is not True:
            raise InvalidRequestError("'top_logprobs' requires 'logprobs' to be true", "top_logprobs")
    return (top or 0) if logprobs is True else None


def _token_logprob(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def logprobs_for(text: str, top: int) -> list[dict[str, Any]]:
    """OpenAI's ``logprobs.content`` for ``text``: one entry per token (a word with
    the whitespace before it, trailing whitespace on the last, so the tokens
    concatenate to ``text``), each with logprob TOKEN_LOGPROB and ``top`` entries in
    ``top_logprobs``: the token itself, then vocabulary words (other than the token's
    word, with its leading whitespace) at logprobs -1, -2, ..."""
    entries = []
    for token in split_chunks(text, len(text)):
        word = token.strip()
        space = token[: len(token) - len(token.lstrip())]
        alternatives = [_token_logprob(token, TOKEN_LOGPROB)][:top]
        others = (space + candidate for candidate in VOCABULARY if candidate != word)
        for rank, alternative in zip(range(1, top), others, strict=False):
            alternatives.append(_token_logprob(alternative, -float(rank)))
        entries.append({**_token_logprob(token, TOKEN_LOGPROB), "top_logprobs": alternatives})
    return entries
