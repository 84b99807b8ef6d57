"""The linear-regression task (Gerstgrasser et al. 2024; Dohmatob et al. 2024)."""

from tasks.linear_regression.task import LinearRegressionTask

__all__ = ["LinearRegressionTask"]
