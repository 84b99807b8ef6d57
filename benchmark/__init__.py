"""CollapseLab: a benchmark for model collapse under recursive training.

The public API for strategy and task authors::

    from collapselab import Pool, Strategy, StrategyContext, Task, register_strategy
"""

from collapselab.contracts.pool import REAL, Pool
from collapselab.contracts.registry import register_strategy, register_task
from collapselab.contracts.strategy import Budget, Strategy, StrategyContext
from collapselab.contracts.task import Compute, FitResult, Task, TaskMetadata

__all__ = [
    "REAL",
    "Budget",
    "Compute",
    "FitResult",
    "Pool",
    "Strategy",
    "StrategyContext",
    "Task",
    "TaskMetadata",
    "register_strategy",
    "register_task",
]
