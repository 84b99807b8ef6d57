"""Small helpers shared by the tests (run a strategy on a task into a temporary folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collapselab.contracts import registry
from collapselab.engine.loop import RunSpec, execute
from collapselab.engine.rundir import Run


def run_strategy(
    root: Path,
    task: str,
    strategy: str,
    seed: int = 0,
    generations: int | None = None,
    preset: str = "smoke",
    overrides: dict[str, Any] | None = None,
    listeners: tuple = (),
) -> Run:
    task_obj = registry.make_task(task, preset, overrides or {})
    spec = RunSpec(
        task_obj,
        registry.make_strategy(strategy),
        seed,
        task_obj.default_generations if generations is None else generations,
        Path(root),
        strategy_spec=strategy,
        command=["pytest"],
    )
    return execute(spec, listeners, progress=False)


def metric_curves(run: Run) -> list[dict[str, float]]:
    """Every generation's metrics (timings excluded): what determinism and resume compare."""
    return [record["metrics"] for record in run.records]
