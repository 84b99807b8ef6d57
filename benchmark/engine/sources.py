"""Content hashes of the code that computes a run's numbers, and whether its checkout was clean.

A task's version is a claim that its numbers did not move; the hash of its source files is
what lets the leaderboard check that claim (``task.source_sha256`` in every manifest, beside
the strategy's ``source_sha256``). ``dirty`` (in the manifest's environment) says whether the
git checkout the package runs from had uncommitted changes in the folders that compute the
numbers: then no commit names the code, and the run cannot be reproduced from one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from collapselab.contracts import registry

GIT_TIMEOUT_S = 10


def files_sha256(files: Iterable[Path]) -> str:
    """SHA-256 over ``files``: each file's name and bytes, in order."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def folders_sha256(folders: Iterable[Path]) -> str:
    """SHA-256 over the ``*.py`` files of ``folders`` (not their sub-folders): each file's name and bytes, in order."""
    return files_sha256(path for folder in folders for path in sorted(Path(folder).glob("*.py")))


def task_folder(task_class: type) -> Path:
    """The folder of the module that defines ``task_class``: the task's package."""
    return Path(inspect.getfile(task_class)).resolve().parent


def task_source_sha256(task_class: type) -> str:
    """The content hash of a task's package folder (every ``.py`` file of it), recorded in manifests; of
    its one file for a task given as ``path/to/file.py:Class`` (the scripts beside it are not the task)."""
    if registry.is_plugin_module(task_class.__module__):
        return files_sha256([Path(inspect.getfile(task_class)).resolve()])
    return folders_sha256([task_folder(task_class)])


PACKAGES = ("collapselab", "collapselab.tasks", "collapselab.baselines")


def package_folders() -> list[Path]:
    """The source folders of the code that computes a run: the core, the tasks and the baselines
    (found, not imported: the core never imports a plugin package)."""
    found = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            found.append(Path(spec.origin).resolve().parent)
    return found


def _git(directory: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """``git -C directory args`` (an argument list, never a shell), or None when git cannot run."""
    try:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def tree_dirty(folders: Sequence[Path] | None = None) -> bool | None:
    """Whether the git checkout holding ``folders`` (default :func:`package_folders`) has uncommitted
    changes in them, untracked files included: ``True``/``False``, or ``None`` (unknown) when they are
    not files of a git checkout (an installed wheel, no git, a folder git ignores)."""
    folders = [Path(f).resolve() for f in (package_folders() if folders is None else folders)]
    if not folders:
        return None
    top = _git(folders[0], "rev-parse", "--show-toplevel")
    if top is None or top.returncode != 0 or not top.stdout.strip():
        return None
    root = Path(top.stdout.strip()).resolve()
    if not all(folder.is_relative_to(root) for folder in folders):
        return None
    paths = [str(folder.relative_to(root)) or "." for folder in folders]
    tracked = _git(root, "ls-files", "--", *paths)
    if tracked is None or tracked.returncode != 0 or not tracked.stdout.strip():
        return None  # e.g. a package installed into an ignored folder of some other checkout
    status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *paths)
    if status is None or status.returncode != 0:
        return None
    return bool(status.stdout.strip())
