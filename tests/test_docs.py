"""The README's and task cards' tables are generated from the entries: ``leaderboard docs --write | --check``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collapselab.leaderboard import aggregate, docs
from tests.entries import make_entries, write_all

TASK = "linear_regression"
README = """# A checkout

Text before.

<!-- collapselab:table scores task=linear_regression columns=initial,ratio,score,track,share -->
| stale | table |
<!-- /collapselab:table -->

Text between, with a number that is not generated: 1.07.
"""
CARD = """# Card

<!-- collapselab:table seeds task=linear_regression entries=mix,replace -->
<!-- /collapselab:table -->

<!-- collapselab:table curve task=linear_regression entry=replace seed=1 generations=0,3 metrics=loss,theory_loss -->
<!-- /collapselab:table -->
"""


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like a checkout: README.md, a task card and the entries of three smoke runs."""
    root = tmp_path_factory.mktemp("docs")
    made = make_entries(root, {"replace": "replace", "mix": "mix", "accumulate": "accumulate"})
    write_all(root / "leaderboard" / "submissions", list(made.values()))
    return root


def _docs(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collapselab", "leaderboard", "docs", *args, "--root", str(root),
                           "--preset", "smoke"], capture_output=True, text=True, timeout=300)


def _fresh(checkout: Path, tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "tasks" / TASK).mkdir(parents=True)
    (root / "leaderboard").symlink_to(checkout / "leaderboard")
    (root / "README.md").write_text(README)
    (root / "tasks" / TASK / "README.md").write_text(CARD)
    return root


def test_the_tracks_and_cost_tables_count_what_the_board_holds(checkout):
    sources = docs.load(checkout / "leaderboard" / "submissions", docs.rules.Rules(preset="smoke"))
    tracks = docs.tracks_table(sources, {})
    assert f"Ranked tasks (replace's degradation passes the gate): `{TASK}`." in tracks
    for table in sources.board["tracks"]:
        row = f"| {table['name']} | {len(table['references'])} | {len(table['ranked'])} | {len(table['partial'])} |"
        assert row in tracks
    # replace heads both tables (no ceiling entry here); augmentation ranks mix and accumulate
    assert "| augmentation | 1 | 2 | 0 |" in tracks and "| closed-loop | 1 | 0 | 0 |" in tracks
    runs = [run for entry in sources.entries.values() for run in entry["tasks"][TASK]["runs"]]
    hours = sum(sum(sum(r["seconds"].values()) for r in run["records"]) for run in runs) / 3600
    environments = [run["manifest"]["environment"] for run in runs]
    machines = "; ".join(sorted({f"{e['cpu']}, {e['blas_kernel'].split()[-1]}" for e in environments}))
    assert machines and "?" not in machines  # this machine's CPU and kernel, as the runs recorded them
    assert "; ".join(sources.board["tasks"][0]["machines"]) == machines
    cost = docs.cost_table(sources, {})
    version = sources.board["tasks"][0]["version"]
    assert f"| `{TASK}` | {version} | 3 | 9 | {hours:.2f} | {hours / 2:.2f} | {machines} |" in cost
    assert cost.splitlines()[-1] == f"| all |  | 3 | 9 | {hours:.2f} | {hours / 2:.2f} |  |"

def test_the_cost_table_names_recorded_machines_as_plain_text():
    """A manifest's CPU name is submitted text: a pipe or markup must not reach the README's table."""
    assert docs.plain_cell("EPYC | <img src=x onerror=alert(1)>, Haswell") == "EPYC ? ?img src?x onerror?alert(1)?, Haswell"
    assert docs.plain_cell("AMD EPYC 9B14, SkylakeX") == "AMD EPYC 9B14, SkylakeX"
    assert len(docs.plain_cell("x" * 500)) == 80


