"""CollapseLab: a benchmark for model collapse under recursive training.

The public API for strategy and task authors::

    from collapselab import Pool, Strategy, StrategyContext, Task, TaskConfig, register_strategy

and for notebooks (loaded on first use, so ``import collapselab`` stays light)::

    collapselab.run(task=..., strategy=..., seeds=..., preset=...)    # -> pandas.DataFrame
    collapselab.load_results("runs/", "leaderboard/submissions/")      # -> pandas.DataFrame
    collapselab.export_results(paths, "results.parquet", "parquet")
    collapselab.describe_task(name), collapselab.describe_strategy(name)
    collapselab.api                                                    # the module holding them
"""

from typing import Any

from collapselab.contracts.pool import REAL, Pool
from collapselab.contracts.registry import register_strategy, register_task
from collapselab.contracts.strategy import Budget, Strategy, StrategyContext
from collapselab.contracts.task import Compute, FitResult, Task, TaskMetadata
from collapselab.contracts.task_config import TaskConfig

_API = "collapselab.operations.results.api"
_LAZY = ("run", "load_results", "export_results", "describe_task", "describe_strategy")

__all__ = [
    "REAL",
    "Budget",
    "Compute",
    "FitResult",
    "Pool",
    "Strategy",
    "StrategyContext",
    "Task",
    "TaskConfig",
    "TaskMetadata",
    "api",
    "register_strategy",
    "register_task",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """The notebook API (:mod:`collapselab.operations.results.api`), imported on first use (it needs pandas)."""
    if name == "api" or name in _LAZY:
        import importlib

        module = importlib.import_module(_API)
        return module if name == "api" else getattr(module, name)
    raise AttributeError(f"module 'collapselab' has no attribute {name!r}")
