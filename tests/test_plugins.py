"""Strategy plugins: every way a plugin can be broken gets one clear error, and the run
directory stays consistent."""

from __future__ import annotations

import subprocess
import sys

import pytest

from collapselab.contracts import registry
from collapselab.engine import rundir as results
from collapselab.errors import PluginError
from tests.helpers import run_strategy

HEADER = "from collapselab import Strategy, Pool\n\n"


def plugin(tmp_path, body: str, name: str = "plug.py") -> str:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return str(path)


@pytest.mark.parametrize(
    "body,cls,message",
    [
        ("import not_a_module_anywhere\n", "X", "failed to import: ModuleNotFoundError"),
        ("def broken(:\n", "X", "failed to import: SyntaxError"),
        ("raise RuntimeError('boom at import')\n", "X", "boom at import"),
        ("class Y(Strategy):\n    name = 'y'\n    def training_pool(self, ctx):\n        return ctx.latest\n", "X",
         "defines no 'X'"),
        ("class Y(Strategy):\n    name = 'y'\n", "Y", "'Y' does not implement the required method training_pool"),
        ("class X:\n    name = 'x'\n    def training_pool(self, ctx):\n        return ctx.latest\n", "X",
         "not a subclass of collapselab.Strategy"),
        ("class X(Strategy):\n    name = 'x'\n", "X", "does not implement the required method training_pool"),
        ("class X(Strategy):\n    def training_pool(self, ctx):\n        return ctx.latest\n", "X",
         "non-empty class attribute `name`"),
        ("class X(Strategy):\n    name = 'x'\n    def __init__(self, **kw):\n        raise ValueError('no')\n"
         "    def training_pool(self, ctx):\n        return ctx.latest\n", "X", "failed to initialise: ValueError: no"),
    ],
)
def test_broken_plugin_files_name_the_plugin_and_the_problem(tmp_path, body, cls, message):
    path = plugin(tmp_path, body)
    with pytest.raises(PluginError, match=message) as info:
        registry.make_strategy(f"{path}:{cls}")
    assert str(path) in str(info.value) or "'x'" in str(info.value)


def test_missing_file_and_unknown_names():
    with pytest.raises(PluginError, match="no such file"):
        registry.make_strategy("/nonexistent/dir/strategy.py:Mine")
    with pytest.raises(PluginError, match="unknown strategy 'nope'.*known strategies: accumulate"):
        registry.make_strategy("nope")
    with pytest.raises(PluginError, match="unknown task 'nope'"):
        registry.make_task("nope")


def test_parameters_are_checked():
    assert registry.make_strategy("mix[real_fraction=0.2]").real_fraction == 0.2
    with pytest.raises(PluginError, match="no parameter 'fraction'.*real_fraction"):
        registry.make_strategy("mix[fraction=0.2]")
    with pytest.raises(PluginError, match="expects a finite number"):
        registry.make_strategy("mix[real_fraction=lots]")
    with pytest.raises(PluginError, match=r"real_fraction must be in \[0, 1\]"):
        registry.make_strategy("mix[real_fraction=1.5]")
    with pytest.raises(PluginError, match="expected key=value"):
        registry.make_strategy("mix[real_fraction]")


