"""Finding tasks and strategies by name.

Three doors, in this order:
1. a file: ``path/to/file.py:ClassName`` (:func:`load_class_file`, the same for tasks and strategies);
2. classes registered in this process with :func:`register_task` / :func:`register_strategy`;
3. installed entry points, groups ``collapselab.tasks`` and ``collapselab.strategies``
   (how the shipped tasks and baselines, and third-party packages, are found).

A task file is its author's own code and runs in the main process, beside the loop, with
everything the user running it may do (like an installed task). A strategy file is untrusted: the
loop imports it only in the strategy's own sandboxed process (``collapselab.engine.sandbox``);
loading it here only describes it.

A strategy spec may carry parameters: ``mix[real_fraction=0.3]``. Every failure to find,
import or instantiate a plugin raises :class:`PluginError` naming the plugin and the problem.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from collapselab.contracts.params import parse_spec
from collapselab.contracts.strategy import Strategy, check_definition
from collapselab.contracts.task import Task
from collapselab.errors import ConfigError, ParameterError, PluginError

TASK_GROUP = "collapselab.tasks"
STRATEGY_GROUP = "collapselab.strategies"

_TASKS: dict[str, type[Task]] = {}
_STRATEGIES: dict[str, type[Strategy]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task findable by its ``name`` in this process (a name already taken
    by another class, registered or installed, is refused)."""
    _TASKS[_unclaimed_name("task", cls, _TASKS, TASK_GROUP)] = cls
    return cls


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make a strategy findable by its ``name`` in this process (a name already
    taken by another class, registered or installed, is refused)."""
    _STRATEGIES[_unclaimed_name("strategy", cls, _STRATEGIES, STRATEGY_GROUP)] = cls
    return cls


def _where(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _unclaimed_name(kind: str, cls: type, local: Mapping[str, type], group: str) -> str:
    """``cls``'s name, unless another class holds it: a second definition of a name is an error,
    not a silent replacement (the same class defined again, e.g. its module re-imported, is not)."""
    name = _checked_name(cls)
    holder = _where(local[name]) if name in local else getattr(_entry_points(group).get(name), "value", None)
    if holder is not None and holder != _where(cls):
        raise PluginError(f"{kind} name {name!r} is taken by {holder}; {_where(cls)} needs another name")
    return name


def _checked_name(cls: type) -> str:
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name:
        raise PluginError(f"{cls.__qualname__} needs a non-empty class attribute `name`")
    return name


def registered_strategy(name: str) -> type[Strategy] | None:
    """The class registered in this process under ``name`` (``None`` if there is none)."""
    return _STRATEGIES.get(name)


def _entry_points(group: str) -> dict[str, Any]:
    """The installed plugins of ``group``, read again whenever a folder on ``sys.path`` changes
    (an install or uninstall adds or removes its metadata folder there)."""
    return dict(_installed(group, _path_state()))


def _path_state() -> tuple[tuple[str, int | None], ...]:
    def mtime(entry: str) -> int | None:
        try:
            return os.stat(entry or ".").st_mtime_ns
        except OSError:
            return None

    return tuple((entry, mtime(entry)) for entry in sys.path)


@functools.lru_cache(maxsize=8)
def _installed(group: str, path_state: tuple[tuple[str, int | None], ...]) -> tuple[tuple[str, Any], ...]:
    """Reading every installed package's entry points takes ~10 ms: the leaderboard asks per entry and task."""
    return tuple((ep.name, ep) for ep in entry_points(group=group))


def task_names() -> list[str]:
    return sorted(set(_TASKS) | set(_entry_points(TASK_GROUP)))


def strategy_names() -> list[str]:
    return sorted(set(_STRATEGIES) | set(_entry_points(STRATEGY_GROUP)))


def _load(kind: str, name: str, local: Mapping[str, Any], group: str, base: Any) -> Any:
    if name in local:
        return local[name]
    eps = _entry_points(group)
    if name not in eps:
        known = ", ".join(sorted(set(local) | set(eps))) or "none"
        plural = {"task": "tasks", "strategy": "strategies"}[kind]
        raise PluginError(f"unknown {kind} {name!r}; known {plural}: {known}")
    try:
        cls: Any = eps[name].load()
    except Exception as exc:  # any import-time failure of a plugin is reported the same way
        raise PluginError(f"{kind} {name!r} ({eps[name].value}) failed to import: {type(exc).__name__}: {exc}") from exc
    _check_class(kind, name, cls, base)
    if cls.name != name:
        raise PluginError(f"{kind} entry point {name!r} loads a class named {cls.name!r}")
    return cls


