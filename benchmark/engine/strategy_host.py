"""The strategy's own process (``python -P -m collapselab.engine.strategy_host FD``).

A run never imports or calls strategy code itself. It starts this process, a clean template
that imports only the strategy's class (the plugin's import-time code runs here, never beside
the task or the evaluator), and for each generation the template forks a fresh child that
builds the strategy object, calls its hooks and sends back their results as data
(:mod:`collapselab.engine.wire`). The child ends with its generation, so nothing a strategy
does in one generation (module or class state, patches, threads, a changed directory,
processes it forked) survives into the next: every generation starts from the same template.
The task's hooks (verify, correct, reward, features, fresh real data) are called over the
same connection and run in the run's process, which checks everything that comes back.

The template holds copies of the pools a strategy may see (the real pool and the synthetic
generations kept so far); the run sends each new one once. The child's global random number
generators (``random``, ``numpy.random``, ``torch`` when loaded) are seeded from its
generation's stream, so a strategy that uses them gives the same numbers every time.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from collapselab.contracts import registry
from collapselab.contracts.pool import Pool
from collapselab.contracts.strategy import Budget, Strategy, StrategyContext, TaskHooks
from collapselab.contracts.task import TaskDescription
from collapselab.engine import guard, wire
from collapselab.errors import ParameterError, PluginError

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def load_class(location: dict[str, Any]) -> type[Strategy]:
    """The strategy class at ``location``: a registry spec, or a module (or file) and a qualified name."""
    if "spec" in location:
        cls = registry.strategy_class(str(location["spec"]))
    else:
        module_name, qualname = str(location["module"]), str(location["qualname"])
        try:
            if location.get("file"):
                module: Any = registry.load_module_file(Path(location["file"]), f"{module_name}")
            else:
                module = importlib.import_module(module_name)
            found: Any = module
            for part in qualname.split("."):
                found = getattr(found, part)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"strategy class {module_name}.{qualname} cannot be loaded: {type(exc).__name__}: {exc}") from None
        cls = found
    registry.check_strategy_class(cls, getattr(cls, "name", repr(cls)))
    return cls


class _Child:
    """One forked child: builds the strategy, answers one job over ``sock``, then exits."""

    def __init__(self, cls: type[Strategy], params: dict[str, Any], sock: socket.socket,
                 real: Pool | None, synthetic: list[Pool]) -> None:
        self.cls, self.params, self.sock = cls, params, sock
        self.real, self.synthetic = real, synthetic
        self.name = str(getattr(cls, "name", "?"))
        self.pid = os.getpid()

    def send(self, header: dict[str, Any], value: Any = None, references: dict[int, str] | None = None) -> None:
        if os.getpid() != self.pid:  # a process the strategy forked: only the child itself answers the run
            os._exit(0)
        tree, blobs = wire.encode(value, references)
        wire.send(self.sock, {**header, "value": tree}, blobs)

    def receive(self) -> Any:
        header, blobs = wire.receive(self.sock)
        if "error" in header:
            raise wire.error_from(header)
        return wire.decode(header.get("value"), blobs)

    def call(self, hook: str, generation: int, fn: Callable[..., Any], *args: Any) -> Any:
        return guard.call_strategy(self.name, hook, generation, fn, *args)

    def build(self, generation: int) -> Strategy:
        return guard.call_strategy(self.name, "__init__", generation, lambda: self.cls(**self.params))

    def hooks(self, offered: list[str]) -> TaskHooks:
        def remote(name: str) -> Callable[..., Any]:
            def hook(*args: Any) -> Any:
                self.send({"hook": name}, list(args))
                return self.receive()
            return hook

        return TaskHooks(**{name: remote(name) for name in offered})

    def run(self, job: dict[str, Any]) -> None:
        kind = job["op"]
        if kind == "describe":
            strategy = self.describe()
            self.send({"result": "describe"}, {
                "name": strategy.name, "params": dict(strategy.params), "citation": str(strategy.citation),
                "uses_extra_real_data": bool(strategy.uses_extra_real_data),
                "requires_hooks": [str(h) for h in strategy.requires_hooks]})
        elif kind == "check_task":
            strategy = self.build(0)
            try:
                strategy.check_task(_description(job["task"]))
            except PluginError:
                raise  # the strategy's own verdict, word for word
            except Exception as exc:
                raise PluginError(f"strategy {self.name!r} raised in check_task(): {type(exc).__name__}: {exc}") from exc
            self.send({"result": "check_task"})
        else:
            self.generation(job)

    def describe(self) -> Strategy:
        try:
            return self.cls(**self.params)
        except ParameterError as exc:
            raise PluginError(str(exc)) from None
        except Exception as exc:
            raise PluginError(f"strategy {self.name!r} failed to initialise: {type(exc).__name__}: {exc}") from exc

    def generation(self, job: dict[str, Any]) -> None:
        g = int(job["generation"])
        assert self.real is not None
        description, budget = _description(job["task"]), Budget(**job["budget"])
        hooks = self.hooks(list(job["hooks"]))

        def context(phase: str, synthetic: list[Pool]) -> StrategyContext:
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = job["rng"][phase]
            return StrategyContext(g, self.real, tuple(synthetic), description, rng, budget, _hooks=hooks)  # type: ignore[arg-type]

        strategy = self.build(g)
        ctx = context("curate", self.synthetic)
        self.send({"result": "sample_size"}, self.call("sample_size", g, strategy.sample_size, ctx))
        self.send({"result": "sampling_options"}, self.call("sampling_options", g, strategy.sampling_options, ctx))
        samples = self.receive().sealed()
        curated = self.call("curate", g, strategy.curate, ctx, samples)
        self.send({"result": "curate"}, curated, {id(samples): "samples"})
        self.receive()  # the run accepted the curated samples
        kept = curated.sealed() if curated is not samples else samples
        history = [*self.synthetic, kept]
        ctx = context("strategy", history)
        references = {id(self.real): "real", **{id(pool): f"synthetic:{h}" for h, pool in enumerate(history, start=1)}}
        self.send({"result": "training_pool"}, self.call("training_pool", g, strategy.training_pool, ctx), references)
        self.send({"result": "fit_options"}, self.call("fit_options", g, strategy.fit_options, ctx))


def _description(fields: dict[str, Any]) -> TaskDescription:
    return TaskDescription(**{**fields, "hooks": frozenset(fields["hooks"])})


def _seed_globals(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def _child_main(cls: type[Strategy], params: dict[str, Any], job: dict[str, Any], sock: socket.socket,
                real: Pool | None, synthetic: list[Pool]) -> None:
    os.setsid()  # its own process group: the template kills whatever it leaves behind
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _seed_globals(int(job.get("seed", 0)))
    child = _Child(cls, params, sock, real, synthetic)
    try:
        child.run(job)
    except PluginError as exc:
        with contextlib.suppress(Exception):
            wire.send(sock, wire.error_header(exc))
    except wire.WireError:
        pass


def _reap_leftovers(pid: int) -> None:
    """Kill what the child left behind: its process group and every orphan adopted by this template."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for _ in range(50):
        orphans = _children()
        if not orphans:
            return
        for orphan in orphans:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(orphan, signal.SIGKILL)
        for orphan in orphans:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(orphan, 0)
        time.sleep(0.001)