RUNTIME_FAILURES = {
    "wrong type": ("def training_pool(self, ctx):\n        return [1, 2]\n",
                   "training_pool\\(\\) returned list, expected a collapselab.Pool"),
    "raises": ("def training_pool(self, ctx):\n        if ctx.generation == 2:\n            raise ValueError('bad gen')\n"
               "        return ctx.latest\n", "raised in training_pool\\(\\) at generation 2: ValueError: bad gen"),
    "empty pool": ("def training_pool(self, ctx):\n        return ctx.latest.subset([])\n", "returned an empty pool"),
    "foreign payload": ("def training_pool(self, ctx):\n        import numpy as np\n"
                        "        return Pool({'z': np.zeros((3, 200))}, -1, replicas=200)\n",
                        "the task's pools have \\('row', 'y'\\)"),
    "unknown option": ("def training_pool(self, ctx):\n        return ctx.latest\n"
                       "    def fit_options(self, ctx):\n        return {'learning_rate': 1.0}\n",
                       "unknown fit option\\(s\\) \\['learning_rate'\\]; this task's fit options: "
                       "examples, regularise_generator, ridge_lambda"),
    "curate raises": ("def training_pool(self, ctx):\n        return ctx.latest\n"
                      "    def curate(self, ctx, samples):\n        return 1 / 0\n",
                      "raised in curate\\(\\) at generation 1: ZeroDivisionError"),
    "fresh real without declaring": ("def training_pool(self, ctx):\n        return ctx.fresh_real(5)\n",
                                     "only a strategy declaring uses_extra_real_data = True may draw fresh real data"),
    "forged real items": ("def training_pool(self, ctx):\n        import numpy as np\n"
                          "        return Pool({'row': ctx.real['row'], 'y': ctx.real['y'] * 0.0}, -1, replicas=ctx.real.replicas)\n",
                          "returned 20 item\\(s\\) marked real that are not real items the loop produced"),
    "forged samples": ("def curate(self, ctx, samples):\n        return Pool({'row': samples['row'], 'y': samples['y'] + 1.0}, "
                       "samples.origin, replicas=samples.replicas)\n    def training_pool(self, ctx):\n        return ctx.latest\n",
                       "curate\\(\\) at generation 1 returned 20 item\\(s\\) marked synthetic \\(generation 1\\)"),
    "writes into the real pool": ("def training_pool(self, ctx):\n        ctx.real['y'].flags.writeable = True\n"
                                  "        return ctx.latest\n",
                                  "raised in training_pool\\(\\) at generation 1: ValueError: cannot set WRITEABLE flag"),
    "exits": ("def training_pool(self, ctx):\n        import sys\n        sys.exit(0)\n",
              "called sys.exit\\(0\\) in training_pool\\(\\) at generation 1"),
}


@pytest.mark.parametrize("case", sorted(RUNTIME_FAILURES))
def test_misbehaving_plugin_stops_cleanly(tmp_path, case):
    method, message = RUNTIME_FAILURES[case]
    path = plugin(tmp_path, "class Bad(Strategy):\n    name = 'bad'\n\n    " + method)
    with pytest.raises(PluginError, match=message) as info:
        run_strategy(tmp_path / "runs", "linear_regression", f"{path}:Bad", generations=3)
    assert "strategy 'bad'" in str(info.value) or "bad." in str(info.value)
    (run,) = results.find_runs([tmp_path / "runs"])
    assert run.manifest.status == "failed"
    assert run.manifest.error.message == str(info.value)
    failed_at = run.manifest.error.generation
    assert [r.generation for r in run.records] == list(range(failed_at))
    assert failed_at >= 1  # generation 0 never calls the strategy


