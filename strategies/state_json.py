"""A published `State` as JSON and back, typed both ways, so a follower draws the driver's frame.

Followers (attach, a browser wallboard, a read-only watch) receive the driver's State over HTTP
and must rebuild the very same frozen objects the widgets render, not a dict that looks like
one. The codec walks the dataclasses' type hints, so a field added to the model travels without
touching this module; only a change of meaning bumps SCHEMA.

Rules: enums travel as their values, tuples and frozensets as lists, mappings as objects,
non-finite floats as the strings "nan", "inf", "-inf" (JSON has no such numbers). Untyped
(`Any`) values, such as event details and gate evidence, come back frozen: objects as read-only
mappings, lists as tuples.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from functools import cache
from typing import Any

from strategies.model import State, frozen_map

SCHEMA = 1
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class StateFormatError(ValueError):
    """The JSON is not a State this version can read (wrong schema, missing or mistyped field)."""


# --------------------------------------------------------------------------- encode


def encode(value: Any) -> Any:
    """Any model object as plain JSON data (dicts, lists, str, numbers, bools, None)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(encode(v) for v in value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def state_to_dict(state: State) -> dict[str, Any]:
    return {"schema": SCHEMA, "state": encode(state)}


def state_to_json(state: State) -> str:
    return json.dumps(state_to_dict(state), separators=(",", ":"), allow_nan=False)


# --------------------------------------------------------------------------- decode


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(kind: Any, data: Any, where: str = "state") -> Any:
    """`data` (plain JSON) as an instance of the type `kind`; StateFormatError names the path."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return _freeze(data)
    if origin in (typing.Union, types.UnionType):
        return _decode_union(kind, data, where)
    if dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, data, where)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return _decode_enum(kind, data, where)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return scalar(data, where)
    if origin is tuple:
        return _decode_tuple(kind, data, where)
    if origin in (frozenset, set):
        (item_kind,) = typing.get_args(kind)
        return frozenset(decode(item_kind, item, f"{where}[]") for item in _json_list(data, where))
    if origin in (Mapping, dict, typing.Mapping) or kind in (Mapping, dict):
        return _decode_mapping(kind, data, where)
    raise StateFormatError(f"{where}: cannot decode into {kind!r}")


def _decode_union(kind: Any, data: Any, where: str) -> Any:
    """An optional or a union: null where the union allows it, else the first option that
    decodes (the first option's problem is the one reported)."""
    options = typing.get_args(kind)
    if data is None and type(None) in options:
        return None
    problems = []
    for option in options:
        if option is type(None):
            continue
        try:
            return decode(option, data, where)
        except StateFormatError as exc:
            problems.append(str(exc))
    raise StateFormatError(problems[0] if problems else f"{where}: unexpected null")


def _decode_enum(kind: type[Enum], data: Any, where: str) -> Enum:
    try:
        return kind(data)
    except ValueError:
        raise StateFormatError(f"{where}: {data!r} is not a {kind.__name__}") from None


def _decode_float(data: Any, where: str) -> float:
    """A number; non-finite values travel as strings, since JSON has no infinity or NaN."""
    if isinstance(data, str) and data in _NON_FINITE:
        return _NON_FINITE[data]
    if isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    raise StateFormatError(f"{where}: expected a number, got {data!r}")


def _decode_int(data: Any, where: str) -> int:
    """An integer; a whole float is accepted (some JSON writers emit 3.0), a bool is not."""
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    if isinstance(data, float) and data.is_integer():
        return int(data)
    raise StateFormatError(f"{where}: expected an integer, got {data!r}")


def _decode_bool(data: Any, where: str) -> bool:
    if isinstance(data, bool):
        return data
    raise StateFormatError(f"{where}: expected true or false, got {data!r}")


def _decode_str(data: Any, where: str) -> str:
    if isinstance(data, str):
        return data
    raise StateFormatError(f"{where}: expected a string, got {data!r}")


_SCALARS: dict[Any, Callable[[Any, str], Any]] = {
    float: _decode_float, int: _decode_int, bool: _decode_bool, str: _decode_str}
"""The JSON scalars, each strict about what it takes (a bool is no number)."""


def _json_list(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise StateFormatError(f"{where}: expected a list, got {type(data).__name__}")
    return data


def _decode_tuple(kind: Any, data: Any, where: str) -> tuple[Any, ...]:
    """A homogeneous tuple (`tuple[X, ...]`) of any length, or a fixed one item by item."""
    args = typing.get_args(kind)
    items = _json_list(data, where)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(items))
    if len(args) != len(items):
        raise StateFormatError(f"{where}: expected {len(args)} items, got {len(items)}")
    return tuple(decode(a, item, f"{where}[{i}]") for i, (a, item) in enumerate(zip(args, items, strict=True)))


def _decode_mapping(kind: Any, data: Any, where: str) -> Any:
    """A JSON object as a frozen map; an unparameterised Mapping has string keys, any values."""
    args = typing.get_args(kind) or (str, Any)
    if not isinstance(data, dict):
        raise StateFormatError(f"{where}: expected an object, got {type(data).__name__}")
    return frozen_map({decode(args[0], k, f"{where} key"): decode(args[1], v, f"{where}.{k}")
                       for k, v in data.items()})


def _decode_dataclass(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise StateFormatError(f"{where}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise StateFormatError(f"{where}.{f.name}: missing")
            continue  # a field newer than the sender: its default
        values[f.name] = decode(hints[f.name], data[f.name], f"{where}.{f.name}")
    return cls(**values)  # fields the sender has and we do not know are ignored


def _freeze(data: Any) -> Any:
    if isinstance(data, dict):
        return frozen_map({k: _freeze(v) for k, v in data.items()})
    if isinstance(data, list):
        return tuple(_freeze(v) for v in data)
    return data


def state_from_dict(body: Any) -> State:
    if not isinstance(body, dict) or "state" not in body:
        raise StateFormatError("not a releasedeck state document (no 'state')")
    if body.get("schema") != SCHEMA:
        raise StateFormatError(f"state schema {body.get('schema')!r} is not {SCHEMA}: "
                               "attach with the same releasedeck version as the driver")
    return decode(State, body["state"])


def state_from_json(text: str | bytes) -> State:
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise StateFormatError(f"not JSON: {exc}") from None
    return state_from_dict(body)
