"""Strategies run in their own process; the run only exchanges data with them.

The run's process holds the task, the evaluator, the provenance ledger and the run directory.
Strategy code never runs there: :class:`StrategyProcess` starts a clean template process
(:mod:`collapselab.engine.strategy_host`) that imports the strategy's class, and each job (describe
the strategy, check a task, play one generation) runs in a child forked afresh from that
template. What comes back is parsed as data (:mod:`collapselab.engine.wire`) and checked by the
loop as before. A child that overruns its time limit is killed with everything it started; a
child that dies, exits or sends garbage is one :class:`PluginError`.

This is isolation of the run from plugin code in Python's terms (no shared memory, no shared
objects, nothing pickled from the plugin), not an operating-system sandbox: a process of the
same user can still read files. Installed packages are trusted to import as any installed
package is (the parent packages of an entry point are imported to find its file); a strategy
given as ``path/to/file.py:Class`` is imported only in its own process.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib.util
import inspect
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from collapselab.contracts import registry
from collapselab.contracts.params import parse_spec
from collapselab.contracts.pool import Pool
from collapselab.contracts.strategy import Strategy
from collapselab.contracts.task import Task
from collapselab.engine import wire
from collapselab.errors import ParameterError, PluginError

TEXT_LIMIT = 10_000  # characters of a strategy's name or citation
KEEP_TEMPLATES = 4  # template processes kept alive for reuse (a sweep plans many strategies in one process)


@dataclass(frozen=True)
class StrategyHandle:
    """What a run knows of a strategy without running its code: how to find it and what it declared."""

    spec: str
    location: Mapping[str, Any]
    name: str
    params: Mapping[str, Any]
    citation: str
    uses_extra_real_data: bool
    requires_hooks: tuple[str, ...]
    source_sha256: str | None = field(default=None)


def _locate(name: str) -> tuple[dict[str, Any], str | None]:
    """Where the template finds the strategy called ``name``, and the SHA-256 of its source file."""
    if registry.is_file_spec(name):
        path = Path(name.rpartition(":")[0])
        if not path.is_file():
            raise PluginError(f"strategy {name!r}: no such file {path}")
        return {"spec": f"{path.resolve()}:{name.rpartition(':')[2]}"}, registry.file_sha256(path)
    registered = registry.registered_strategy(name)
    if registered is not None:
        return _class_location(registered), registry.source_sha256(registered)
    found = {ep.name: ep for ep in entry_points(group=registry.STRATEGY_GROUP)}
    if name not in found:
        registry.strategy_class(name)  # raises the registry's "unknown strategy" error
    module = found[name].value.partition(":")[0]
    try:
        origin = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise PluginError(f"strategy {name!r} ({found[name].value}) failed to import: {type(exc).__name__}: {exc}") from None
    source = Path(origin.origin) if origin is not None and origin.origin else None
    return {"spec": name}, (registry.file_sha256(source) if source is not None else None)


def _class_location(cls: type) -> dict[str, Any]:
    """How the template imports a class this process already has (by module, or by file for plugins)."""
    if "<locals>" in cls.__qualname__:
        raise PluginError(f"strategy class {cls.__qualname__} is defined inside a function; a strategy runs in its own "
                          "process, which imports its class: define it at the top level of a module or file")
    module = sys.modules.get(cls.__module__)
    plugin_file = registry.is_plugin_module(cls.__module__) or cls.__module__ == "__main__"
    file = inspect.getsourcefile(cls) if plugin_file else None
    if module is None or (plugin_file and not file):
        raise PluginError(f"strategy class {cls.__qualname__} has no source file its own process could import")
    return {"module": registry.plugin_module_name(Path(file)) if file else cls.__module__,
            "qualname": cls.__qualname__, "file": file}


def handle_of(strategy: Strategy, spec: str = "") -> StrategyHandle:
    """The handle of a strategy object this process already built (the Python API, tests)."""
    cls = type(strategy)
    return StrategyHandle(spec or strategy.name, _class_location(cls), strategy.name, dict(strategy.params),
                          str(strategy.citation), bool(strategy.uses_extra_real_data), tuple(strategy.requires_hooks),
                          registry.source_sha256(cls))


def describe(spec: str) -> StrategyHandle:
    """The handle of ``spec`` (``name``, ``name[k=v]``, ``file.py:Class[k=v]``), asked of the strategy's own process."""
    try:
        name, params = parse_spec(spec)
    except ParameterError as exc:
        raise PluginError(f"strategy {spec!r}: {exc}") from None
    location, sha = _locate(name)
    process = StrategyProcess.shared(location, params, sha)
    declared = process.run_job({"op": "describe"}, label=name)
    return StrategyHandle(spec, location, *_checked_declaration(declared, name), source_sha256=sha)