def test_command_line_prints_one_line_and_exits_2(tmp_path):
    path = plugin(tmp_path, "class Bad(Strategy):\n    name = 'bad'\n\n    " + RUNTIME_FAILURES["wrong type"][0])
    result = subprocess.run(
        [sys.executable, "-m", "collapselab", "run", "--task", "linear_regression", "--strategy", f"{path}:Bad",
         "--preset", "smoke", "--out", str(tmp_path / "runs"), "--no-progress"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "collapselab: error: bad.training_pool() returned list, expected a collapselab.Pool" in result.stderr
    assert "Traceback" not in result.stderr


def test_entry_point_and_decorator_registration():
    from collapselab import Strategy, register_strategy

    @register_strategy
    class InProcess(Strategy):
        name = "in-process-test"

        def training_pool(self, ctx):
            return ctx.latest

    assert "in-process-test" in registry.strategy_names()
    assert isinstance(registry.make_strategy("in-process-test"), InProcess)
    assert {"replace", "accumulate", "mix", "fresh-real", "verifier-filter"} <= set(registry.strategy_names())
    assert "linear_regression" in registry.task_names()


def test_registration_refuses_a_second_definition_of_a_name():
    from collapselab import Strategy, register_strategy
    from collapselab.errors import PluginError

    class Shadow(Strategy):
        name = "mix"

        def training_pool(self, ctx):
            return ctx.latest

    with pytest.raises(PluginError, match=r"strategy name 'mix' is taken by collapselab.baselines.mix:Mix"):
        register_strategy(Shadow)
    assert registry.strategy_class("mix").__module__ == "collapselab.baselines.mix"

    def define():
        class Twice(Strategy):
            name = "defined-twice-test"

            def training_pool(self, ctx):
                return ctx.latest
        return Twice

    first = register_strategy(define())
    register_strategy(define())  # the same class defined again (same module and qualified name) is accepted

    class Other(Strategy):
        name = "defined-twice-test"

        def training_pool(self, ctx):
            return ctx.latest

    with pytest.raises(PluginError, match="'defined-twice-test' is taken by"):
        register_strategy(Other)
    assert registry.strategy_class("defined-twice-test").__qualname__ == first.__qualname__


def test_a_plugin_that_writes_into_real_memory_changes_nothing(tmp_path):
    """A write that bypasses NumPy's read-only flag (ctypes) lands in the strategy's own process:
    the run's real pool is untouched and the numbers are replace's."""
    body = ("def training_pool(self, ctx):\n        import ctypes\n        y = ctx.real['y']\n"
            "        ctypes.memset(y.ctypes.data, 0, 8)\n        return ctx.latest\n")
    path = plugin(tmp_path, "class Bad(Strategy):\n    name = 'bad'\n\n    " + body)
    written = run_strategy(tmp_path / "runs", "linear_regression", f"{path}:Bad", generations=2)
    replace = run_strategy(tmp_path / "replace", "linear_regression", "replace", generations=2)
    assert [r.metrics for r in written.records] == [r.metrics for r in replace.records]


def test_state_kept_on_the_strategy_cannot_change_the_numbers(tmp_path):
    """The loop builds the strategy afresh each generation: an interrupted and resumed run of a
    strategy that counts its calls ends with the numbers of an uninterrupted one."""
    body = ("def training_pool(self, ctx):\n        self.calls = getattr(self, 'calls', 0) + 1\n"
            "        return ctx.latest if self.calls == 1 else ctx.accumulated()\n")
    path = plugin(tmp_path, "class Counting(Strategy):\n    name = 'counting'\n\n    " + body)
    straight = run_strategy(tmp_path / "a", "linear_regression", f"{path}:Counting", generations=3)
    run_strategy(tmp_path / "b", "linear_regression", f"{path}:Counting", generations=1)
    resumed = run_strategy(tmp_path / "b", "linear_regression", f"{path}:Counting", generations=3)
    assert [r.metrics for r in resumed.records] == [r.metrics for r in straight.records]
    assert all(r.composition.real == 0 for r in straight.records[1:])  # always the first call's choice


def test_an_edited_strategy_file_starts_a_new_run_beside_the_old_one(tmp_path):
    """A strategy file's source hash is part of its run directory's name: re-running the same command
    after an edit starts a new run (instead of refusing the directory of the old code), and the old
    run stays complete; an unchanged file resumes its own run."""
    from collapselab.engine.identity import RunIdentity

    body = "def training_pool(self, ctx):\n        return ctx.latest\n"
    path = plugin(tmp_path, "class Mine(Strategy):\n    name = 'mine'\n\n    " + body)
    first = run_strategy(tmp_path / "runs", "linear_regression", f"{path}:Mine", generations=2)
    again = run_strategy(tmp_path / "runs", "linear_regression", f"{path}:Mine", generations=2)
    assert again.path == first.path and first.path.parent.parent.name.startswith("mine-src")
    plugin(tmp_path, "class Mine(Strategy):\n    name = 'mine'\n\n    " + body.replace("ctx.latest", "ctx.accumulated()"))
    edited = run_strategy(tmp_path / "runs", "linear_regression", f"{path}:Mine", generations=2)
    assert edited.path != first.path and edited.complete and results.load_run(first.path).complete
    assert edited.records[2].composition.total > first.records[2].composition.total  # the edit took effect
    assert RunIdentity.from_manifest(edited.manifest).strategy.folder == edited.path.parent.parent.name  # read back, too
    # a registered strategy's directory keeps its plain name (the shipped baselines' runs are found where they are)
    assert run_strategy(tmp_path / "runs", "linear_regression", "replace", generations=1).path.parent.parent.name == "replace"


def test_a_hook_past_its_time_limit_is_a_plugin_error(tmp_path):
    from collapselab.engine.loop import RunSpec, execute

    path = plugin(tmp_path, "class Slow(Strategy):\n    name = 'slow'\n\n    def training_pool(self, ctx):\n"
                            "        import time\n        time.sleep(30)\n        return ctx.latest\n")
    spec = RunSpec(registry.make_task("linear_regression", "smoke"), registry.make_strategy(f"{path}:Slow"), 0, 2,
                   tmp_path / "runs", command=["pytest"], hook_timeout=0.5)
    with pytest.raises(PluginError, match="ran longer than the hook time limit of 0.5 s"):
        execute(spec, progress=False)


def test_a_plugin_installed_while_running_is_found(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ghost-strategy" not in registry.strategy_names()  # read (and remembered) before the install
    dist = tmp_path / "ghost-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ghost\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[collapselab.strategies]\nghost-strategy = ghost_module:Ghost\n")
    assert "ghost-strategy" in registry.strategy_names()


TASK_HEADER = "from collapselab import Task\n\n"


@pytest.mark.parametrize(
    "body,cls,message",
    [
        ("import not_a_module_anywhere\n", "T", r"task '.*task\.py:T' failed to import: ModuleNotFoundError"),
        ("def broken(:\n", "T", "failed to import: SyntaxError"),
        ("class U(Task):\n    pass\n", "T", r"task '.*task\.py:T': .*task\.py defines no 'T'"),
        ("class T:\n    name = 't'\n", "T", r"task '.*task\.py:T' is <class .*>, not a subclass of collapselab\.Task"),
        ("class T(Task):\n    name = 't'\n", "T", "failed to import: TypeError: task class .*`version` must be a non-empty string"),
        ("from collapselab.tasks.linear_regression import LinearRegressionTask\n\n"
         "class T(LinearRegressionTask):\n    name = 'linear_regression'\n", "T",
         "task name 'linear_regression' is taken by collapselab.tasks.linear_regression"),
    ],
)
def test_broken_task_files_get_one_line_naming_the_file_and_the_problem(tmp_path, body, cls, message):
    path = tmp_path / "task.py"
    path.write_text(TASK_HEADER + body)
    with pytest.raises(PluginError, match=message) as info:
        registry.task_class(f"{path}:{cls}")
    assert "\n" not in str(info.value)
    with pytest.raises(PluginError, match=message):
        registry.make_task(f"{path}:{cls}", "smoke")


def test_a_missing_task_file_is_one_line_on_the_command_line(tmp_path):
    task = "nowhere/my_task.py:MyTask"
    for command in (["run", "--task", task, "--strategy", "replace", "--preset", "smoke", "--out", "runs"],
                    ["sweep", "--task", task, "--strategies", "replace", "--preset", "smoke", "--out", "runs"],
                    ["check", task]):
        result = subprocess.run([sys.executable, "-m", "collapselab", *command], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        line = result.stderr.strip()
        assert line.startswith("collapselab: error: ") and line.endswith(f"{task!r}: no such file nowhere/my_task.py")
        assert "\n" not in line


def test_check_tells_a_task_file_from_a_strategy_file_without_running_it(tmp_path):
    from collapselab.operations.plugins.contract_suite import spec_kind

    (tmp_path / "t.py").write_text("raise SystemExit('never run')\nfrom x import TorchTask\n\n"
                                   "class Base(TorchTask):\n    pass\n\nclass Mine(Base):\n    name = 'mine'\n")
    (tmp_path / "s.py").write_text("raise SystemExit('never run')\nfrom collapselab.baselines.mix import Mix\n\n"
                                   "class Mine(Mix):\n    name = 'mine'\n")
    assert spec_kind(f"{tmp_path}/t.py:Mine") == "task"
    assert spec_kind(f"{tmp_path}/s.py:Mine[real_fraction=0.1]") == "strategy"
    assert spec_kind("linear_regression") == "task" and spec_kind("mix[real_fraction=0.1]") == "strategy"
    with pytest.raises(PluginError, match="'nope' is neither a task nor a strategy"):
        spec_kind("nope")


def test_check_fails_a_task_that_breaks_the_contract_and_exits_1(tmp_path):
    """The README's task with a fit that spends the pool's size instead of the budget: one FAIL line, exit 1."""
    from tests.test_readme import README, runnable_blocks

    code = dict(runnable_blocks(README.read_text()))["my_task.py"]
    broken = code.replace("Compute(examples=examples, steps=0)", "Compute(examples=len(pool), steps=0)")
    assert broken != code
    (tmp_path / "my_task.py").write_text(broken)
    result = subprocess.run([sys.executable, "-m", "collapselab", "check", "my_task.py:MyTask", "--with", "replace"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert ("FAIL  fit spends exactly the budget whatever the pool size (my_task.py:MyTask): "
            "a fit on 3 examples spent 3 examples, not the budget 200") in lines
    assert "PASS  completes and resumes identically (my_task.py:MyTask / replace)" in lines
    assert lines[-1] == "5 passed, 1 failed, 1 not applicable"


def test_a_task_files_source_hash_is_its_own_file_not_the_scripts_beside_it(tmp_path):
    """A run records (and resume compares) the task's source hash: for a task file it covers that file only,
    so editing a script beside it changes nothing, and editing the task does."""
    from collapselab.engine import sources
    from tests.test_readme import README, runnable_blocks

    code = dict(runnable_blocks(README.read_text()))["my_task.py"]
    (tmp_path / "my_task.py").write_text(code)
    (tmp_path / "notes.py").write_text("print('a script beside the task')\n")
    spec = f"{tmp_path}/my_task.py:MyTask"
    first = sources.task_source_sha256(registry.task_class(spec))
    (tmp_path / "notes.py").write_text("print('edited')\n")
    assert sources.task_source_sha256(registry.task_class(spec)) == first
    (tmp_path / "my_task.py").write_text(code.replace('version = "1.0"', 'version = "1.1"'))
    assert sources.task_source_sha256(registry.task_class(spec)) != first


def test_a_strategy_class_is_checked_where_it_is_defined():
    """A class that names itself is checked as it is defined, not first when a run makes it."""
    from collapselab import Strategy

    with pytest.raises(PluginError, match="'NoPool' does not implement the required method training_pool"):
        class NoPool(Strategy):
            name = "no-pool"
    with pytest.raises(PluginError, match="curate must be a method"):
        class NotCallable(Strategy):
            name = "not-callable"
            curate = 3

            def training_pool(self, ctx):
                return ctx.latest

    class Base(Strategy):  # an intermediate base class names nothing and is not checked
        pass

    class Latest(Base):
        name = "latest-only"

        def training_pool(self, ctx):
            return ctx.latest

    assert Latest.name == "latest-only"


def test_a_partner_named_twice_is_checked_once():
    """The suite's runs share one folder (and so generation 0): a pair named twice would meet its own finished run."""
    from collapselab.operations.plugins import contract_suite

    kind, cases = contract_suite.cases_for("linear_regression", None, ["replace", "mix", "replace"])
    titles = [case.title for case in cases if case.title.startswith("completes")]
    assert kind == "task" and titles == ["completes and resumes identically (linear_regression / replace)",
                                         "completes and resumes identically (linear_regression / mix)"]