def _children() -> list[int]:
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == me:
            found.append(int(entry.name))
    return found


def _serve(control: socket.socket, cls: type[Strategy], params: dict[str, Any]) -> None:
    real: Pool | None = None
    synthetic: list[Pool] = []
    while True:
        try:
            header, blobs = wire.receive(control)
        except wire.WireError:
            return  # the run closed the connection
        if header["op"] == "pools":
            value = wire.decode(header["value"], blobs)
            if header.get("reset"):
                real, synthetic = None, []
            real = value["real"].sealed() if value.get("real") is not None else real
            synthetic.extend(pool.sealed() for pool in value["synthetic"])
            continue
        _, fds, _, _ = socket.recv_fds(control, 1, 1)
        sock = socket.socket(fileno=fds[0])
        pid = os.fork()
        if pid == 0:
            control.close()
            try:
                _child_main(cls, params, header["job"], sock, real, synthetic)
            finally:
                os._exit(0)
        sock.close()
        wire.send(control, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _reap_leftovers(pid)
        wire.send(control, {"exited": os.waitstatus_to_exitcode(status)})


def main(argv: list[str]) -> int:
    """Serve one strategy over the control socket whose descriptor is ``argv[1]``."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle
    control = socket.socket(fileno=int(argv[1]))
    header, _ = wire.receive(control)
    sys.path[:] = [str(p) for p in header["sys_path"]]
    try:
        cls = load_class(header["location"])
    except PluginError as exc:
        wire.send(control, wire.error_header(exc))
        return 1
    wire.send(control, {"ok": True})
    _serve(control, cls, dict(header["params"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
