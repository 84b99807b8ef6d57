"""The core install: the regression quick start runs without the neural tasks' extras, and
`list tasks` names the extra that installs a task's missing dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = ("torch", "pytorch_lightning", "lightning", "rdkit", "e3nn", "mlxtend", "datasets", "wandb")

BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {HEAVY!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}")
            return None

    sys.meta_path.insert(0, Missing())
    import importlib.util
    _find = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] in {HEAVY!r} else _find(name, *a)
    from collapselab.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


def _collapselab(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_regression_runs_and_list_names_the_missing_extras_without_torch_rdkit_or_e3nn(tmp_path):
    listed = _collapselab("list", "tasks", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert 'pip install "collapselab[molecules]"' in listed.stdout and 'collapselab[images]' in listed.stdout
    run = _collapselab("run", "--task", "linear_regression", "--strategy", "accumulate", "--preset", "smoke",
                       "--out", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "reports"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    refused = _collapselab("run", "--task", "mnist_vae", "--strategy", "replace", "--preset", "smoke",
                           "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert refused.returncode == 2
    assert 'needs torch, pytorch_lightning, mlxtend, which are not installed: pip install "collapselab[images]"' in refused.stderr


def test_collapselab_imports_and_sweeps_from_a_folder_that_shadows_generic_names(tmp_path):
    for name in ("benchmark", "tasks", "baselines", "leaderboard", "collapselab_plugin"):
        (tmp_path / f"{name}.py").write_text("raise RuntimeError('a file in the working folder was imported')\n")
    probe = subprocess.run([sys.executable, "-c", "import collapselab, collapselab.engine.loop, collapselab.leaderboard.site; "
                            "from collapselab import Pool, Strategy, Task; print('ok')"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert probe.returncode == 0 and probe.stdout.strip() == "ok", probe.stderr


def test_every_package_folder_is_installed():
    """pyproject lists the packages by hand (one namespace over four folders); a new sub-package that
    is not listed would be missing from an install, so each folder with an __init__.py must be there."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for name, folder in config["package-dir"].items():
        for init in (root / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(root / folder).parts
            if not any(part.startswith(".") or part == "__pycache__" for part in parts):
                found.add(".".join((name, *parts)))
    assert found == listed, f"not listed in pyproject: {sorted(found - listed)}; listed without a folder: {sorted(listed - found)}"
