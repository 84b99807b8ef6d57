"""The README's Python examples run as written.

A fenced ```python block whose first line is a comment naming a file (``# my_strategy.py`` or
``# notebook.py: what it shows``) is a complete script: every such block is saved under its name
in one temporary folder and run there in the README's order, so later blocks can use earlier
ones (the notebook example runs the strategy example). The examples use the smoke preset.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
NAMED = re.compile(r"^# ([\w.-]+\.py)\b")


def runnable_blocks(text: str) -> list[tuple[str, str]]:
    """(file name, code) of every runnable python block, in order."""
    found = []
    for match in BLOCK.finditer(text):
        code = match.group(1)
        named = NAMED.match(code)
        if named:
            found.append((named.group(1), code))
    return found


def test_the_readme_python_examples_run(tmp_path):
    blocks = runnable_blocks(README.read_text())
    assert [name for name, _ in blocks] == ["my_strategy.py", "my_task.py", "notebook.py"]
    for name, code in blocks:
        (tmp_path / name).write_text(code)
    outputs = []
    for name, _ in blocks:
        done = subprocess.run([sys.executable, name], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"README example {name} failed:\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    assert "recent-window[window=3]" in outputs[-1] and "metrics.loss" in outputs[-1]
    seeds = sorted(p.name for p in (tmp_path / "runs" / "linear_regression").glob("recent-window-*/smoke/seed-*"))
    assert seeds == ["seed-0", "seed-1", "seed-2"]


def test_the_readme_names_the_context_fields_that_exist():
    from collapselab.contracts.strategy import StrategyContext

    text = README.read_text()
    assert not re.search(r"ctx\.g\b", text) and "from benchmark import" not in text
    fields = set(StrategyContext.__dataclass_fields__) | {name for name in dir(StrategyContext) if not name.startswith("_")}
    for used in set(re.findall(r"ctx\.(\w+)", text)):
        assert used in fields, f"the README uses ctx.{used}, which StrategyContext does not have"


BASH = re.compile(r"^ *```bash\n(.*?)^ *```", re.S | re.M)
SPEC = re.compile(r"\b([a-z][a-z0-9-]*\[[^\]\s`\"']+\])")


def readme_commands(text: str) -> list[str]:
    """Every ``collapselab ...`` line of the README's bash blocks (continuation lines joined, comments cut)."""
    found = []
    for block in BASH.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("collapselab "):
                found.append(line)
    return found


def test_every_readme_command_parses_with_the_command_line_it_documents():
    import shlex

    from collapselab.cli.main import build_parser

    commands = readme_commands(README.read_text())
    assert len(commands) >= 10 and any(c.startswith("collapselab leaderboard rank") for c in commands)
    parser = build_parser()
    for command in commands:
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit as exc:  # argparse's way of refusing
            raise AssertionError(f"the README's command does not parse: {command}") from exc


def test_every_strategy_spec_in_the_readme_makes_a_strategy():
    from collapselab.contracts import registry
    from collapselab.operations.execution import grid

    installed = set(registry.strategy_names())
    specs = {spec for spec in SPEC.findall(README.read_text()) if spec.split("[", 1)[0] in installed}
    assert {"mix[real_fraction=0.5]", "verifier-filter[quality=0.5,1,accumulate=true,false]"} <= specs, specs
    for spec in sorted(specs):
        for one in grid.expand(spec):
            registry.make_strategy(one)  # raises ParameterError on a parameter the strategy does not have


def test_the_readme_task_runs_and_passes_the_contract_suite(tmp_path):
    """The one-file task of "Write a task", written from the README alone, runs with the README's
    commands from a folder outside the package, passes ``collapselab check`` and sweeps."""
    import json
    import shlex

    text = README.read_text()
    (tmp_path / "my_task.py").write_text(dict(runnable_blocks(text))["my_task.py"])
    commands = [c for c in readme_commands(text) if "my_task.py:MyTask" in c]
    assert [c.split()[1] for c in commands] == ["run", "check", "sweep"], commands
    outputs = []
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "collapselab", *shlex.split(command)[1:]],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    run_dir = tmp_path / "runs" / "my_task" / "replace" / "smoke" / "seed-0"
    records = [json.loads(line) for line in (run_dir / "generations.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in records] == [0, 1, 2, 3]
    assert all(r["metrics"]["loss"] > 0 for r in records) and records[0]["compute"]["examples"] == 200
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
    check = outputs[1].splitlines()
    assert not [line for line in check if line.startswith("FAIL")]
    assert "PASS  fit spends exactly the budget whatever the pool size (my_task.py:MyTask)" in check
    assert "PASS  completes and resumes identically (my_task.py:MyTask / replace)" in check
    assert "1 already complete" in outputs[2]  # the sweep's replace seed 0 is the run above: one identity
    assert sorted(p.name for p in (tmp_path / "runs" / "my_task").glob("*/smoke/seed-*")) == ["seed-0", "seed-0", "seed-1", "seed-1"]
