"""The shipped mitigation strategies, one module each; found through the
``collapselab.strategies`` entry points declared in ``pyproject.toml``."""
