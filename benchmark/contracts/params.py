"""Parsing of ``key=value`` settings from the command line and of ``name[k=v,...]`` specs.

Values are bounded as they are parsed: integers fit a signed 64-bit integer (NumPy's sizes),
floats are finite, and seeds are what a result file can hold and read back
(:data:`MAX_SEED`, at most :data:`MAX_SEEDS` of them), so an absurd number is one clear
:class:`ParameterError`, never an overflow deep inside a run.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from collapselab.errors import ParameterError
from collapselab.storage.strict_json import MAX_INT_DIGITS

_SPEC = re.compile(r"^\s*(?P<name>[^\[\]]+?)\s*(?:\[(?P<params>.*)\])?\s*$")
#: The largest magnitude of an integer setting (a signed 64-bit integer).
INT_LIMIT = 2**63 - 1
#: The largest seed: the largest integer a strict-JSON result file reads back.
MAX_SEED = 10**MAX_INT_DIGITS - 1
#: The most seeds one ``--seeds`` may name.
MAX_SEEDS = 1_000_000
_LITERAL_DIGITS = 64


def shown(value: Any) -> str:
    """``repr(value)``, except that an integer too long to print is described by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    return repr(value)


def _bounded_literal(text: str) -> int:
    if len(text.lstrip("-")) > _LITERAL_DIGITS:
        raise ParameterError(f"an integer of {len(text.lstrip('-'))} digits is out of range")
    return int(text)


def parse_value(text: str) -> Any:
    """A JSON literal (number, true/false, null, quoted string) or else the raw string."""
    try:
        return json.loads(text, parse_int=_bounded_literal)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        raise ParameterError("a value nested too deeply") from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``("key", parsed value)``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ParameterError(f"expected key=value, got {text!r}")
    try:
        return key.strip(), parse_value(value.strip())
    except ParameterError as exc:
        raise ParameterError(f"{key.strip()}: {exc}") from None


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
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole:
            raise ParameterError(f"expects an integer, got {shown(value)}")
        if not -INT_LIMIT - 1 <= value <= INT_LIMIT:
            raise ParameterError(f"expects an integer of magnitude below 2^63, got {shown(value)}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise ParameterError(f"expects a finite number, got {shown(value)}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParameterError(f"expects a string, got {value!r}")
        return value
    return value


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond the float range
        return False


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,7"`` -> [0, 2, 7]; ranges and lists combine (in linear time)."""
    seeds: dict[int, None] = {}
    for part in text.split(","):
        part = part.strip()
        low, sep, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if sep else first
        except ValueError:
            raise ParameterError(f"malformed seeds {text[:100]!r}; use e.g. 0-4 or 0,1,5") from None
        if first < 0 or last < first:
            raise ParameterError(f"malformed seeds {text[:100]!r}; seeds are non-negative and ranges ascending")
        if last > MAX_SEED:
            raise ParameterError(f"seed {shown(last)} is too large; seeds are 0 to {MAX_SEED:,}")
        if len(seeds) + (last - first + 1) > MAX_SEEDS:
            raise ParameterError(f"--seeds {text[:100]!r} names more than {MAX_SEEDS:,} seeds")
        seeds.update(dict.fromkeys(range(first, last + 1)))
    return list(seeds)
