"""The linear-regression task (Gerstgrasser et al. 2024; Dohmatob et al. 2024)."""

from collapselab.tasks.linear_regression.task import LinearRegressionTask

__all__ = ["LinearRegressionTask"]
