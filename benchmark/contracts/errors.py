"""Errors that reach the user as one clear line (the command line prints them without a traceback)."""

from __future__ import annotations


class CollapseLabError(RuntimeError):
    """Base class of the errors the command line reports as a message."""


class PluginError(CollapseLabError):
    """A task or strategy plugin could not be found, imported, built, or misbehaved while running."""


class TaskError(CollapseLabError):
    """A task produced an invalid result (e.g. a non-finite loss: training diverged)."""


class RunConflictError(CollapseLabError):
    """An existing run directory was made with different settings or code; it is left untouched."""
