"""The core install: the regression quick start runs without the neural tasks' extras, and
`list tasks` names the extra that installs a task's missing dependencies."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

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


def test_the_wheel_holds_every_package_folder_and_the_package_data(tmp_path):
    """setup.py finds the sub-packages of the four folders: a wheel built from a copy of the tree
    holds every folder with an __init__.py, under the collapselab name, and the leaderboard's data."""
    root = Path(__file__).resolve().parent.parent
    FOLDERS = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    source = tmp_path / "source"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "figures", "runs")
    for folder in FOLDERS.values():
        shutil.copytree(root / folder, source / folder, ignore=skip)
    (source / "tasks/linear_regression/figures").mkdir()
    shutil.copy(root / "tasks/linear_regression/figures/scaling_law.json", source / "tasks/linear_regression/figures")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(root / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                            "-w", str(tmp_path / "wheel")], capture_output=True, text=True, cwd=source, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("collapselab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for name, folder in FOLDERS.items():
        for init in (source / folder).rglob("__init__.py"):
            expected.add("/".join((*name.split("."), *init.parent.relative_to(source / folder).parts, "__init__.py")))
    assert len(expected) >= 20 and expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    data = {"collapselab/leaderboard/code_equivalence.json", "collapselab/tasks/linear_regression/figures/scaling_law.json",
            *(f"collapselab/leaderboard/submissions/{p.name}" for p in (root / "leaderboard/submissions").glob("*.json"))}
    assert data <= names, f"package data missing from the wheel: {sorted(data - names)}"
