"""The command line: list, run (table, run directories, --set, --wandb), report (tables, PNG)."""

from __future__ import annotations

import json

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
    assert "linear_regression" in out and "fresh-real" in out and "extra real data" in out


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
    assert list((tmp_path / "rep").glob("report-linear_regression-smoke-*.png"))


def test_report_over_several_strategies(tmp_path, capsys):
    for strategy in ("replace", "accumulate"):
        main(["run", "--task", "linear_regression", "--strategy", strategy, "--preset", "smoke", "--seeds", "0-2",
              "--out", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "ignored"), "--no-progress"])
    capsys.readouterr()
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    accumulate_row = next(line for line in out.splitlines() if line.startswith("accumulate ") and "±" in line)
    assert accumulate_row.split()[1] == "3"  # seeds
    summary = json.loads((tmp_path / "rep" / "report.json").read_text())["summary"]
    by_name = {row["strategy"]: row for row in summary}
    assert by_name["replace"]["score"]["mean"] == 0.0
    assert 0.5 < by_name["accumulate"]["score"]["mean"] <= 1.2
    png = next((tmp_path / "rep").glob("*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["run", "--task", "linear_regression", "--strategy", "replace", "--set", "dimm=3",
                 "--out", str(tmp_path)]) == 2
    assert "no config key 'dimm'; valid keys:" in capsys.readouterr().err
    assert main(["run", "--task", "linear_regression", "--strategy", "replace", "--set", "design=sideways",
                 "--out", str(tmp_path)]) == 2
    assert "config key 'design' must be one of ['fixed', 'fresh']" in capsys.readouterr().err
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
        with pytest.raises(ConfigError, match="accelerator must be one of"):
            registry.make_task(task, "smoke", {"accelerator": "tpu-v9"})
