"""The one error hierarchy of CollapseLab.

Every error a user can cause or fix (a bad option, a broken plugin, a corrupted or hostile
file, a full disk) derives from :class:`CollapseLabError`; the command line prints it as one
line without a traceback and exits with status 2. This module imports nothing of CollapseLab,
so every layer can raise these errors.
"""

from __future__ import annotations

from collections.abc import Sequence


class CollapseLabError(Exception):
    """Base class of the errors the command line reports as a message."""


class ConfigError(CollapseLabError, ValueError):
    """A task configuration key or value is unknown or invalid.

    ``problems`` holds one ``(key, message)`` pair per bad key (``key`` ``None``: a rule over
    several keys), so a caller reads which keys failed from this field, never from the text."""

    def __init__(self, message: str, *, problems: Sequence[tuple[str | None, str]] = ()) -> None:
        self.problems = tuple(problems)
        super().__init__(message)


class ParameterError(CollapseLabError, ValueError):
    """A ``key=value`` setting, a strategy parameter or a spec is malformed or has the wrong type."""


class PluginError(CollapseLabError):
    """A task or strategy plugin could not be found, imported, built, or misbehaved while running.

    ``plugin`` names the strategy the message already blames (``None``: not yet attributed), so a
    caller decides whether to add context from this field, never from the message's text."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        self.plugin = plugin
        super().__init__(message)


class TaskError(CollapseLabError):
    """A task produced an invalid result (e.g. a non-finite loss: training diverged)."""


class PoolError(CollapseLabError, ValueError):
    """A pool was built or combined inconsistently, or a pool file cannot be read."""


class ResultFileError(CollapseLabError, ValueError):
    """A run, result or submission file is malformed or corrupted; the message names the file and the field."""


class RunConflictError(CollapseLabError):
    """An existing run directory was made with different settings or code, or another process holds it."""


class WriteError(CollapseLabError, OSError):
    """A file could not be written (full disk, permissions...); the previous file is unchanged."""


class SubmissionError(CollapseLabError):
    """A submission file, or the runs given to ``submit``, break the rules; lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        text = "\n  ".join(["invalid submission:", *self.problems]) if len(self.problems) > 1 else self.problems[0]
        super().__init__(text)


#: What the command line reports as one line (exit status 2) instead of a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (CollapseLabError, OSError)
