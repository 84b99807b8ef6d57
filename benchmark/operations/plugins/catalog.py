"""What a task or a strategy is, as plain data: shown by ``collapselab list`` and ``show``, and
returned by :func:`collapselab.describe_task` / :func:`collapselab.describe_strategy`.

Everything comes from the installed classes (their metadata, presets, fit options, parameters
and docstrings); nothing is run and no data is loaded.
"""

from __future__ import annotations

import inspect
from typing import Any

from collapselab.contracts import registry, task_config
from collapselab.contracts.params import parse_spec
from collapselab.contracts.strategy import OPTIONAL_HOOKS, Strategy
from collapselab.errors import CollapseLabError


def first_paragraph(text: str) -> str:
    """The first paragraph of a docstring, on one line ('' for none)."""
    return " ".join(text.split("\n\n", 1)[0].split())


def _module_doc(cls: type) -> str:
    """The class's docstring, else its module's (the baselines document themselves at module level)."""
    own = cls.__dict__.get("__doc__")
    if own:
        return inspect.cleandoc(own)
    module = inspect.getmodule(cls)
    return (inspect.getdoc(module) or "") if module is not None else ""


def task_info(name: str) -> dict[str, Any]:
    """Metadata, the configuration of every preset, and per preset the fit options, sampling
    options and compute budget of one fit (optimiser steps; examples processed) of the task ``name``."""
    cls = registry.task_class(name)
    meta = cls.metadata
    per_preset: dict[str, dict[str, Any] | None] = {}
    for preset in cls.presets:
        try:
            task = registry.make_task(name, preset)
        except CollapseLabError:  # a preset this machine cannot build (e.g. an accelerator it lacks)
            per_preset[preset] = None
            continue
        per_preset[preset] = {"fit": dict(task.fit_options), "sampling": dict(task.sampling_options),
                              "steps": task.step_budget, "examples": task.example_budget}
    doc = _module_doc(cls)

    def pick(kind: str) -> dict[str, Any]:
        return {preset: (None if found is None else found[kind]) for preset, found in per_preset.items()}

    return {
        "name": cls.name,
        "version": cls.version,
        "modality": meta.modality,
        "description": meta.description,
        "citation": meta.citation,
        "loss_unit": meta.loss_unit,
        "secondary_metrics": dict(meta.secondary_metrics),
        "presets": {preset: dict(config) for preset, config in cls.presets.items()},
        "config_types": task_config.field_types(cls.Config),
        "config_meanings": {key: info.description or "" for key, info in cls.Config.model_fields.items()},
        "fit_options": pick("fit"),
        "sampling_options": pick("sampling"),
        "step_budget": pick("steps"),
        "example_budget": pick("examples"),
        "summary": first_paragraph(doc),
        "module": cls.__module__,
    }


def strategy_info(spec: str) -> dict[str, Any]:
    """Parameters (defaults), citation, hooks and docstring of the strategy ``spec`` (a name or ``file.py:Class``).

    No track: a run's track comes from what its records show it trained on
    (:func:`collapselab.scoring.scorer.run_track`), never from what a strategy declares."""
    name, _ = parse_spec(spec)
    cls = registry.strategy_class(name)
    doc = _module_doc(cls)
    return {
        "name": cls.name,
        "spec": name,
        "citation": cls.citation,
        "parameters": dict(cls.parameters),
        "uses_extra_real_data": bool(cls.uses_extra_real_data),
        "hooks": [hook for hook in OPTIONAL_HOOKS if getattr(cls, hook) is not getattr(Strategy, hook)],
        "summary": first_paragraph(doc),
        "doc": doc,
        "module": cls.__module__,
    }
