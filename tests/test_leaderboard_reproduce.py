"""``collapselab reproduce``: an entry re-runs to PASS with the same numbers (exactly on the same BLAS
kernel, within floating-point error elsewhere); tampered numbers FAIL; a submission's code is
never run unless the user points at it; its thread count is clamped."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from collapselab.cli.main import main
from collapselab.engine.environment import NUMERICS_FACTS
from collapselab.engine.rundir import find_runs
from collapselab.errors import CollapseLabError
from collapselab.formats import records, submission
from collapselab.formats.records import Manifest
from collapselab.operations.execution import jobs
from collapselab.operations.publishing import reproduce
from collapselab.scoring import scorer
from tests.entries import TASK, make_entries, write_all
from tests.helpers import assert_matches_published


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    entries = make_entries(root, {"replace": "replace"})
    return write_all(root / "subs", list(entries.values()))


def test_new_seeds_are_compared_by_means_within_their_own_spread():
    assert scorer.reproduction_tolerance([1.0, 2.0, 3.0], 3) == pytest.approx(3.0 * 1.0 * math.sqrt(2 / 3))
    assert scorer.reproduction_tolerance([2.0, 2.0, 2.0], 1) == pytest.approx(2e-9)  # no spread: only rounding passes
    published = {0: [1.0, 1.0], 1: [1.0, 2.0], 2: [1.0, 3.0]}
    (l_g,) = [c for c in reproduce.compare(TASK, published, {5: [1.0, 1.5], 6: [1.0, 2.6]}) if c.metric == "L_G"]
    allowed = 3.0 * float(np.std([1.5, 2.6], ddof=1)) * math.sqrt(1 / 3 + 1 / 2)  # the re-run seeds' spread
    assert not l_g.paired and l_g.tolerance == pytest.approx(allowed) and l_g.difference == pytest.approx(0.05)
    assert l_g.passed


def test_re_run_seeds_are_compared_each_with_the_same_published_seed():
    published = {0: [1.0, 2.0], 1: [1.0, 4.0], 2: [1.0, 6.0]}
    (l_g,) = [c for c in reproduce.compare(TASK, published, {0: [1.0, 2.0]}) if c.metric == "L_G"]
    assert l_g.paired and l_g.published == [2.0] and l_g.difference == 0.0  # seed 0 against seed 0, not the mean of 0-2
    assert l_g.tolerance == pytest.approx(2.0 * reproduce.KERNEL_RTOL)  # its own value's last bits, not the spread
    (other,) = [c for c in reproduce.compare(TASK, published, {5: [1.0, 4.0]}) if c.metric == "L_G"]
    assert not other.paired and other.published == [2.0, 4.0, 6.0]  # a new seed: against every published one


class _Rerun:
    """A published run as a re-run on ``kernel``, its losses after generation 0 scaled by ``scale``:
    what another BLAS kernel does to a gradient-trained task (the run-directory fields reproduce reads)."""

    def __init__(self, run, kernel, scale=1.0):
        self.seed = run["seed"]
        self.manifest = Manifest.model_validate(copy.deepcopy(run["manifest"]))
        self.manifest.environment["blas_kernel"] = kernel
        self.records = records.records_of(copy.deepcopy(run))
        for record in self.records[1:]:
            record.metrics["loss"] *= scale

    def curve(self):
        return [record.metrics["loss"] for record in self.records]


def test_gradient_seeds_on_another_kernel_are_compared_by_means(published):
    entry = submission.read(published / "replace.json")
    runs = {run["seed"]: run for run in entry["tasks"][TASK]["runs"]}
    for run in runs.values():  # every numerics fact recorded (a regression run records no torch version)
        environment = run["manifest"]["environment"]
        environment.update({fact: environment.get(fact) or "recorded" for fact in NUMERICS_FACTS})
    kernel = runs[0]["manifest"]["environment"]["blas_kernel"]
    other = [_Rerun(runs[0], "another kernel", 1.01), _Rerun(runs[1], "another kernel", 0.995)]
    assert reproduce.statistical_seeds(runs, other, gradient=True) == {0, 1}
    assert reproduce.statistical_seeds(runs, other, gradient=False) == set()  # closed form: last bits only, per seed
    assert reproduce.statistical_seeds(runs, [_Rerun(runs[0], kernel, 1.01)], gradient=True) == set()  # same kernel
    assert reproduce.statistical_seeds(runs, [_Rerun(runs[0], "another kernel")], gradient=True) == set()  # agrees

    # Their per-generation values are not compared one by one (a model-dependent filter keeps other
    # items); what the strategy is and how many generations ran still are.
    other[0].records[3].composition.total += 1
    mismatches, _ = reproduce.task_mismatches(entry, TASK, other, frozenset({0, 1}))
    assert mismatches == []
    assert any("generation 3, composition/total" in line for line in reproduce.task_mismatches(entry, TASK, other)[0])
    other[1].records.pop()
    other[0].manifest.strategy.uses_extra_real_data = True
    mismatches, _ = reproduce.task_mismatches(entry, TASK, other, frozenset({0, 1}))
    assert any("seed 0, strategy/uses_extra_real_data" in line for line in mismatches)
    assert any("seed 1, records:" in line for line in mismatches)

    curves = {seed: [r["metrics"]["loss"] for r in run["records"]] for seed, run in runs.items()}
    scaled = {0: [c * (1.01 if g else 1.0) for g, c in enumerate(curves[0])],
              1: [c * (0.995 if g else 1.0) for g, c in enumerate(curves[1])]}
    (l_g,) = [c for c in reproduce.compare(TASK, curves, scaled, statistical=frozenset({0, 1})) if c.metric == "L_G"]
    assert not l_g.paired and l_g.published == [curves[0][-1], curves[1][-1]]  # the same seeds, not seeds 0-9
    allowed = 3.0 * float(np.std([scaled[0][-1], scaled[1][-1]], ddof=1)) * math.sqrt(1 / 2 + 1 / 2)
    assert l_g.tolerance == pytest.approx(allowed)
    assert l_g.difference == pytest.approx(abs(0.01 * curves[0][-1] - 0.005 * curves[1][-1]) / 2)
    (alone,) = [c for c in reproduce.compare(TASK, curves, {0: scaled[0]}, statistical=frozenset({0}))
                if c.metric == "L_G"]
    assert not alone.passed  # one seed has no spread of its own: only rounding would pass


def test_published_thread_count_is_used_and_clamped(published):
    entry = json.loads((published / "replace.json").read_text())
    runs = entry["tasks"][TASK]["runs"]
    for run in runs:
        run["manifest"]["environment"].update(omp_num_threads="1", torch_threads=2)
    assert reproduce.published_threads(entry, [TASK]) == 1
    runs[0]["manifest"]["environment"].update(omp_num_threads=None, torch_threads=None)  # recorded nothing
    assert reproduce.published_threads(entry, [TASK]) == 1
    runs[0]["manifest"]["environment"]["omp_num_threads"] = "2"
    assert reproduce.published_threads(entry, [TASK]) is None
    for run in runs:
        run["manifest"]["environment"]["omp_num_threads"] = "4096"
    assert reproduce.published_threads(entry, [TASK]) == jobs.available_cpus()


@pytest.mark.published_numbers
def test_reproduce_passes_with_the_published_curves(published, tmp_path, capsys):
    out_dir = tmp_path / "reruns"
    assert main(["reproduce", str(published / "replace.json"), "--tasks", TASK, "--seeds", "0,1", "--out", str(out_dir),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(TASK) and line.split()[-1] in ("PASS", "FAIL")]
    assert [row[1] for row in rows] == ["L_0", "area", "L_G", "L_G/L_0"] and all(row[-1] == "PASS" for row in rows)
    runs = find_runs([out_dir])
    published_runs = {run["seed"]: run for run in submission.read(published / "replace.json")["tasks"][TASK]["runs"]}
    assert sorted(run.seed for run in runs) == [0, 1]
    for run in runs:
        assert_matches_published(published_runs[run.seed], run)
    assert "same seeds: 2/2 curves identical" in out or "within a relative" in out


def test_reproduce_fails_when_the_published_numbers_are_off(published, tmp_path, capsys):
    entry = json.loads((published / "replace.json").read_text())
    for run in entry["tasks"][TASK]["runs"]:
        for record in run["records"][1:]:
            record["metrics"]["loss"] += 2.0  # each seed on its own: far beyond its last bits
    tampered = tmp_path / "replace.json"
    tampered.write_text(json.dumps(entry))
    assert main(["reproduce", str(tampered), "--tasks", TASK, "--seeds", "0", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 1
    out = capsys.readouterr().out
    verdicts = {line.split()[1]: line.split()[-1] for line in out.splitlines()
                if line.startswith(TASK) and line.split()[-1] in ("PASS", "FAIL")}
    assert verdicts["L_0"] == "PASS" and verdicts["area"] == "FAIL" and verdicts["L_G"] == "FAIL"
    assert out.rstrip().endswith("FAIL")


def test_a_submission_never_makes_reproduce_import_its_code(published, tmp_path, capsys):
    marker = tmp_path / "imported"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\nfrom collapselab import Strategy\n\n"
                    "class Evil(Strategy):\n    name = 'evil'\n\n    def training_pool(self, ctx):\n        return ctx.latest\n")
    entry = json.loads((published / "replace.json").read_text())
    hostile = copy.deepcopy(entry)
    hostile["name"] = "evil"
    hostile["strategy"]["name"] = "evil"
    for run in hostile["tasks"][TASK]["runs"]:
        run["manifest"]["strategy"].update(name="evil", spec=f"{evil}:Evil")
    subs = write_all(tmp_path / "subs", [hostile])
    with pytest.raises(CollapseLabError, match="is not installed; a submission's code is never run"):
        reproduce.strategy_spec(hostile, None)
    assert main(["reproduce", "evil", "--submissions", str(subs), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert main(["reproduce", "--all", "--submissions", str(subs), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "--strategy path/to/file.py:ClassName" in capsys.readouterr().err
    assert not marker.exists()
    hostile["strategy"]["name"] = f"{evil}:Evil"  # a file path as the strategy's name is not an installed name either
    with pytest.raises(CollapseLabError, match="is not installed"):
        reproduce.strategy_spec(hostile, None)
    assert not marker.exists()


def test_reproduce_names_unknown_entries(published):
    with pytest.raises(Exception, match="no published entry 'nope'.*entries: .*replace"):
        reproduce.resolve("nope", published)