def task_fields(task: Task) -> dict[str, Any]:
    """The task's description (what a strategy may know of it) as JSON data."""
    described = task.describe()
    return {f.name: getattr(described, f.name) for f in dataclasses.fields(described)} | {
        "hooks": sorted(described.hooks), "config": dict(described.config),
        "fit_options": dict(described.fit_options), "sampling_options": dict(described.sampling_options),
        "resolved_config": dict(described.resolved_config)}


def check_task(strategy: StrategyHandle, task: Task) -> None:
    """The strategy's own verdict on running on ``task`` (:meth:`Strategy.check_task`, in its process)."""
    process = StrategyProcess.shared(strategy.location, strategy.params, strategy.source_sha256)
    process.run_job({"op": "check_task", "task": task_fields(task)}, strategy.name)


def _checked_declaration(declared: Any, label: str) -> tuple[str, dict[str, Any], str, bool, tuple[str, ...]]:
    """The declaration a strategy's process sent, type-checked (it is data from plugin code)."""
    try:
        name, params, citation = declared["name"], declared["params"], declared["citation"]
        extra, hooks = declared["uses_extra_real_data"], declared["requires_hooks"]
        assert isinstance(name, str) and 0 < len(name) <= 200 and isinstance(citation, str) and len(citation) <= TEXT_LIMIT
        assert isinstance(params, dict) and isinstance(extra, bool) and isinstance(hooks, list)
        assert all(isinstance(h, str) for h in hooks)
    except (KeyError, TypeError, AssertionError):
        raise PluginError(f"strategy {label!r}: its process sent a malformed declaration") from None
    return name, params, citation, extra, tuple(hooks)


class StrategyProcess:
    """The template process of one strategy (class and parameters); jobs run in children forked from it."""

    _shared: dict[str, StrategyProcess] = {}

    def __init__(self, location: Mapping[str, Any], params: Mapping[str, Any]) -> None:
        self.label = str(location.get("spec") or location.get("qualname"))
        self.params = dict(params)
        ours, theirs = socket.socketpair()
        self.control = ours
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "collapselab.engine.strategy_host", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
        )
        theirs.close()
        try:
            wire.send(ours, {"location": dict(location), "params": self.params, "sys_path": list(sys.path)})
            header, _ = wire.receive(ours)
        except (wire.WireError, OSError) as exc:
            self.close()
            raise PluginError(f"strategy {self.label!r}: its process did not start: {exc}") from None
        if "error" in header:
            self.close()
            raise wire.error_from(header)
        self.sent = 0  # synthetic pools the template holds for the current run

    @classmethod
    def shared(cls, location: Mapping[str, Any], params: Mapping[str, Any], source_sha256: str | None) -> StrategyProcess:
        """One template per (strategy, parameters, source) in this process, started on first use: a
        strategy file edited since its template started gets a new template, which imports the new code."""
        key = json.dumps([location, params, source_sha256], sort_keys=True, default=str)
        found = cls._shared.pop(key, None)
        if found is None or not found.alive():
            while len(cls._shared) >= KEEP_TEMPLATES:  # the least recently used template goes
                cls._shared.pop(next(iter(cls._shared))).close()
            found = cls(location, params)
        cls._shared[key] = found  # the most recently used is last
        return found

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.control.close()
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def send_pools(self, real: Pool | None, synthetic: list[Pool], reset: bool) -> None:
        """Give the template the pools its children will see (``reset``: a new run starts)."""
        tree, blobs = wire.encode({"real": real, "synthetic": synthetic})
        wire.send(self.control, {"op": "pools", "reset": reset, "value": tree}, blobs)
        self.sent = (0 if reset else self.sent) + len(synthetic)

    @contextlib.contextmanager
    def child(self, job: Mapping[str, Any], label: str, generation: int) -> Iterator[Child]:
        """A child forked for ``job``; killed (with whatever it started) when the block ends."""
        ours, theirs = socket.socketpair()
        try:
            wire.send(self.control, {"op": "fork", "job": dict(job)})
            socket.send_fds(self.control, [b"F"], [theirs.fileno()])
            theirs.close()
            header, _ = wire.receive(self.control)
        except (wire.WireError, OSError) as exc:
            ours.close()
            raise PluginError(f"strategy {label!r}: its process ended ({exc})") from None
        child = Child(self, ours, int(header["pid"]), label, generation)
        try:
            yield child
        finally:
            child.end()

    def run_job(self, job: Mapping[str, Any], label: str) -> Any:
        """Run a one-answer job (describe, check a task) in a fresh child and return its answer."""
        with self.child(job, label, 0) as child:
            return child.result(str(job["op"]), None)



