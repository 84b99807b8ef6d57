"""The JSON Schema validator of every file CollapseLab reads: jsonschema's Draft 2020-12, with
faster applicators for the leaves that make up most of a file.

A submission is mostly numbers: per run and generation, objects of metrics, counts and
seconds whose every value is checked against a *leaf* schema (one made only of keywords that
look at the value itself, such as ``{"type": "number"}``). jsonschema checks each value by
building a validator for it (``descend``), most of its time. Here ``properties``,
``additionalProperties``, ``items`` and ``propertyNames`` first run the leaf's keyword
functions, jsonschema's own, on the value directly; a value that fails goes the ordinary way, so
the verdicts and the error messages are jsonschema's.

Inside :func:`remembering` (the leaderboard's build), a document is checked once however often
it is asked about.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jsonschema

BASE = jsonschema.Draft202012Validator
#: Keywords whose check reads only the value and the keyword's argument (no sub-schema, no reference).
LEAF_KEYWORDS = frozenset({"type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                           "minLength", "maxLength", "pattern"})

_KEYWORD = BASE.VALIDATORS
Errors = Iterator[jsonschema.ValidationError]
Keyword = Callable[[Any, Any, Any, Mapping[str, Any]], Errors]


def is_leaf(schema: Any) -> bool:
    return isinstance(schema, dict) and bool(schema) and schema.keys() <= LEAF_KEYWORDS


def _leaf_valid(validator: Any, leaf: Mapping[str, Any], value: Any) -> bool:
    """Whether ``value`` passes every keyword of ``leaf`` (jsonschema's keyword functions, called directly)."""
    for keyword, argument in leaf.items():
        for _ in _KEYWORD[keyword](validator, argument, value, leaf) or ():
            return False
    return True


def _over_leaves(keyword: str, values: Callable[[Any, Mapping[str, Any]], Iterable[Any] | None]) -> Keyword:
    """``keyword`` (an applicator with one sub-schema) that returns at once when the sub-schema is a
    leaf and every value it applies to (``values``; ``None``: not known here) passes it."""
    original = _KEYWORD[keyword]

    def check(validator: Any, subschema: Any, instance: Any, schema: Mapping[str, Any]) -> Errors:
        found = values(instance, schema) if is_leaf(subschema) else None
        if found is not None and all(_leaf_valid(validator, subschema, value) for value in found):
            return
        yield from original(validator, subschema, instance, schema)

    return check


def _properties(validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]) -> Errors:
    """jsonschema's ``properties``, with leaf properties that pass checked in place."""
    if not validator.is_type(instance, "object"):
        return
    for name, subschema in properties.items():
        if name in instance and not (is_leaf(subschema) and _leaf_valid(validator, subschema, instance[name])):
            yield from validator.descend(instance[name], subschema, path=name, schema_path=name)


def _every_value(instance: Any, schema: Mapping[str, Any]) -> Iterable[Any] | None:
    """The values ``additionalProperties`` applies to: all of them, when no other keyword claims a property."""
    return instance.values() if isinstance(instance, dict) and not {"properties", "patternProperties"} & schema.keys() else None


def _every_item(instance: Any, schema: Mapping[str, Any]) -> Iterable[Any] | None:
    return instance if isinstance(instance, list) and "prefixItems" not in schema else None


def _every_name(instance: Any, schema: Mapping[str, Any]) -> Iterable[Any] | None:
    return instance.keys() if isinstance(instance, dict) else None


Validator = jsonschema.validators.extend(BASE, {
    "properties": _properties,
    "additionalProperties": _over_leaves("additionalProperties", _every_value),
    "items": _over_leaves("items", _every_item),
    "propertyNames": _over_leaves("propertyNames", _every_name),
})

_MADE: dict[int, tuple[Mapping[str, Any], Any]] = {}


def validator(schema: Mapping[str, Any]) -> Any:
    """The validator of ``schema`` (made once per schema object)."""
    made = _MADE.get(id(schema))
    if made is None or made[0] is not schema:
        made = _MADE[id(schema)] = (schema, Validator(schema))
    return made[1]


_CHECKED: contextvars.ContextVar[dict[tuple[int, int], tuple[Any, list[jsonschema.ValidationError]]] | None] = (
    contextvars.ContextVar("checked", default=None))


@contextlib.contextmanager
def remembering() -> Iterator[None]:
    """Within the block, a document checked again against the same schema is not checked again
    (a reader that checks a file's format and then its rules). The documents must not change inside it."""
    token = _CHECKED.set({})
    try:
        yield
    finally:
        _CHECKED.reset(token)


def errors(instance: Any, schema: Mapping[str, Any]) -> list[jsonschema.ValidationError]:
    """Every error of ``instance`` against ``schema``, the shallowest fields first."""
    memo = _CHECKED.get()
    key = (id(instance), id(schema))
    if memo is not None and key in memo:
        return list(memo[key][1])
    found = sorted(validator(schema).iter_errors(instance), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if memo is not None:
        memo[key] = (instance, found)  # kept alive, so that its id stays its own
    return found
