"""The repository's static checks run with the tests: import layers, types and lint.

The layer contracts (``[tool.importlinter]`` in ``pyproject.toml``) and mypy read the
package tree that ``.ci/check_package.py`` assembles; ruff reads the repository.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_and_types() -> None:
    result = subprocess.run([sys.executable, str(ROOT / ".ci" / "check_package.py")], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts:" in result.stdout and "broken" in result.stdout


def test_lint() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]
