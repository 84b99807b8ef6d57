"""Strict JSON: no NaN or Infinity on the way out or in, and schema validation with clear messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema


class ResultFileError(ValueError):
    """A result or submission file is malformed; the message names the file and the field."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not valid JSON")


def dumps(obj: Any, indent: int | None = None) -> str:
    """Serialise ``obj``; raises ``ValueError`` on NaN or Infinity instead of writing them."""
    return json.dumps(obj, allow_nan=False, indent=indent, sort_keys=indent is not None, ensure_ascii=False)


def loads(text: str, source: str = "<string>") -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise ResultFileError(f"{source}: invalid JSON: {exc}") from None


def load_file(path: Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{path}: cannot read: {exc}") from None
    return loads(text, str(path))


_VALIDATORS: dict[int, jsonschema.Draft202012Validator] = {}


def validate(instance: Any, schema: Mapping[str, Any], source: str) -> None:
    """Raise :class:`ResultFileError` naming ``source`` and the first offending field."""
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        error = errors[0]
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ResultFileError(f"{source}: field {where}: {error.message}{more}")
