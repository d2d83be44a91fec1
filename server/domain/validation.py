"""Checks of client-supplied identifiers and labels, shared by every use case."""

from __future__ import annotations

import json
import re
import unicodedata
import uuid

from server.domain.errors import invalid_argument

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-/]{0,127}$")
MAX_LABEL_LENGTH = 100
MAX_TEXT_LENGTH = 1000
# Free-form JSON a client stores (metadata): each document, and all of a job's metadata
# after merges (job_store.MAX_JOB_METADATA_BYTES).
MAX_JSON_DEPTH = 30  # an audit entry holding it through the gateway breaks at 32: deeper fails to encode
MAX_JSON_BYTES = 64 * 1024
MAX_JOB_METADATA_BYTES = 256 * 1024


def identifier(field_name: str, value: str) -> str:
    """An operator-chosen id (organization, team, group): 1-64 of letters, digits, `_.-`."""
    if not value:
        raise invalid_argument(field_name, "is required")
    if not _IDENTIFIER.fullmatch(value):
        raise invalid_argument(
            field_name, "must be 1-64 characters: letters, digits, '_', '-', '.', starting with a letter or digit"
        )
    return value


def model_name(field_name: str, value: str) -> str:
    """A model alias or LiteLLM model name: 1-128 of letters, digits, `_.-:/`."""
    if not value:
        raise invalid_argument(field_name, "is required")
    if not _ALIAS.fullmatch(value):
        raise invalid_argument(field_name, "must be 1-128 characters: letters, digits, '_', '-', '.', ':', '/'")
    return value


def job_id(value: str) -> uuid.UUID:
    """A job id from a path or body; malformed ids are INVALID_ARGUMENT, never a crash."""
    return uuid_field("job_id", value)


def uuid_field(field_name: str, value: str) -> uuid.UUID:
    if not value:
        raise invalid_argument(field_name, "is required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid_argument(field_name, "must be a UUID such as 3f2b1c9e-8a41-4d2b-9a7e-0c5d6e7f8a9b") from None


# Letters and symbols that show nothing yet are printable: Hangul fillers, the braille blank.
_FILLERS = frozenset("\u115f\u1160\u2800\u3164\uffa0")


def _blank(value: str) -> bool:
    """Nothing that shows: spaces, fillers, and marks with nothing to mark (combining
    marks, variation selectors, format characters alone)."""
    return all(ch.isspace() or ch in _FILLERS or unicodedata.category(ch) in ("Mn", "Me", "Cf") for ch in value)


def label(field_name: str, value: str, *, required: bool = False, max_length: int = MAX_LABEL_LENGTH) -> str:
    """A short free-text label (job_type, purpose...): printable, bounded length, and not
    blank (spaces, or letters that show nothing): an optional one is empty or says something."""
    if not value:
        if required:
            raise invalid_argument(field_name, "is required")
        return value
    if _blank(value):
        raise invalid_argument(field_name, "must not be blank")
    if len(value) > max_length:
        raise invalid_argument(field_name, f"must be at most {max_length} characters")
    if not value.isprintable():
        raise invalid_argument(field_name, "must not contain control characters")
    return value


def text(field_name: str, value: str, *, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Longer free text (descriptions, error messages): bounded, no NUL bytes."""
    if len(value) > max_length:
        raise invalid_argument(field_name, f"must be at most {max_length} characters")
    if "\x00" in value:
        raise invalid_argument(field_name, "must not contain NUL characters")
    return value


def unique_names(field_name: str, values: list[str], check=identifier) -> list[str]:
    """A list of names, each valid, without duplicates, order kept."""
    seen: dict[str, None] = {}
    for index, value in enumerate(values):
        check(f"{field_name}[{index}]", value)
        seen.setdefault(value, None)
    return list(seen)


_ALIAS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


def alias_name(field_name: str, value: str) -> str:
    """A new model alias (the name teams use): 1-64 of letters, digits, `_.:-`.

    Unlike LiteLLM model names, no `/`: an alias is one segment of a REST path."""
    if not value:
        raise invalid_argument(field_name, "is required")
    if not _ALIAS_NAME.fullmatch(value):
        raise invalid_argument(
            field_name, "must be 1-64 characters: letters, digits, '_', '-', '.', ':', starting with a letter or digit"
        )
    return value


def json_document(field_name: str, value: object) -> object:
    """A client's free-form JSON (metadata...) that will be stored, refused here before
    anything is spent if it could not be stored or read back: PostgreSQL's jsonb cannot
    hold the NUL character; nesting deeper than MAX_JSON_DEPTH could not be sent back
    through the gateway inside the messages that carry it (a job in a list); over
    MAX_JSON_BYTES (written as compact JSON) it would weigh on every read of its owner."""
    stack: list[tuple[str, object, int]] = [(field_name, value, 0)]
    while stack:
        where, item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise invalid_argument(where, "must not contain the NUL character (\\u0000)")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise invalid_argument(
                    field_name, f"nests objects and arrays {depth + 1} deep at {where}; at most {MAX_JSON_DEPTH}"
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    if "\x00" in key:
                        raise invalid_argument(where, "must not contain the NUL character (\\u0000) in a key")
                    stack.append((f"{where}.{key}", child, depth + 1))
            else:
                stack.extend((f"{where}[{index}]", child, depth + 1) for index, child in enumerate(item))
    size = json_size(value)
    if size > MAX_JSON_BYTES:
        raise invalid_argument(field_name, f"is {size} bytes as JSON; at most {MAX_JSON_BYTES}")
    return value


def merged_metadata(field_name: str, metadata: dict, patch: dict) -> dict:
    """`metadata` with `patch`'s keys set, if it stays within MAX_JOB_METADATA_BYTES."""
    merged = {**metadata, **patch}
    size = json_size(merged)
    if patch and size > MAX_JOB_METADATA_BYTES:
        raise invalid_argument(
            field_name,
            f"would make the job's metadata {size} bytes as JSON; at most {MAX_JOB_METADATA_BYTES}: "
            "remove keys by setting fewer or smaller ones",
        )
    return merged


def json_size(value: object) -> int:
    """Bytes of `value` as UTF-8 JSON written as PostgreSQL writes jsonb back (`, ` and
    `: ` between items): how the JSON limits are counted, here and in SQL alike."""
    return len(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")).encode())
