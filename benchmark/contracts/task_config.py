"""A task's configuration as one typed model.

Every task declares ``Config``, a :class:`TaskConfig` subclass with one typed field per key of
its presets (pydantic: types are strict, bounds are ``Field`` constraints, rules over several
keys are model validators). The base class validates every preset against it when the task
class is defined and every run's configuration when the task is made, reporting one problem per
bad key in a single :class:`~collapselab.errors.ConfigError` whose ``problems`` field lists
them; the task reads its values through ``task.settings``, typed. ``task.config``, the plain
mapping, stays what runs record and identify themselves by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collapselab.errors import ConfigError

C = TypeVar("C", bound="TaskConfig")


class TaskConfig(BaseModel):
    """The keys every task has; a task's ``Config`` adds its own fields.

    Strict types: a string is never read as a number nor a bool as an integer (an integer given
    for a float field is accepted as that float); NaN and infinities are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    generations: int = Field(ge=0, description="the default number of synthetic generations")


def problems_of(error: ValidationError) -> list[tuple[str | None, str]]:
    """One ``(key, message)`` per problem pydantic found; ``key`` is ``None`` for a rule over several keys."""
    found = []
    for item in error.errors(include_url=False):
        key = ".".join(str(part) for part in item["loc"]) or None
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown config key"
        elif key is not None and item["type"] != "missing":
            message = f"{message}, got {item['input']!r}"
        found.append((key, message))
    return found


def validated(model: type[C], config: Mapping[str, Any], where: str) -> C:
    """``config`` read through ``model``; a :class:`ConfigError` listing every bad key (``where``
    names the task, e.g. ``task 'mnist_vae'``)."""
    try:
        return model.model_validate(dict(config))
    except ValidationError as exc:
        problems = problems_of(exc)
        lines = [f"config key {key!r}: {message}" if key else message for key, message in problems]
        raise ConfigError(f"{where}: " + "; ".join(lines), problems=problems) from None


_BOUNDS = ((annotated_types.Ge, "ge", ">="), (annotated_types.Gt, "gt", ">"),
           (annotated_types.Le, "le", "<="), (annotated_types.Lt, "lt", "<"))


def field_types(model: type[TaskConfig]) -> dict[str, str]:
    """key -> its type and bounds in words (``int >= 1``, ``float > 0, < 1``, ``one of cpu, gpu``), for
    ``collapselab show task``; rules over several keys are the model's validators and are not listed."""
    found = {}
    for key, info in model.model_fields.items():
        annotation = info.annotation
        if get_origin(annotation) is Literal:
            found[key] = "one of " + ", ".join(str(choice) for choice in get_args(annotation))
            continue
        bounds = [f"{sign} {getattr(item, attr)}" for item in info.metadata
                  for kind, attr, sign in _BOUNDS if isinstance(item, kind)]
        name = getattr(annotation, "__name__", str(annotation))
        found[key] = " ".join([name, ", ".join(bounds)]).strip()
    return found
