"""Parameter grids in strategy specs: ``mix[real_fraction=0.1,0.3,0.5]`` is three strategies.

Inside the brackets, items are separated by commas. An item ``key=value`` starts a parameter;
an item without ``=`` is one more value of the parameter before it. A spec whose parameters
have several values expands to one spec per combination (the Cartesian product, the first
parameter varying slowest)::

    mix[real_fraction=0.1,0.3]                     -> mix[real_fraction=0.1], mix[real_fraction=0.3]
    verifier-filter[quality=0.5,1,accumulate=true,false]
        -> 4 specs: quality 0.5 with accumulate true, 0.5 false, 1 true, 1 false

A spec with one value per parameter is kept as written. Values are never split further, so
a grid cannot hold a value with a comma in it (no strategy parameter needs one).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from collapselab.contracts.params import parse_value
from collapselab.errors import ParameterError

_BRACKETED = re.compile(r"^\s*(?P<name>[^\[\]]+?)\s*\[(?P<body>[^\[\]]*)\]\s*$")


def parse_grid(spec: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """``"mix[real_fraction=0.1,0.3]"`` -> ``("mix", [("real_fraction", ["0.1", "0.3"])])`` (values as written).

    A spec without brackets has no parameters; malformed grids raise :class:`ParameterError`.
    """
    if "[" not in spec and "]" not in spec:
        return spec.strip(), []
    match = _BRACKETED.match(spec)
    if match is None:
        raise ParameterError(f"malformed strategy spec {spec!r}; expected name[key=value,...]")
    axes: list[tuple[str, list[str]]] = []
    body = match.group("body")
    if not body.strip():
        return match.group("name"), axes
    for item in (part.strip() for part in body.split(",")):
        if not item:
            raise ParameterError(f"empty item in {spec!r}: two commas in a row or a comma at an end")
        key, sep, value = (text.strip() for text in item.partition("="))
        if sep:
            if not key or not value:
                raise ParameterError(f"malformed parameter {item!r} in {spec!r}; expected key=value")
            if key in (name for name, _ in axes):
                raise ParameterError(f"parameter {key!r} given twice in {spec!r}")
            axes.append((key, [value]))
        elif not axes:
            raise ParameterError(f"value {item!r} in {spec!r} has no parameter before it; write key=value first")
        else:
            name, values = axes[-1]
            if parse_value(item) in [parse_value(v) for v in values]:
                raise ParameterError(f"value {item!r} of {name!r} given twice in {spec!r}")
            values.append(item)
    return match.group("name"), axes


def expand(spec: str) -> list[str]:
    """The specs of every combination of ``spec``'s parameter values (``[spec]`` when there is one)."""
    name, axes = parse_grid(spec)
    if all(len(values) == 1 for _, values in axes):
        return [spec.strip()]
    keys = [key for key, _ in axes]
    return [f"{name}[{','.join(f'{k}={v}' for k, v in zip(keys, combination))}]"
            for combination in itertools.product(*(values for _, values in axes))]


def expand_all(specs: Sequence[str]) -> list[str]:
    """Every spec of ``specs`` expanded, in order, each combination once."""
    return list(dict.fromkeys(expanded for spec in specs for expanded in expand(spec)))