def _check_class(kind: str, label: str, cls: Any, base: Any) -> None:
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise PluginError(f"{kind} {label!r} is {cls!r}, not a subclass of collapselab.{base.__name__}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"{kind} {label!r} needs a non-empty class attribute `name`")


def task_class(name: str) -> type[Task]:
    """The task class called ``name`` (registered or installed), or the one in ``path/to/file.py:ClassName``:
    a task file is its author's own code, imported and run in this process (not sandboxed, unlike a
    strategy file); its class's ``name`` may not be one that another task holds."""
    if not is_file_spec(name):
        return _load("task", name, _TASKS, TASK_GROUP, Task)
    cls: type[Task] = load_class_file("task", name, Task)
    _unclaimed_name("task", cls, _TASKS, TASK_GROUP)
    return cls


def missing_requirements(cls: type[Task]) -> list[str]:
    """The modules a task declares (``metadata.requires``) that are not installed."""
    return [module for module in cls.metadata.requires if importlib.util.find_spec(module) is None]


def install_hint(cls: type[Task]) -> str:
    """What to install for a task whose requirements are missing ("" when nothing is missing)."""
    missing = missing_requirements(cls)
    if not missing:
        return ""
    extra = f'pip install "collapselab[{cls.metadata.extra}]"' if cls.metadata.extra else f"pip install {' '.join(missing)}"
    return f"task {cls.name!r} needs {', '.join(missing)}, which are not installed: {extra}"


def make_task(name: str, preset: str = "cpu", overrides: Mapping[str, Any] | None = None) -> Task:
    cls = task_class(name)
    hint = install_hint(cls)
    if hint:
        raise PluginError(hint)
    try:
        return cls(preset=preset, overrides=overrides or {})
    except ConfigError:
        raise
    except Exception as exc:
        raise PluginError(f"task {name!r} failed to initialise: {type(exc).__name__}: {exc}") from exc


def load_module_file(file: Path, module_name: str) -> Any:
    """Import the Python file ``file`` as a module named ``module_name`` (kept in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot import {file}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise PluginError(f"failed to import: {type(exc).__name__}: {exc}") from exc
    return module


PLUGIN_MODULE_PREFIX = "collapselab_plugin_"


def plugin_module_name(file: Path) -> str:
    """The module name a task or strategy file is imported under (one per resolved path)."""
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]
    return f"{PLUGIN_MODULE_PREFIX}{file.stem}_{digest}"


def is_plugin_module(module_name: str) -> bool:
    """Whether ``module_name`` is a task or strategy file imported by :func:`load_class_file`."""
    return module_name.startswith(PLUGIN_MODULE_PREFIX)


def is_file_spec(name: str) -> bool:
    """Whether ``name`` points at a class in a Python file (``path/to/file.py:ClassName``)."""
    return ".py:" in name


def load_class_file(kind: str, spec: str, base: type) -> Any:
    """The class named by ``spec`` (``path/to/file.py:ClassName``), a subclass of ``base`` with a name.

    This imports the file, running its code in this process: call it for a strategy file only to
    describe the strategy, or in the strategy's own process (see the module docstring). Each
    failure (no such file, an import error, no such class, not a ``base``) is one :class:`PluginError`.
    """
    path, _, class_name = spec.rpartition(":")
    file = Path(path)
    if not file.is_file():
        raise PluginError(f"{kind} {spec!r}: no such file {file}")
    try:
        module = load_module_file(file, plugin_module_name(file))
    except PluginError as exc:
        raise PluginError(f"{kind} {spec!r} {exc}") from exc.__cause__
    if not hasattr(module, class_name):
        raise PluginError(f"{kind} {spec!r}: {file} defines no {class_name!r}")
    cls = getattr(module, class_name)
    _check_class(kind, spec, cls, base)
    return cls


def strategy_class(name: str) -> type[Strategy]:
    if is_file_spec(name):
        return load_class_file("strategy", name, Strategy)
    return _load("strategy", name, _STRATEGIES, STRATEGY_GROUP, Strategy)


def check_strategy_class(cls: Any, label: str) -> None:
    """``cls`` is a Strategy subclass with a name that implements ``training_pool`` and whose hooks are methods."""
    _check_class("strategy", label, cls, Strategy)
    check_definition(cls, label)


def make_strategy(spec: str) -> Strategy:
    """Build a strategy from ``name``, ``name[key=value,...]`` or ``file.py:Class[key=value]``."""
    try:
        name, params = parse_spec(spec)
    except ParameterError as exc:
        raise PluginError(f"strategy {spec!r}: {exc}") from None
    cls = strategy_class(name)
    check_strategy_class(cls, name)
    try:
        return cls(**params)
    except ParameterError as exc:
        raise PluginError(str(exc)) from None
    except Exception as exc:
        raise PluginError(f"strategy {name!r} failed to initialise: {type(exc).__name__}: {exc}") from exc


def source_sha256(obj: Callable[..., Any] | type) -> str | None:
    """SHA-256 of the source file that defines ``obj`` (recorded in manifests)."""
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        return None
    return file_sha256(Path(path)) if path else None


def file_sha256(path: Path) -> str | None:
    """SHA-256 of the file at ``path`` (``None`` if there is no such file)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
