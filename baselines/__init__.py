"""The shipped mitigation strategies, one module each; found through the
``collapse_bench.strategies`` entry points declared in ``pyproject.toml``."""
