"""The Python API: run a task and a strategy from a notebook, load results as pandas DataFrames.

    import collapselab

    frame = collapselab.run(task="linear_regression", strategy="accumulate", seeds="0-2", preset="smoke")
    frame = collapselab.load_results("runs/", "leaderboard/submissions/replace.json")
    collapselab.describe_task("mnist_vae")["presets"]["cpu"]

Each name is also importable from here (``collapselab.operations.results.api``); ``import collapselab``
stays light because the package exports them lazily. The DataFrames have one row per (task,
strategy, seed, generation); their columns are described in :mod:`collapselab.operations.results.export`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collapselab.contracts import registry
from collapselab.contracts.params import parse_seeds
from collapselab.engine import sandbox
from collapselab.errors import ParameterError
from collapselab.operations.plugins import catalog
from collapselab.operations.results import export

if TYPE_CHECKING:
    import pandas

__all__ = ["describe_strategy", "describe_task", "export_results", "load_results", "run"]


def load_results(*paths: Path | str) -> pandas.DataFrame:
    """Every generation of the runs in ``paths`` (run directories, folders of runs, submission
    files or folders of them) as one DataFrame."""
    if not paths:
        raise ParameterError("load_results needs at least one path")
    return export.frame(list(paths))


def export_results(paths: Sequence[Path | str], out: Path | str, fmt: str = "csv") -> pandas.DataFrame:
    """Write :func:`load_results` of ``paths`` to ``out`` (``csv``, ``parquet`` or ``json``) and return the table."""
    return export.export(list(paths), Path(out), fmt)


def _seed_list(seeds: int | str | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise ParameterError(f"seeds must be an integer, a list of them or a range like '0-4', got {seeds!r}")
    if isinstance(seeds, int):
        return [seeds]
    if isinstance(seeds, str):
        return parse_seeds(seeds)
    return [int(seed) for seed in seeds]


def run(
    task: str,
    strategy: str,
    seeds: int | str | Sequence[int] = 0,
    preset: str = "cpu",
    generations: int | None = None,
    out: Path | str = "runs",
    overrides: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> pandas.DataFrame:
    """Run ``strategy`` on ``task`` for each seed (resuming what is already in ``out``, as the
    command line does) and return the runs' generations as a DataFrame.

    ``strategy`` is a name, ``NAME[key=value,...]`` or ``path/to/file.py:ClassName``; a class
    registered with :func:`collapselab.register_strategy` in the notebook is found by its name.
    ``overrides`` changes task configuration keys (``collapselab show task NAME`` lists them).
    """
    from collapselab.engine.loop import RunSpec, execute

    task_obj = registry.make_task(task, preset, dict(overrides or {}))
    strategy_obj = sandbox.describe(strategy)
    count = task_obj.default_generations if generations is None else int(generations)
    if count < 0:
        raise ParameterError("generations must be >= 0")
    call = f"collapselab.run(task={task!r}, strategy={strategy!r}, preset={preset!r})"
    finished = [
        execute(RunSpec(task_obj, strategy_obj, seed, count, Path(out), strategy_spec=strategy, command=[call]), progress=progress)
        for seed in _seed_list(seeds)
    ]
    return export.frame([run.path for run in finished])


def describe_task(name: str) -> dict[str, Any]:
    """A task's metadata, every preset's configuration and its fit options (what ``collapselab show task`` prints)."""
    return catalog.task_info(name)


def describe_strategy(spec: str) -> dict[str, Any]:
    """A strategy's parameters, citation, hooks and docstring (what ``collapselab show strategy`` prints)."""
    return catalog.strategy_info(spec)