def close_all() -> None:
    """Stop every template this process started (at exit, and for tests)."""
    for process in StrategyProcess._shared.values():
        process.close()
    StrategyProcess._shared.clear()


atexit.register(close_all)


class Child:
    """The parent's side of one forked child: answers arrive as data, task hooks are served here."""

    def __init__(self, process: StrategyProcess, sock: socket.socket, pid: int, label: str, generation: int) -> None:
        self.process, self.sock, self.pid = process, sock, pid
        self.label, self.generation = label, generation
        self.exit_code: int | None = None
        self.serve: Callable[[str, list[Any]], Any] | None = None
        self.resolve: Callable[[str], Any] | None = None

    def send(self, value: Any = None, references: Mapping[int, str] | None = None) -> None:
        tree, blobs = wire.encode(value, references)
        try:
            wire.send(self.sock, {"value": tree}, blobs)
        except OSError:
            raise self._ended("") from None

    def result(self, hook: str, timeout: float | None) -> Any:
        """The child's answer from ``hook``, serving the task hooks it calls meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                self.kill()
                raise PluginError(f"strategy {self.label!r} raised in {hook}() at generation {self.generation}: "
                                  f"HookTimeout: ran longer than the hook time limit of {timeout:g} s")
            try:
                header, blobs = wire.receive(self.sock)
                if "error" in header:
                    raise wire.error_from(header)
                value = wire.decode(header.get("value"), blobs, self.resolve)
            except wire.WireError as exc:
                raise self._ended(hook, exc) from None
            if "hook" in header:
                self._answer(str(header["hook"]), value)
            elif header.get("result") == hook:
                return value
            else:
                raise PluginError(f"strategy {self.label!r}: its process answered {header.get('result')!r} "
                                  f"when {hook}() was expected")

    def _answer(self, hook: str, args: Any) -> None:
        if self.serve is None or not isinstance(args, list):
            raise PluginError(f"strategy {self.label!r} called the task's {hook!r} hook where none is offered")
        try:
            value = self.serve(hook, args)
        except PluginError as exc:
            wire.send(self.sock, wire.error_header(exc))
            return
        tree, blobs = wire.encode(value)
        wire.send(self.sock, {"value": tree}, blobs)

    def _ended(self, hook: str, cause: Exception | None = None) -> PluginError:
        self.wait()
        how = (f"was killed by signal {signal.Signals(-self.exit_code).name}" if self.exit_code is not None and self.exit_code < 0
               else f"exited with status {self.exit_code}")
        where = f" in {hook}()" if hook else ""
        return PluginError(f"strategy {self.label!r}: its process {how}{where} at generation {self.generation} "
                           f"without answering ({cause or 'connection closed'})")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> None:
        """Wait until the template reports the child's end (and has cleared up after it)."""
        if self.exit_code is not None:
            return
        try:
            header, _ = wire.receive(self.process.control)
            self.exit_code = int(header["exited"])
        except (wire.WireError, OSError, KeyError, ValueError):
            self.process.close()  # a template that cannot report is not reused
            self.exit_code = -int(signal.SIGKILL)

    def end(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.exit_code is None:
            ready, _, _ = select.select([self.process.control], [], [], 2.0)
            if not ready:
                self.kill()
            self.wait()
