"""CollapseBench: a benchmark for model collapse under recursive training.

The public API for strategy and task authors::

    from benchmark import Pool, Strategy, StrategyContext, Task, register_strategy
"""

from benchmark.pool import REAL, Pool
from benchmark.registry import register_strategy, register_task
from benchmark.strategy import Budget, Strategy, StrategyContext
from benchmark.task import Compute, FitResult, Task, TaskMetadata

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
