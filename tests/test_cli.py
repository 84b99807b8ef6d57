"""The command line: list, show, run (table, run directories, --set, --wandb), report (tables, PNG,
files named by content), --version, file modes under the umask, a closed pipe."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from collapselab.cli.main import main
from collapselab.contracts.params import parse_seeds, parse_spec
from collapselab.errors import ParameterError


def test_parse_seeds_and_specs():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,5-6") == [0, 2, 5, 6]
    with pytest.raises(ParameterError):
        parse_seeds("4-2")
    with pytest.raises(ParameterError):
        parse_seeds("a")
    assert parse_spec("mix[real_fraction=0.3]") == ("mix", {"real_fraction": 0.3})
    assert parse_spec("x.py:Cls[a=1,b=true,c=text]") == ("x.py:Cls", {"a": 1, "b": True, "c": "text"})


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "linear_regression" in out and "fresh-real" in out and "yes (oracle)" in out and "real-only" in out


def test_run_prints_table_writes_runs_and_report(tmp_path, capsys):
    args = ["run", "--task", "linear_regression", "--strategy", "replace", "--preset", "smoke", "--seeds", "0-1",
            "--generations", "2", "--out", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "rep"),
            "--set", "dim=3", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("\n    1    2 ") == 1  # seed 1, generation 2 row
    assert "L_g/L_0" in out and "summary" in out
    runs = sorted((tmp_path / "runs").rglob("manifest.json"))
    assert len(runs) == 2
    assert all(json.loads(p.read_text())["task"]["config"]["dim"] == 3 for p in runs)
    assert list((tmp_path / "rep").glob("report-*-linear_regression-smoke-*.png"))


def test_report_over_several_strategies(tmp_path, capsys, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    for strategy in ("replace", "accumulate"):
        main(["run", "--task", "linear_regression", "--strategy", strategy, "--preset", "smoke", "--seeds", "0-2",
              "--out", str(tmp_path / "runs"), "--no-progress"])
    assert list((tmp_path / "runs" / "reports").glob("report-*.json")), "run's report goes inside --out by default"
    assert not (tmp_path / "cwd" / "reports").exists()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    accumulate_row = next(line for line in out.splitlines() if line.startswith("accumulate") and "±" in line)
    assert accumulate_row.split()[1] == "3"  # seeds
    reports = list((tmp_path / "rep").glob("report-*.json"))
    assert len(reports) == 1
    summary = json.loads(reports[0].read_text())["summary"]
    by_name = {row["strategy"].split("[")[0]: row for row in summary}
    assert by_name["replace"]["score"]["mean"] == 0.0
    assert 0.2 < by_name["accumulate"]["score"]["mean"] < 1.0  # at the budget: 20 of its 40-80 examples per fit
    assert (by_name["replace"]["track"], by_name["accumulate"]["track"]) == ("closed-loop", "augmentation")
    assert by_name["replace"]["synthetic_share"] == 1.0 and 0.5 < by_name["accumulate"]["synthetic_share"] < 1.0
    assert "augmentation" in accumulate_row and not by_name["accumulate"]["extra_compute"]
    png = next((tmp_path / "rep").glob("*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["run", "--task", "linear_regression", "--strategy", "replace", "--set", "dimm=3",
                 "--out", str(tmp_path)]) == 2
    assert "no config key 'dimm'; valid keys:" in capsys.readouterr().err
    assert main(["run", "--task", "linear_regression", "--strategy", "replace", "--set", "design=sideways",
                 "--out", str(tmp_path)]) == 2
    assert "config key 'design': Input should be 'fixed' or 'fresh', got 'sideways'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert main(["run", "--task", "linear_regression", "--strategy", "replace", "--preset", "huge",
                 "--out", str(tmp_path)]) == 2
    assert "has no preset 'huge'" in capsys.readouterr().err


def test_wandb_logs_offline_into_the_run_directory(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = ["run", "--task", "linear_regression", "--strategy", "accumulate", "--preset", "smoke",
            "--generations", "2", "--out", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "rep"),
            "--wandb", "--no-progress"]
    assert main(args) == 0
    offline = list((tmp_path / "runs").rglob("offline-run-*"))
    assert offline, "no offline W&B run was written"
    assert list(offline[0].rglob("*.wandb"))


def test_accelerator_names_are_checked_the_same_way_for_every_task():
    from collapselab.contracts import registry
    from collapselab.errors import ConfigError
    from collapselab.toolkit.devices import resolve_device

    assert str(resolve_device("cpu")) == "cpu"
    for task in ("mnist_vae", "text_lm", "conformer_diffusion"):
        with pytest.raises(ConfigError, match="config key 'accelerator': Input should be 'cpu', 'gpu', 'cuda', 'mps' or "
                                              "'auto', got 'tpu-v9'") as error:
            registry.make_task(task, "smoke", {"accelerator": "tpu-v9"})
        assert error.value.problems[0][0] == "accelerator"


def test_reports_never_replace_one_another_and_the_same_runs_give_the_same_files(tmp_path, capsys):
    runs, rep = tmp_path / "runs", tmp_path / "rep"
    common = ["--task", "linear_regression", "--preset", "smoke", "--out", str(runs), "--report-dir", str(rep)]
    assert main(["run", "--strategy", "replace", "--seeds", "0-1", *common]) == 0
    first = {p.name: p.read_bytes() for p in rep.iterdir()}
    assert main(["run", "--strategy", "accumulate", "--seeds", "0-1", *common]) == 0
    assert main(["report", str(runs), "--out", str(rep)]) == 0
    after = {p.name: p.read_bytes() for p in rep.iterdir()}
    assert len(after) == 3 * len(first)  # three reports (replace, accumulate, both), none overwritten
    assert all(after[name] == data for name, data in first.items())
    assert main(["report", str(runs / "linear_regression" / "replace"), "--out", str(rep)]) == 0
    assert {p.name: p.read_bytes() for p in rep.iterdir()} == after  # the same runs: the same names and bytes
    capsys.readouterr()


def test_files_get_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert main(["run", "--task", "linear_regression", "--strategy", "replace", "--preset", "smoke",
                     "--out", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "rep")]) == 0
    finally:
        os.umask(old)
    written = [*tmp_path.joinpath("rep").iterdir(), *tmp_path.joinpath("runs").rglob("*.json*")]
    assert written and {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o640}


def test_show_task_lists_every_config_key_with_each_presets_value(capsys):
    from collapselab.contracts import registry

    assert main(["show", "task", "text_lm"]) == 0
    out = capsys.readouterr().out
    cls = registry.task_class("text_lm")
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ") and line.split()}
    for key in cls.presets["cpu"]:
        assert lines[key][1:1 + len(cls.presets)] == [str(cls.presets[p][key]) for p in cls.presets], key
    assert "fit options" in out and "sampling options" in out and lines["temperature"][1:] == ["1.0"] * len(cls.presets)
    assert f"cpu {cls.presets['cpu']['steps']}" in out  # the compute budget of one fit
    assert cls.metadata.citation in out and "bits per byte" in out


def test_show_strategy_gives_parameters_citation_oracle_status_and_summary(capsys):
    assert main(["show", "strategy", "fresh-real"]) == 0
    out = capsys.readouterr().out
    assert "draws fresh real data" in out and "real_fraction" in out and "0.5" in out and "Alemohammad" in out
    assert "track" not in out.split("\n")[0]  # a track comes from a run's records, never from the class
    assert main(["show", "strategy", "verifier-filter"]) == 0
    assert "hooks beyond training_pool: curate, sample_size" in capsys.readouterr().out
    assert main(["show", "task", "no_such_task"]) == 2
    assert "unknown task 'no_such_task'; known tasks:" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("collapselab ")


def test_a_closed_pipe_ends_quietly():
    """``collapselab list | head -1``: the reader leaves early; no Broken pipe message."""
    process = subprocess.Popen([sys.executable, "-m", "collapselab", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.read(20)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Broken pipe" not in stderr and "Traceback" not in stderr, stderr
    assert process.returncode in (0, 141)


def test_progress_bars_only_on_a_terminal(tmp_path):
    """Off a terminal (a log file): one line per generation, no progress frames."""
    log = tmp_path / "log.txt"
    with log.open("w") as handle:
        subprocess.run([sys.executable, "-m", "collapselab", "run", "--task", "linear_regression", "--strategy", "replace",
                        "--preset", "smoke", "--generations", "3", "--out", str(tmp_path / "runs"),
                        "--report-dir", str(tmp_path / "rep")], stdout=handle, stderr=subprocess.STDOUT, check=True)
    text = log.read_text()
    assert "\r" not in text and "gen/s" not in text and "it/s" not in text
    assert sum(1 for line in text.splitlines() if line.startswith("    0    ")) == 4  # seed 0, generations 0..3
