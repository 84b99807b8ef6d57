"""Parsing of ``key=value`` settings from the command line and of ``name[k=v,...]`` specs."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from collapselab.errors import ParameterError

_SPEC = re.compile(r"^\s*(?P<name>[^\[\]]+?)\s*(?:\[(?P<params>.*)\])?\s*$")


def parse_value(text: str) -> Any:
    """A JSON literal (number, true/false, null, quoted string) or else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``("key", parsed value)``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ParameterError(f"expected key=value, got {text!r}")
    return key.strip(), parse_value(value.strip())


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"mix[real_fraction=0.5]"`` -> ``("mix", {"real_fraction": 0.5})``."""
    match = _SPEC.match(spec)
    if not match:
        raise ParameterError(f"malformed spec {spec!r}; expected name or name[key=value,...]")
    params: dict[str, Any] = {}
    body = match.group("params")
    if body and body.strip():
        for part in body.split(","):
            key, value = parse_assignment(part)
            if key in params:
                raise ParameterError(f"parameter {key!r} given twice in {spec!r}")
            params[key] = value
    return match.group("name"), params


def coerce(value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (bool, int, float or str)."""
    if default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ParameterError(f"expects true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise ParameterError(f"expects an integer, got {value!r}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ParameterError(f"expects a finite number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParameterError(f"expects a string, got {value!r}")
        return value
    return value


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,7"`` -> [0, 2, 7]; ranges and lists combine."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, sep, high = part.partition("-")
        try:
            values = range(int(low), int(high) + 1) if sep else [int(part)]
        except ValueError:
            raise ParameterError(f"malformed seeds {text!r}; use e.g. 0-4 or 0,1,5") from None
        if not values or min(values) < 0:
            raise ParameterError(f"malformed seeds {text!r}; seeds are non-negative and ranges ascending")
        seeds.extend(v for v in values if v not in seeds)
    return seeds
