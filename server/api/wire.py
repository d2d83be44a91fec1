"""The free-form JSON of a call request, in the order the client wrote it.

`google.protobuf.Struct` is a protobuf map, and the upb runtime iterates maps in hash
order (seeded per process): a `response_format` json_schema whose `properties` are
`step1, step2, step3, final_answer` would reach the provider reordered, and OpenAI's
structured outputs generate keys in schema order. The request's wire bytes still list
the map entries as the client (or Envoy's transcoder, as it streams the JSON) wrote
them, so the few Struct-typed parameters that reach the provider are decoded from those
bytes here, with the same int-vs-float rule as json_format plus `_plain` in convert.

How the bytes reach the handler: for request types with such fields (`keeps_bytes`),
`with_bytes` makes the request deserializer return a `Received` (the message and the
bytes it was parsed from, not copied) and `handing_bytes` hands the handler the message,
leaving the `Received` in a context variable of the RPC's task, where `take_bytes` finds
it. Requests without these fields, and calls that set none of them, pay nothing more.
"""

from __future__ import annotations

import contextvars
import math
import struct
from collections.abc import Callable, Iterable
from typing import Any

# The call parameters whose key order the provider sees (JSON objects it reads in order):
# Struct or Value fields of the call requests. Metadata is not among them: it is stored
# as JSONB, which keeps no key order.
ORDERED_FIELDS = ("response_format", "tools", "tool_choice", "logit_bias", "extra_body")

_STRUCT, _VALUE, _LIST = "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"
_EXACT_INTS = 2**53
_DOUBLE = struct.Struct("<d")


class WireError(ValueError):
    """Bytes that are not a valid encoding of the message being decoded. `field` names
    the field of decode_fields being decoded, if any."""

    field = ""


class NonFiniteNumber(WireError):
    """A NaN or infinite number_value: JSON has none (json_format refuses them too)."""


# ---------------------------------------------------------------- handing the bytes over


class Received:
    """A request message and the bytes it was parsed from."""

    __slots__ = ("data", "message")

    def __init__(self, message: Any, data: bytes) -> None:
        self.message = message
        self.data = data


_RECEIVED: contextvars.ContextVar[Received | None] = contextvars.ContextVar("received_request", default=None)


def keeps_bytes(deserializer: Callable[[bytes], Any] | None) -> bool:
    """Whether requests of this deserializer (a generated `Message.FromString`) have an
    ORDERED_FIELDS field, whose order only the bytes keep."""
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    fields = getattr(descriptor, "fields_by_name", None)
    if not fields:
        return False
    return any(name in fields and _kind(fields[name]) is not None for name in ORDERED_FIELDS)


def with_bytes(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Received]:
    def deserialize(data: bytes) -> Received:
        return Received(deserializer(data), data)

    return deserialize


def handing_bytes(behavior: Callable[..., Any]) -> Callable[..., Any]:
    """`behavior` (a unary coroutine function or a server-stream generator function)
    called with the message of a `Received`, which stays available to `take_bytes` in the
    RPC's task (grpc.aio runs each RPC in a task of its own, so no other RPC sees it)."""

    def handle(received: Received, context: Any) -> Any:
        _RECEIVED.set(received)
        return behavior(received.message, context)

    return handle


def take_bytes(request: Any) -> bytes | None:
    """The bytes `request` was parsed from, if this RPC received it; released afterwards
    (tasks started by the handler copy its context, and would hold them otherwise)."""
    received = _RECEIVED.get()
    if received is None or received.message is not request:
        return None
    data = received.data
    received.message = received.data = None
    return data


# ---------------------------------------------------------------- decoding


def _kind(field: Any) -> str | None:
    message_type = field.message_type
    name = message_type.full_name if message_type is not None else ""
    return name if name in (_STRUCT, _VALUE, _LIST) else None


_plans: dict[Any, dict[str, tuple[int, str, bool]]] = {}


def _plan(descriptor: Any) -> dict[str, tuple[int, str, bool]]:
    """Field name -> (number, Struct/Value/ListValue, repeated), from the descriptor."""
    plan = _plans.get(descriptor)
    if plan is None:
        plan = _plans[descriptor] = {
            f.name: (f.number, kind, f.is_repeated) for f in descriptor.fields if (kind := _kind(f)) is not None
        }
    return plan


def decode_fields(data: bytes, descriptor: Any, names: Iterable[str]) -> dict[str, Any]:
    """The Struct/Value/ListValue fields `names` of the message `descriptor` encoded in
    `data`, as plain Python (dicts in wire order); a field absent from `data` is absent
    from the result. Several occurrences of a singular field merge, as protobuf's do."""
    plan = _plan(descriptor)
    wanted = {plan[name][0]: name for name in names}
    found: dict[str, Any] = {}
    decoders = {_STRUCT: _struct, _VALUE: _value, _LIST: _list}
    name = ""
    try:
        for number, start, end in _length_delimited(data, 0, len(data), wanted):
            name = wanted[number]
            _, kind, repeated = plan[name]
            if repeated:
                found.setdefault(name, []).append(decoders[kind](data, start, end, _UNSET))
            else:
                found[name] = decoders[kind](data, start, end, found.get(name, _UNSET))
    except WireError as error:
        error.field = name
        raise
    return found


def decode_struct(data: bytes) -> dict[str, Any]:
    """A whole encoded `google.protobuf.Struct`."""
    return _struct(data, 0, len(data), _UNSET)


def decode_value(data: bytes) -> Any:
    """A whole encoded `google.protobuf.Value`."""
    return _value(data, 0, len(data), _UNSET)


_UNSET: Any = object()


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end and data[pos] < 0x80:  # most tags and lengths: one byte
        return data[pos], pos + 1
    result = shift = 0
    while pos < end:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("a varint is longer than 10 bytes")
    raise WireError("the message ends inside a varint")


