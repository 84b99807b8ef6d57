"""The leaderboard's CI workflow (.github/workflows/leaderboard.yml), run here: its triggers and
Pages deployment are checked, and its steps run on a temporary git clone of the submissions in
which a pull request changed one entry and added a gallery for it, or added a broken file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collapselab.leaderboard import SUBMISSIONS
from tests.test_gallery import sample_gallery

yaml = pytest.importorskip("yaml")
WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "leaderboard.yml"


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in workflow()["jobs"]["check"]["steps"] if "id" in step}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str] | None = None, succeeds: bool = True) -> str:
    """A step's ``run:`` script with bash -e -o pipefail (what GitHub's runners use), the step's own
    environment with ``${{ ... }}`` expressions replaced by ``env``, and this Python first on PATH;
    its standard output, after checking that it succeeded (or, ``succeeds=False``, failed)."""
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    for key, value in step.get("env", {}).items():
        if "${{" not in str(value):
            environment[key] = str(value)
    assert "${{" not in step["run"], f"step {step['id']} needs GitHub's context"
    done = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", step["run"]], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=600)
    assert (done.returncode == 0) == succeeds, f"step {step['id']} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_triggers_and_the_pages_deployment():
    data = workflow()
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    assert data["permissions"] == {"contents": "read"}
    check = workflow()["jobs"]["check"]["steps"]
    upload = next(s for s in check if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "site" and "refs/heads/main" in upload["if"]
    deploy = data["jobs"]["deploy"]
    assert deploy["needs"] == "check" and deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@") and "refs/heads/main" in deploy["if"]
    assert deploy["environment"]["name"] == "github-pages"


def regression_only(folder: Path) -> None:
    """The committed entries cut to their linear_regression section (seconds to build; the
    neural tasks' entries are regenerated whenever their presets change)."""
    folder.mkdir(parents=True)
    for path in sorted(SUBMISSIONS.glob("*.json")):
        entry = json.loads(path.read_text())
        entry["tasks"] = {"linear_regression": entry["tasks"]["linear_regression"]}
        (folder / path.name).write_text(json.dumps(entry, indent=1))


def pull_request(tmp_path: Path, change: Callable[[Path], None]) -> tuple[Path, str]:
    """A git clone of the committed entries (their regression sections) and a pull request on it made
    by ``change(repo)``: the clone and the base commit."""
    repo = tmp_path / "repo"
    regression_only(repo / "leaderboard" / "submissions")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    change(repo)
    git(repo, "add", "-f", ".")
    git(repo, "commit", "-q", "-m", "pull request")
    return repo, base


def test_the_pull_request_step_takes_nothing_from_a_submission_but_the_base_commit():
    check = steps()["check-pr"]
    assert check["if"] == "github.event_name == 'pull_request'"
    assert check["run"].strip() == 'collapselab leaderboard check-pr --base "$BASE"'
    assert check["env"] == {"BASE": "${{ github.event.pull_request.base.sha }}"}
    assert not any("$args" in step.get("run", "") or "xargs" in step.get("run", "")
                   for step in workflow()["jobs"]["check"]["steps"])


@pytest.mark.published_numbers
def test_the_workflow_steps_validate_reproduce_and_build_a_pull_request(tmp_path):
    def change(repo: Path) -> None:  # mix re-written, and a gallery for it
        mix = repo / "leaderboard" / "submissions" / "mix.json"
        mix.write_text(json.dumps(json.loads(mix.read_text()), indent=2))
        (mix.parent / "galleries").mkdir(exist_ok=True)
        (mix.parent / "galleries" / "mix.json").write_text(json.dumps(sample_gallery("mix")))

    repo, base = pull_request(tmp_path, change)
    found = steps()
    checked = run_step(found["check-pr"], repo, {"BASE": base})
    assert "new or changed submissions:\n  leaderboard/submissions/mix.json\n" in checked
    assert "ok      leaderboard/submissions/mix.json: entry 'mix'" in checked
    assert "reproduce mix" in checked and "MISMATCH" not in checked and checked.rstrip().endswith("PASS")
    run_step(found["build"], repo)
    assert (repo / "site" / "index.html").is_file()
    assert (repo / "site" / "img" / "gallery" / "mix").is_dir()


def test_the_pull_request_step_fails_on_a_bad_submission(tmp_path):
    repo, base = pull_request(tmp_path, lambda r: (r / "leaderboard" / "submissions" / "broken.json").write_text(
        '{"schema_version": 1}'))
    out = run_step(steps()["check-pr"], repo, {"BASE": base}, succeeds=False)
    assert "INVALID leaderboard/submissions/broken.json" in out
    assert "FAIL: 1 submission(s) changed and none was reproduced" in out
