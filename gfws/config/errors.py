"""One line per configuration problem: ``{file}: {key.path}: expected ..., got ...``.

msgspec finds the problem and says where (`` - at `$.connection.ack_timeout` ``);
this module turns that into gfws's line: the path as the TOML user writes it,
what the schema expected (the field's ``expect`` text, or words derived from its
type and constraints), and the value actually written, looked up in the data.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from msgspec import inspect

_NOTHING = object()
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")
_NAMED = re.compile(r"`([^`]+)`")
_SIGNS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))

Path = list[str | int]


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


SECRET_KEYS = frozenset({"api_key", "api_secret"})


def problem(source: str, where: str, expected: str, got: Any = _NOTHING) -> ConfigError:
    """``{source}: {where}: expected {expected}, got {got!r}`` (without "got" when there is nothing)."""
    shown = "" if got is _NOTHING else f", got {got!r}"
    return ConfigError(f"{source}: {where or '(top level)'}: expected {expected}{shown}")


def explain(error: msgspec.ValidationError, data: Any, schema: type, source: str) -> ConfigError:
    """msgspec's ``error`` from decoding ``data`` into ``schema``, as gfws's one line."""
    text = str(error)
    at = _AT.search(text)
    what = text[: at.start()] if at else text
    path: Path = [name or int(index) for name, index in _STEP.findall(at["path"] if at else "")]
    named = _NAMED.search(what)
    if named and what.startswith("Object missing required field"):
        path.append(named[1])
        expected = _expected(_type_at(schema, path), path)
        return ConfigError(f"{source}: {_dotted(path)}: missing; expected {expected or 'a value'}")
    if named and what.startswith("Object contains unknown field"):
        table = _unwrap(_type_at(schema, path))
        known = sorted(f.name for f in table.fields) if isinstance(table, inspect.StructType) else []
        return ConfigError(f"{source}: {_dotted([*path, named[1]])}: unknown key; expected one of {known}")
    expected = _expected(_type_at(schema, path), path)
    if expected is None:  # a shape this module has no words for: msgspec's own
        return ConfigError(f"{source}: {_dotted(path) or '(top level)'}: {what}")
    if path and path[-1] in SECRET_KEYS:  # never repeat a credential, even a malformed one
        return problem(source, _dotted(path), expected)
    return problem(source, _dotted(path), expected, _value_at(data, path))


def _dotted(path: Path) -> str:
    """``["endpoints", 1, "priority"]`` -> ``endpoints[1].priority``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text


def _value_at(data: Any, path: Path) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return _NOTHING
    return data


def _unwrap(t: inspect.Type | None) -> inspect.Type | None:
    """The type under ``Annotated`` and ``Optional``."""
    while True:
        if isinstance(t, inspect.Metadata):
            t = t.type
        elif isinstance(t, inspect.UnionType):
            members = [m for m in t.types if not isinstance(m, inspect.NoneType)]
            if len(members) != 1:
                return t
            t = members[0]
        else:
            return t


def _type_at(schema: type, path: Path) -> inspect.Type | None:
    """The declared type of the value at ``path``, its ``Meta`` kept."""
    t: inspect.Type | None = inspect.type_info(schema)
    for step in path:
        outer = _unwrap(t)
        if isinstance(outer, inspect.StructType) and isinstance(step, str):
            t = next((f.type for f in outer.fields if f.name == step), None)
        elif isinstance(outer, inspect.ListType | inspect.VarTupleType) and isinstance(step, int):
            t = outer.item_type
        else:
            return None
    return t


def _expected(t: inspect.Type | None, path: Path) -> str | None:
    """What a value of type ``t`` at ``path`` should be, in the config's words."""
    while True:  # an ``expect`` text on the way down wins over the type's words
        if isinstance(t, inspect.Metadata):
            if t.extra and "expected" in t.extra:
                return str(t.extra["expected"])
            t = t.type
        elif isinstance(t, inspect.UnionType):
            members = [m for m in t.types if not isinstance(m, inspect.NoneType)]
            if len(members) != 1:
                return None
            t = members[0]
        else:
            break
    table = _dotted([step for step in path if isinstance(step, str)])
    if isinstance(t, inspect.BoolType):
        return "true or false"
    if isinstance(t, inspect.IntType):
        bounds = _bounds(t)
        return f"a whole number{bounds}" if bounds else "an integer"
    if isinstance(t, inspect.FloatType):
        return f"a number{_bounds(t)}"
    if isinstance(t, inspect.StrType):
        return "a string"
    if isinstance(t, inspect.LiteralType):
        return f"one of {list(t.values)}"
    if isinstance(t, inspect.StructType):
        if not table:
            return "a table"
        return f"a table ([[{table}]])" if isinstance(path[-1], int) else f"a table ([{table}])"
    if isinstance(t, inspect.ListType | inspect.VarTupleType):
        if isinstance(_unwrap(t.item_type), inspect.StructType):
            return f"an array of tables ([[{table}]])"
        return "a non-empty list" if t.min_length else "a list"
    return None


def _bounds(t: inspect.IntType | inspect.FloatType) -> str:
    """`` > 0``, `` >= 1 and <= 65535``... from the ``Meta`` constraints."""
    limits = [f"{sign} {value:g}" for name, sign in _SIGNS if (value := getattr(t, name)) is not None]
    return f" {' and '.join(limits)}" if limits else ""
