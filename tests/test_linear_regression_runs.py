"""Runs of the regression task: every baseline's pools, adaptive ridge, the experiments, and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from collapselab.baselines.adaptive_ridge import paper_penalty, posterior_mean_penalties
from collapselab.contracts import registry
from collapselab.engine import rundir
from collapselab.errors import PluginError
from collapselab.formats.records import Record
from collapselab.tasks.linear_regression import experiments, fresh_theory
from collapselab.tasks.linear_regression.setting import Setting
from tests.helpers import metric_curves, run_strategy

TASK = "linear_regression"


def composition(run, generation):
    return run.records[generation].composition.model_dump()


def test_baselines_build_the_pools_they_promise(tmp_path):
    t, g = 20, 3  # smoke preset: n_samples = 20
    runs = {
        s: run_strategy(tmp_path, TASK, s, generations=g)
        for s in ["replace", "accumulate", "accumulate[compute=growing]", "accumulate-subsample", "accumulate-synthetic",
                  "real-only", "mix[real_fraction=0.25]", "fresh-real", "verifier-filter", "adaptive-ridge",
                  "adaptive-ridge[rule=posterior-mean]"]
    }
    assert composition(runs["replace"], g) == {"real": 0, "synthetic": {"3": t}, "total": t, "fresh_real": 0,
                                              "weighted": False}
    assert composition(runs["accumulate"], g)["synthetic"] == {"1": t, "2": t, "3": t}
    assert composition(runs["accumulate"], g)["real"] == t
    # the budget: every standard fit processes n_samples examples whatever its pool; growing asks for all of it
    for name in ("replace", "accumulate", "accumulate-subsample", "accumulate-synthetic", "real-only", "verifier-filter"):
        assert [r.compute.examples for r in runs[name].records] == [t] * (g + 1), name
    assert [r.compute.examples for r in runs["accumulate[compute=growing]"].records] == [t * (k + 1) for k in range(g + 1)]
    assert composition(runs["accumulate-synthetic"], g) == {"real": 0, "synthetic": {"1": t, "2": t, "3": t},
                                                           "total": 3 * t, "fresh_real": 0, "weighted": False}
    assert all(composition(runs["real-only"], k)["real"] == t for k in range(g + 1))
    assert len(set(runs["real-only"].curve())) == 1  # the fixed design's real fit, every generation
    assert composition(runs["accumulate-subsample"], g)["total"] == t
    mix = composition(runs["mix[real_fraction=0.25]"], g)
    assert (mix["real"], mix["synthetic"]) == (5, {"3": 15})
    assert [composition(runs["fresh-real"], k)["fresh_real"] for k in range(g + 1)] == [0, 10, 20, 30]
    assert runs["verifier-filter"].records[g].compute.samples == 2 * t
    paper = [r.fit_options for r in runs["adaptive-ridge"].records]
    assert paper[0]["ridge_lambda"] == 0.0
    assert all(o["regularise_generator"] is False for o in paper[1:])
    assert [o["ridge_lambda"] for o in paper[1:]] == sorted(o["ridge_lambda"] for o in paper[1:])  # grows with n
    own = [r.fit_options for r in runs["adaptive-ridge[rule=posterior-mean]"].records]
    assert all(o["regularise_generator"] and o["ridge_lambda"] > 0 for o in own[1:])
    for name in ("replace", "accumulate[compute=growing]", "real-only", "adaptive-ridge",
                 "adaptive-ridge[rule=posterior-mean]"):
        assert all("theory_loss" in r.metrics for r in runs[name].records), name


def test_adaptive_ridge_where_the_paper_applies_it_beats_replace_and_the_compounding_variant(tmp_path):
    overrides = {"dim": 10, "n_samples": 100, "trials": 1000}
    final = {s: run_strategy(tmp_path, TASK, s, generations=6, overrides=overrides).curve()[-1]
             for s in ["replace", "adaptive-ridge", "adaptive-ridge[rule=posterior-mean]"]}
    assert final["adaptive-ridge"] < final["adaptive-ridge[rule=posterior-mean]"] < final["replace"]


def test_the_paper_rule_sits_at_the_bottom_of_the_papers_error_curve():
    """lambda_n against the deterministic equivalent of the downstream model's error (fresh design), d = 100."""
    for spectrum in ("isotropic", "power"):
        config = registry.make_task(TASK, "cpu", {"dim": 100, "n_samples": 400, "design": "fresh",
                                                  "spectrum": spectrum}).describe().resolved_config
        setting = Setting.from_config(config)
        grid = np.geomspace(1e-4, 1e3, 300)
        for n in (1, 3, 8):
            curve = [experiments._downstream_theory(setting, [n], float(lam))[n] for lam in grid]
            at_rule = experiments._downstream_theory(setting, [n], paper_penalty(n, config))[n]
            assert at_rule < 1.02 * min(curve), (spectrum, n)
    config = registry.make_task(TASK, "cpu").describe().resolved_config
    assert paper_penalty(1, config) < paper_penalty(2, config) < paper_penalty(5, config)
    assert paper_penalty(0, config) == pytest.approx(10 * 1.0 / 100)  # d sigma^2 / (T ||w*||^2), the clean optimum
    assert len(posterior_mean_penalties(4, config)) == 4


