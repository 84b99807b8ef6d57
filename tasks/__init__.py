"""The benchmark's tasks, one sub-package each; found through the ``collapselab.tasks``
entry points declared in ``pyproject.toml``."""
