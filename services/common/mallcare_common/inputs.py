"""The input gate: what every HTTP body, RPC payload and consumed event must be before a
schema reads it. Pure: no I/O, no nameko.

- `loads(raw)`: bounded JSON. Nesting deeper than MAX_DEPTH is refused before the parser
  runs (json.loads recurses, and 20,000 levels end in RecursionError); not UTF-8, not
  JSON: MalformedInput, with the reason.
- `check(value)`: every string, keys too, is text the store can keep: no lone surrogate
  (JSON allows the escape "\\ud800"; UTF-8, hence BSON, cannot hold it) and no control
  character other than tab, newline and carriage return (`as_text` drops them from text a
  channel adapter reads). Numbers are finite (json.loads
  reads NaN, Infinity and 1e309) and integers fit BSON's signed 64 bits. Refusals are an
  InvalidInput, a marshmallow ValidationError whose messages name each field by its path,
  as a schema's do, so they reach HTTP callers as 422 VALIDATION_ERROR with `fields`.
  A value nested deeper than MAX_DEPTH (an RPC payload or event decoded elsewhere) is a
  MalformedInput.
- `AwareDateTime`: marshmallow's field within the years 1900 to 2999, for times a body or
  query gives: 0001-01-01T00:00:00+01:00 is before year 1 in UTC, and converting it for
  the store or a query overflowed (a 500).
"""

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from marshmallow import ValidationError, fields

MAX_DEPTH = 32  # levels of objects and arrays; our bodies use fewer than 6
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
YEARS = (1900, 2999)  # of a time given as input, in its own offset

# Lone surrogates, and the C0 and C1 controls and DEL except tab, newline and carriage return.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# A string runs to its closing quote or, unclosed, to the end: never retried from each
# quote inside it (a 64 KiB body of escaped quotes took seconds of the service's only core).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class MalformedInput(ValueError):
    """Not a JSON value this service reads at all: not UTF-8, not JSON, nested too deep."""


class InvalidInput(ValidationError):
    """JSON, but holding a string or number no field may hold; messages by field path."""


def loads(raw: bytes | bytearray | str, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of `raw` (bytes as UTF-8, or str), its nesting bounded. Strings and
    numbers are not checked yet: see `check`."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    except UnicodeDecodeError as exc:
        raise MalformedInput(f"not UTF-8: {exc}") from exc
    if nesting_exceeds(text, max_depth):
        raise MalformedInput(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise MalformedInput(f"not JSON: {exc}") from exc


def nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether the JSON `text` opens more than `max_depth` objects or arrays at once;
    brackets inside strings do not count. Linear, and no recursion."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > max_depth:
            return True
    return False


def check(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """`value` itself when every string and number in it may be stored; else InvalidInput
    (or MalformedInput when it is nested deeper than `max_depth`). Iterative, so a
    deep value cannot exhaust the stack while it is checked."""
    errors: dict[str | int, Any] = {}
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [((), value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise MalformedInput(f"nested deeper than {max_depth} levels")
            pairs: Iterable[tuple[Any, Any]] = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                problem = _text_problem(key) if isinstance(key, str) else None
                if problem:
                    _add(errors, path + (_shown(key),), f"Not a valid field name: {problem}.")
                    continue
                stack.append((path + (key,), child, depth + 1))
        else:
            problem = _value_problem(item)
            if problem:
                _add(errors, path, problem)
    if errors:
        raise InvalidInput(errors)
    return value


def as_text(text: str) -> str:
    """`text` without what `check` refuses (lone surrogates, control characters): for text a
    channel adapter takes from a mail or a message, which nobody can be asked to correct."""
    return _NOT_TEXT.sub("", text)


class AwareDateTime(fields.AwareDateTime):
    default_error_messages = {"out_of_range": f"Not a time mallcare keeps: years {YEARS[0]} to {YEARS[1]}."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not YEARS[0] <= moment.year <= YEARS[1]:
            raise self.make_error("out_of_range")
        return moment


def _value_problem(value: Any) -> str | None:
    if isinstance(value, str):
        problem = _text_problem(value)
        return problem and f"Not valid text: {problem}."
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return f"Number out of range: integers go from {INT64_MIN} to {INT64_MAX}."
    if isinstance(value, float) and not math.isfinite(value):
        return "Not a finite number."
    return None


def _text_problem(text: str) -> str | None:
    found = _NOT_TEXT.search(text)
    if found is None:
        return None
    char = found.group()
    kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"{kind} (U+{ord(char):04X}) at position {found.start()}"


def _shown(key: str) -> str:
    """A refused key as a field message can name it: JSON-safe, its bad characters escaped."""
    return _NOT_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def _add(errors: dict[str | int, Any], path: tuple[str | int, ...], message: str) -> None:
    """Messages nest like marshmallow's: {"customer": {"name": [...]}}, list items by index;
    a bad value at the top has no field and goes under "_schema"."""
    if not path:
        path = ("_schema",)
    node = errors
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node.setdefault(path[-1], []).append(message)