def test_adaptive_ridge_refuses_what_it_cannot_run():
    with pytest.raises(PluginError, match="generator_samples > dim"):
        registry.make_strategy("adaptive-ridge").check_task(registry.make_task(TASK, "smoke", {"dim": 19}).describe())
    with pytest.raises(PluginError, match="assumes spectrum=isotropic"):
        registry.make_strategy("adaptive-ridge[rule=posterior-mean]").check_task(
            registry.make_task(TASK, "smoke", {"spectrum": "power"}).describe())
    with pytest.raises(PluginError, match="rule must be one of"):
        registry.make_strategy("adaptive-ridge[rule=guess]")


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_every_experiment_runs_and_writes_its_figure(tmp_path, name):
    assert experiments.main([name, "--out", str(tmp_path), "--quick"]) == 0
    stem = name.replace("-", "_")
    assert (tmp_path / f"{stem}.png").stat().st_size > 10_000
    data = json.loads((tmp_path / f"{stem}.json").read_text())
    assert data["setting"]


def test_verified_chain_theory_limits():
    """The chain filtered by verifier-filter's threshold settles at the verifier's error plus the label noise the
    band lets through: a perfect verifier stops above L_0 (a 2-sigma band does not denoise) and far below replace,
    a useless one at ||w*||^2 plus that noise."""
    setting = Setting.from_config(registry.task_class(TASK).presets["cpu"])
    l0 = 0.11
    perfect = experiments.verified_chain_theory(l0, 1.0, 30, setting, 2.0, 1.0)
    useless = experiments.verified_chain_theory(l0, 0.0, 30, setting, 2.0, 1.0)
    replace = l0 + 30 * setting.dim / (setting.generator_samples - setting.dim - 1)
    assert perfect[-1] == pytest.approx(perfect[-2], rel=1e-4) and useless[-1] == pytest.approx(useless[-2], rel=1e-3)
    assert l0 < perfect[-1] < 0.1 * replace
    assert 1.0 < useless[-1] < 1.0 + perfect[-1]
    assert fresh_theory.kappa(np.ones(10), 5, 0.0) == pytest.approx(1.0)  # N = d/(1+kappa)


def test_the_verifier_quality_experiment_runs_the_shipped_verifier_filter(tmp_path):
    """The figure's points are runs of verifier-filter itself (its threshold rule), identical to running it directly."""
    experiments.verifier_quality(experiments.Runner(tmp_path / "runs"), tmp_path / "out", quick=True)
    data = json.loads((tmp_path / "out" / "verifier_quality.json").read_text())
    names = {rundir.read_manifest(m.parent).strategy.name for m in (tmp_path / "runs").rglob(rundir.MANIFEST)}
    assert names == {"replace", "verifier-filter"}
    direct = run_strategy(tmp_path / "direct", TASK, "verifier-filter[quality=1.0]", generations=3, preset="cpu",
                          overrides={"trials": 200})
    assert data["curves"]["1.0"] == direct.curve()
    for (quality, loss, _), theory in zip(data["final"], data["theory_final"]):
        assert loss == pytest.approx(theory, rel=0.1), quality


# ------------------------------------------------------------------ resume after SIGKILL
DRIVER = """
import sys
from pathlib import Path
from collapselab.contracts import registry
from collapselab.engine.loop import RunSpec, execute
task = registry.make_task("linear_regression", "cpu", {"trials": 400})
spec = RunSpec(task, registry.make_strategy(sys.argv[2]), 1, 40, Path(sys.argv[1]), command=["driver"],
               checkpoint_seconds=0.25)
execute(spec, progress=False)
"""


def _records(root: Path) -> list[Record]:
    manifests = list(root.rglob(rundir.MANIFEST))
    return rundir.read_records(manifests[0].parent) if manifests else []


def test_resume_is_identical_after_kills_at_random_moments(tmp_path):
    """SIGKILL a run (checkpoints every 0.25 s) four times at random moments, then let it finish: the records
    equal those of a run never interrupted, bit for bit."""
    strategy = "accumulate-subsample"  # restores every pool and draws per-generation random subsamples
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    straight = tmp_path / "straight"
    subprocess.run([sys.executable, "-c", DRIVER, str(straight), strategy], check=True, env=env)
    cut = tmp_path / "cut"
    rng = np.random.default_rng(0)
    partial = []
    for target in sorted(rng.integers(2, 38, size=4)):
        process = subprocess.Popen([sys.executable, "-c", DRIVER, str(cut), strategy], env=env)
        while process.poll() is None and len(_records(cut)) < target:  # wait for some progress...
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.3)))  # ...then kill at an arbitrary moment, writes included
        process.send_signal(signal.SIGKILL)
        process.wait()
        partial.append(len(_records(cut)))
    subprocess.run([sys.executable, "-c", DRIVER, str(cut), strategy], check=True, env=env)
    assert any(0 < n < 41 for n in partial), partial  # kills landed mid-run, after a checkpoint
    resumed, reference = _records(cut), _records(straight)
    assert len(resumed) == len(reference) == 41
    assert [r.metrics for r in resumed] == [r.metrics for r in reference]
    assert [r.composition for r in resumed] == [r.composition for r in reference]


def test_resume_after_an_interrupt_in_process_is_identical(tmp_path):
    class Stop:
        def __call__(self, run_dir, manifest, record):
            if record.generation == 2:
                raise KeyboardInterrupt

    reference = run_strategy(tmp_path / "a", TASK, "mix", generations=5)
    with pytest.raises(KeyboardInterrupt):
        run_strategy(tmp_path / "b", TASK, "mix", generations=5, listeners=(Stop(),))
    resumed = run_strategy(tmp_path / "b", TASK, "mix", generations=5)
    assert metric_curves(resumed) == metric_curves(reference)
