"""The base of every file-format model, and the JSON schema generated from one.

The formats (:mod:`~collapselab.formats.records`, :mod:`~collapselab.formats.submission`) are
pydantic models; what checks a file is the JSON Schema (Draft 2020-12) generated from its model,
run by jsonschema (:mod:`collapselab.storage.schema`), so a bad file is refused with the path
of the offending field and jsonschema's message, by the same code for every format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict


class Format(BaseModel):
    """A part of a file format (Python's ``re`` reads its patterns: they use look-aheads). Fields beyond
    the ones a model names are kept, read and written back (a file written by newer code loses nothing
    when older code resumes it); a closed format forbids them."""

    model_config = ConfigDict(regex_engine="python-re", extra="allow")


def keys_matching(*, required: tuple[str, ...] = ()) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` for a mapping whose keys have a pattern: every key must match (pydantic
    writes key patterns as ``patternProperties``, which lets other keys through), and ``required``
    keys must be there."""
    def fix(schema: dict[str, Any]) -> None:
        (pattern, value), = schema.pop("patternProperties").items()
        schema.update(propertyNames={"type": "string", "pattern": pattern}, additionalProperties=value)
        if required:
            schema["required"] = list(required)
    return fix


_NOT_VALIDATING = ("title", "default", "description", "$defs")


def _plain(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema ``node`` with references inlined and without what does not validate (titles,
    defaults, descriptions), a nullable leaf written as a list of types, and no ``type`` beside
    ``const`` or ``enum``."""
    if isinstance(node, list):
        return [_plain(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _plain(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
    out = {}
    for key, value in node.items():
        if key == "properties":  # field names, each with its schema (a field may be called "description")
            out[key] = {name: _plain(field, definitions) for name, field in value.items()}
        elif key not in _NOT_VALIDATING and not (key == "additionalProperties" and value is True):
            out[key] = _plain(value, definitions)
    options = out.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        (kept,) = [option for option in options if option != {"type": "null"}]
        if isinstance(kept.get("type"), str):
            del out["anyOf"]
            out.update(kept, type=[kept["type"], "null"])
    if "const" in out or "enum" in out:
        out.pop("type", None)
    return out


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of ``model``, self-contained (references inlined)."""
    generated = model.model_json_schema()
    return _plain(generated, generated.get("$defs", {}))
