"""YAML mappings -> typed dataclasses, shared by the curation and training configs.

`build(Kind, mapping)` checks every value against the dataclass's type hints (nested dataclasses,
lists, tuples, dicts, optionals, numbers) and raises `ConfigError` naming the dotted field
(`optimizer.lr: expected a number, got 'fast'`); unknown and missing fields are errors too. A
dataclass's own `__post_init__` checks surface the same way.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any


# `4e-4`: PyYAML (YAML 1.1) reads it as a string, YAML 1.2, JSON and Python as a number. A number field
# takes it as one; a text field (a commit such as 1234e56) keeps it as text.
SCIENTIFIC = re.compile(r"[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+")


class ConfigError(ValueError):
    """A config that cannot run; the message names the field."""


def merge(base: dict, over: dict) -> dict:
    """`over` merged into `base`, recursively for mappings (lists and scalars are replaced)."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def _error(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}" if where else message)


def _build_dataclass(kind: type, value: Any, where: str) -> Any:
    value = {} if value is None else value  # an empty YAML section
    if not isinstance(value, dict):
        raise _error(where, f"expected a mapping, got {value!r}.")
    hints = typing.get_type_hints(kind)
    fields = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise _error(where, f"unknown field(s) {unknown}; expected some of {sorted(fields)}.")
    missing = [f.name for f in dataclasses.fields(kind) if f.name not in value
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise _error(where, f"missing required field(s) {missing}.")
    built = {name: build(hints[name], item, f"{where}.{name}".lstrip(".")) for name, item in value.items()}
    try:
        return kind(**built)
    except ValueError as error:  # the dataclass's own validation
        raise _error(where, str(error)) from None


def build(kind: Any, value: Any, where: str = "") -> Any:
    """`value` checked against the type hint `kind` (and converted: int -> float, list -> tuple)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return build(inner, value, where)
    if dataclasses.is_dataclass(kind):
        return _build_dataclass(kind, value, where)
    if origin is list or kind is list:
        if not isinstance(value, list):
            raise _error(where, f"expected a list, got {value!r}.")
        return [build(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)] if args else value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise _error(where, f"expected a list of {len(args)} values, got {value!r}.")
        return tuple(build(a, item, f"{where}[{i}]") for i, (a, item) in enumerate(zip(args, value)))
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise _error(where, f"expected a mapping, got {value!r}.")
        return {str(k): build(args[1], v, f"{where}.{k}") for k, v in value.items()} if args else value
    if kind is Any:
        return value
    if kind is float:
        if isinstance(value, str) and SCIENTIFIC.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _error(where, f"expected a number, got {value!r}.")
        if not math.isfinite(value):  # YAML's .nan / .inf parse as floats; no setting means them
            raise _error(where, f"expected a finite number, got {value!r}.")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _error(where, f"expected an integer, got {value!r}.")
        return value
    if kind in (bool, str) and not isinstance(value, kind):
        raise _error(where, f"expected {kind.__name__}, got {value!r}.")
    return value