def test_write_fills_the_regions_from_the_scorer_and_check_passes(checkout, tmp_path):
    root = _fresh(checkout, tmp_path)
    assert _docs(root, "--check").returncode == 1  # the stale table
    written = _docs(root, "--write")
    assert written.returncode == 0, written.stderr
    assert _docs(root, "--check").returncode == 0
    readme = (root / "README.md").read_text()
    assert readme.startswith("# A checkout\n\nText before.\n") and "not generated: 1.07.\n" in readme
    assert "| stale | table |" not in readme
    sources = docs.load(root / "leaderboard" / "submissions", docs.rules.Rules(preset="smoke"))
    board = aggregate.aggregate(sources.entries)
    mix = next(row for row in board["entries"] if row["name"] == "mix")["tasks"][TASK]
    score = mix["score"]
    expected = (f"| mix[real_fraction=0.5] | {mix['initial']['mean']:.4g} | {mix['ratio']['mean']:.3g} | "
                f"{score['mean']:.3f} [{score['ci_low']:.3f}, {score['ci_high']:.3f}] | augmentation | "
                f"{100 * mix['synthetic_share']:.0f}% |")
    assert expected in readme
    assert "| replace (reference) |" in readme and "0 (by definition)" in readme
    card = (root / "tasks" / TASK / "README.md").read_text()
    replace_seed1 = next(r for r in sources.entries["replace"]["tasks"][TASK]["runs"] if r["seed"] == 1)["records"]
    assert f"| 3 | {replace_seed1[3]['metrics']['loss']:.4g} | {replace_seed1[3]['metrics']['theory_loss']:.4g} |" in card
    assert card.count("\n| 0 |") == 2 and "| seed | L_0 | mix: L_3 | replace: L_3 |" in card


def test_check_fails_on_a_changed_number_and_passes_after_write(checkout, tmp_path):
    root = _fresh(checkout, tmp_path)
    assert _docs(root, "--write").returncode == 0
    readme = root / "README.md"
    good = readme.read_text()
    mix_row = next(line for line in good.splitlines() if line.startswith("| mix["))
    ratio = mix_row.split(" | ")[2]
    readme.write_text(good.replace(mix_row, mix_row.replace(f" {ratio} ", f" {float(ratio) + 0.01:.3g} ")))
    assert readme.read_text() != good
    checked = _docs(root, "--check")
    assert checked.returncode == 1
    assert f"{readme}:5: table 'scores task=linear_regression" in checked.stdout and "--write" in checked.stdout
    assert _docs(root, "--write").returncode == 0
    assert readme.read_text() == good and _docs(root, "--check").returncode == 0


def test_a_bad_table_or_an_invalid_entry_is_one_error_line(checkout, tmp_path):
    root = _fresh(checkout, tmp_path)
    (root / "README.md").write_text(README.replace("scores task=linear_regression", "scores task=linear_regression "
                                                   "entries=$(touch pwned)"))
    bad = _docs(root, "--write")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and not (root / "pwned").exists()
    (root / "README.md").write_text(README.replace("scores", "podium"))
    bad = _docs(root, "--check")
    assert bad.returncode == 2 and "unknown table 'podium'" in bad.stderr and "Traceback" not in bad.stderr
    assert (root / "README.md").read_text() == README.replace("scores", "podium")  # nothing written


def test_a_task_without_entries_gets_a_note_and_a_known_task_with_an_unknown_entry_an_error(checkout, tmp_path):
    root = _fresh(checkout, tmp_path)
    (root / "README.md").write_text(README.replace("task=linear_regression columns=initial,ratio,score,track,share",
                                                   "task=mnist_vae"))
    (root / "tasks" / TASK / "README.md").write_text(CARD.replace("curve task=linear_regression", "curve task=text_lm"))
    written = _docs(root, "--write")
    assert written.returncode == 0, written.stderr
    readme = (root / "README.md").read_text()
    assert "No entry has a section of `mnist_vae` at its installed version" in readme
    assert "--tasks mnist_vae` runs them" in readme and "| stale | table |" not in readme
    assert "No entry has a section of `text_lm`" in (root / "tasks" / TASK / "README.md").read_text()
    (root / "tasks" / TASK / "README.md").write_text(CARD.replace("entries=mix,replace", "entries=mix,nobody"))
    bad = _docs(root, "--write")
    assert bad.returncode == 2 and "no valid entry 'nobody' with a linear_regression section" in bad.stderr


# The committed README and task cards against the committed entries: fails until the entries are
# regenerated at the installed task versions and `collapselab leaderboard docs --write` is run.
def test_committed_readme_and_cards_match_the_committed_entries():
    root = Path(__file__).resolve().parent.parent
    checked = subprocess.run([sys.executable, "-m", "collapselab", "leaderboard", "docs", "--check", "--root", str(root)],
                             capture_output=True, text=True, timeout=600)
    assert checked.returncode == 0, checked.stdout + checked.stderr
