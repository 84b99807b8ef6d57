"""The leaderboard's CI workflow (.github/workflows/leaderboard.yml), run here: its triggers and
Pages deployment are checked, and its shell steps run on a temporary git clone of the
submissions in which a pull request changed one entry and added a gallery for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str] | None = None) -> str:
    """A step's ``run:`` script with bash -e -o pipefail (what GitHub's runners use), the step's own
    environment with ``${{ ... }}`` expressions replaced by ``env``, and this Python first on PATH."""
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    for key, value in step.get("env", {}).items():
        if "${{" not in str(value):
            environment[key] = str(value)
    assert "${{" not in step["run"], f"step {step['id']} needs GitHub's context"
    done = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", step["run"]], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"step {step['id']} failed:\n{done.stdout}\n{done.stderr}"
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


@pytest.mark.published_numbers
def test_the_workflow_steps_validate_reproduce_and_build_a_pull_request(tmp_path):
    repo = tmp_path / "repo"
    regression_only(repo / "leaderboard" / "submissions")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    # the pull request: mix re-written, and a gallery for it
    mix = repo / "leaderboard" / "submissions" / "mix.json"
    mix.write_text(json.dumps(json.loads(mix.read_text()), indent=2))
    (mix.parent / "galleries").mkdir(exist_ok=True)
    (mix.parent / "galleries" / "mix.json").write_text(json.dumps(sample_gallery("mix")))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pull request")

    found = steps()
    listed = run_step({**found["changed"], "env": {}}, repo, {"BASE": base})
    assert (repo / "changed-submissions.txt").read_text().split() == ["leaderboard/submissions/mix.json"]
    assert "mix.json" in listed
    assert "ok      leaderboard/submissions/mix.json: entry 'mix'" in run_step(found["validate"], repo)
    reproduced = run_step(found["reproduce"], repo)
    assert "reproduce mix" in reproduced and reproduced.rstrip().endswith("PASS")
    run_step(found["build"], repo)
    assert (repo / "site" / "index.html").is_file()
    assert (repo / "site" / "img" / "gallery" / "mix").is_dir()


def test_the_validate_step_fails_on_a_bad_submission(tmp_path):
    folder = tmp_path / "leaderboard" / "submissions"
    folder.mkdir(parents=True)
    (folder / "broken.json").write_text('{"schema_version": 1}')
    (tmp_path / "changed-submissions.txt").write_text("leaderboard/submissions/broken.json\n")
    with pytest.raises(AssertionError, match="step validate failed"):
        run_step(steps()["validate"], tmp_path)