def _skip(data: bytes, pos: int, end: int, tag: int) -> int:
    """The position after the value of a field we do not read (wire type in `tag`)."""
    wire_type = tag & 7
    if wire_type == 0:
        _, pos = _varint(data, pos, end)
    elif wire_type == 1:
        pos += 8
    elif wire_type == 2:
        length, pos = _varint(data, pos, end)
        pos += length
    elif wire_type == 5:
        pos += 4
    elif wire_type == 3:  # a group: its fields, up to the matching end-group tag
        while True:
            if pos >= end:
                raise WireError("the message ends inside a group")
            inner, pos = _varint(data, pos, end)
            if inner & 7 == 4:
                if inner >> 3 != tag >> 3:
                    raise WireError("a group ends with another field number")
                break
            pos = _skip(data, pos, end, inner)
    else:
        raise WireError(f"wire type {wire_type} is not valid here")
    if pos > end:
        raise WireError("a field runs past the end of its message")
    return pos


def _tag(data: bytes, pos: int, end: int) -> tuple[int, int]:
    tag, pos = _varint(data, pos, end)
    if tag >> 3 == 0:
        raise WireError("field number 0")
    return tag, pos


def _length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(start, end) of a length-delimited value whose length starts at `pos`."""
    length, pos = _varint(data, pos, end)
    if pos + length > end:
        raise WireError("a field runs past the end of its message")
    return pos, pos + length


def _length_delimited(data: bytes, pos: int, end: int, wanted: dict[int, str]) -> Iterable[tuple[int, int, int]]:
    """(number, start, end) of each length-delimited field of `wanted`, in wire order."""
    while pos < end:
        tag, pos = _tag(data, pos, end)
        if tag & 7 == 2 and tag >> 3 in wanted:
            start, pos = _length(data, pos, end)
            yield tag >> 3, start, pos
        else:  # another field, or a wanted number with another wire type: unknown to upb too
            pos = _skip(data, pos, end, tag)


def _string(data: bytes, start: int, end: int) -> str:
    try:
        return data[start:end].decode()
    except UnicodeDecodeError as error:
        raise WireError("a string is not valid UTF-8") from error


# Tags: field number << 3 | wire type.
_KEY, _ENTRY_VALUE = 1 << 3 | 2, 2 << 3 | 2  # Struct.FieldsEntry; Struct.fields is 1 << 3 | 2 too
_NULL, _NUMBER, _TEXT, _BOOL, _OBJECT, _ARRAY = 1 << 3, 2 << 3 | 1, 3 << 3 | 2, 4 << 3, 5 << 3 | 2, 6 << 3 | 2
_ITEM = 1 << 3 | 2  # ListValue.values


def _struct(data: bytes, pos: int, end: int, into: Any) -> dict[str, Any]:
    fields: dict[str, Any] = into if isinstance(into, dict) else {}
    while pos < end:
        tag, pos = _tag(data, pos, end)
        if tag != _KEY:  # Struct.fields, same tag as FieldsEntry.key
            pos = _skip(data, pos, end, tag)
            continue
        entry, pos = _length(data, pos, end)
        key, value, known = "", _UNSET, True
        while entry < pos:
            entry_tag, entry = _tag(data, entry, pos)
            if entry_tag == _KEY:
                start, entry = _length(data, entry, pos)
                key = _string(data, start, entry)
            elif entry_tag == _ENTRY_VALUE:
                start, entry = _length(data, entry, pos)
                value = _value(data, start, entry, value)
            else:
                entry = _skip(data, entry, pos, entry_tag)
                known = False
        if known:  # upb keeps an entry with unknown fields as an unknown field of the Struct
            # A key seen before keeps its place and takes the last value, as in a map.
            fields[key] = None if value is _UNSET else value
    return fields


def _value(data: bytes, pos: int, end: int, current: Any) -> Any:
    """A Value; `current` is what an earlier occurrence of the same field decoded to
    (a struct_value merges into a struct, a list_value extends a list)."""
    result = None if current is _UNSET else current
    while pos < end:
        tag, pos = _tag(data, pos, end)
        if tag == _TEXT:
            start, pos = _length(data, pos, end)
            result = _string(data, start, pos)
        elif tag == _NUMBER:
            if pos + 8 > end:
                raise WireError("the message ends inside a number")
            (number,) = _DOUBLE.unpack_from(data, pos)
            pos += 8
            result = _number(number)
        elif tag == _OBJECT:
            start, pos = _length(data, pos, end)
            result = _struct(data, start, pos, result)
        elif tag == _ARRAY:
            start, pos = _length(data, pos, end)
            result = _list(data, start, pos, result)
        elif tag == _BOOL:
            flag, pos = _varint(data, pos, end)
            result = flag != 0
        elif tag == _NULL:
            _, pos = _varint(data, pos, end)
            result = None
        else:
            pos = _skip(data, pos, end, tag)
    return result


def _list(data: bytes, pos: int, end: int, into: Any) -> list[Any]:
    items: list[Any] = into if isinstance(into, list) else []
    while pos < end:
        tag, pos = _tag(data, pos, end)
        if tag == _ITEM:
            start, pos = _length(data, pos, end)
            items.append(_value(data, start, pos, _UNSET))
        else:
            pos = _skip(data, pos, end, tag)
    return items


def _number(value: float) -> int | float:
    """Integral doubles as ints (5, not 5.0), as convert._plain gives them."""
    if value.is_integer() and abs(value) < _EXACT_INTS:
        return int(value)
    if not math.isfinite(value):
        raise NonFiniteNumber("a number is NaN or infinite, which JSON cannot carry")
    return value
