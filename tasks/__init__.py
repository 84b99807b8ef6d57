"""The benchmark's tasks, one sub-package each; found through the ``collapse_bench.tasks``
entry points declared in ``pyproject.toml``."""
