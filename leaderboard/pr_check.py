"""``collapselab leaderboard check-pr``: the leaderboard's pull-request check.

It lists the submissions a pull request adds or changes (``git diff`` against the pull
request's base; a changed gallery counts for its entry), validates them beside the published
entries, and re-runs the linear_regression section of each (seconds) with ``reproduce``,
seed by seed, in a new folder (a run directory the pull request ships is never taken as a
re-run).

Nothing a submission contains reaches a shell or a command line: git runs from an argument
list and everything else is a function call. A strategy that is not installed is rebuilt from
the file its runs recorded (``manifest.strategy.spec``) only when that spec is a relative
``path/to/file.py:ClassName[key=value,...]`` of plain characters (:data:`SPEC_PATTERN`) naming
a regular file inside the checkout. The check fails closed: a changed entry that is invalid,
has no linear_regression section, names code the checkout does not have, or does not
reproduce fails it, and so does a check that reproduced nothing while submissions changed. A pull
request that changes submissions and the code-equivalence ledger
(:mod:`collapselab.leaderboard.equivalence`) fails before anything is re-run: a link there lets
other task code's sections through validation, so it is never a submission's to add.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collapselab.contracts import registry
from collapselab.errors import CollapseLabError, SubmissionError
from collapselab.leaderboard import rules, validate
from collapselab.operations.publishing import reproduce

#: The task section every entry publishes and the check re-runs (seconds on a CPU).
SECTION = "linear_regression"
#: Where the submissions are, relative to the checkout.
FOLDER = "leaderboard/submissions"
#: The code-equivalence ledger (:mod:`collapselab.leaderboard.equivalence`), relative to the checkout.
LEDGER = "leaderboard/code_equivalence.json"
#: A recorded strategy spec the check may use: a relative path of plain characters ending in
#: ``.py``, ``:``, a Python identifier, and optional ``[key=value,...]`` parameters.
SPEC_PATTERN = re.compile(
    r"(?P<path>[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}\.py):(?P<cls>[A-Za-z_][A-Za-z0-9_]{0,99})"
    r"(?:\[[A-Za-z0-9_.,=+-]{0,500}\])?"
)
COMMIT_PATTERN = re.compile(r"[0-9a-f]{7,64}")


def changed_submissions(base: str, root: Path) -> list[Path]:
    """The submission files (``FOLDER/<name>.json``, as paths under ``root``) that the commits from
    ``base`` to HEAD add, modify or rename into place, or whose gallery they change."""
    found = set()
    for name in _changed(base, root, "AMR", [f":(glob){FOLDER}/*.json", f":(glob){FOLDER}/galleries/*.json"]):
        path = root / FOLDER / Path(name).name
        if path.is_file():
            found.add(path)
    return sorted(found)


def _changed(base: str, root: Path, kinds: str, pathspecs: list[str]) -> list[str]:
    """The paths matching ``pathspecs`` that the commits from ``base`` to HEAD change (git's ``--diff-filter`` ``kinds``)."""
    if not COMMIT_PATTERN.fullmatch(base):
        raise CollapseLabError(f"--base {base!r} is not a commit id (7 to 64 hexadecimal digits)")
    command = ["git", "-C", str(root), "diff", "--name-only", "-z", f"--diff-filter={kinds}", base, "HEAD", "--", *pathspecs]
    try:
        done = subprocess.run(command, capture_output=True, check=False, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CollapseLabError(f"git diff failed: {exc}") from None
    if done.returncode != 0:
        raise CollapseLabError(f"git diff {base} HEAD failed: {done.stderr.decode(errors='replace').strip()}")
    return [name for name in done.stdout.decode(errors="replace").split("\0") if name]


def strategy_file(entry: Mapping[str, Any], root: Path) -> str | None:
    """``None`` when the entry's strategy is installed; else ``file.py:ClassName`` (the file resolved
    inside ``root``) from the spec its linear_regression runs recorded, checked before any use."""
    if entry["strategy"]["name"] in registry.strategy_names():
        return None
    specs = {run["manifest"]["strategy"]["spec"] for run in entry["tasks"][SECTION]["runs"]}
    if len(specs) != 1:
        raise CollapseLabError(f"its {SECTION} seeds recorded different strategy specs")
    spec = specs.pop()
    match = SPEC_PATTERN.fullmatch(spec)
    if match is None:
        raise CollapseLabError(f"strategy {entry['strategy']['name']!r} is not installed and its recorded spec {spec!r} is "
                               "not a relative path/to/file.py:ClassName[key=value,...] of letters, digits and _ . / - "
                               "(nothing else is ever used)")
    parts = match["path"].split("/")
    file = root.joinpath(*parts)
    inside = file.resolve().is_relative_to(root.resolve())
    if any(part in ("", ".", "..") for part in parts) or not inside or file.is_symlink() or not file.is_file():
        raise CollapseLabError(f"the strategy file {match['path']!r} of spec {spec!r} is not a regular file inside the "
                               "checkout (add it to the pull request)")
    return f"{file.resolve()}:{match['cls']}"


def reproduce_section(path: Path, root: Path, out: Path, policy: rules.Rules) -> tuple[list[str], bool, bool]:
    """Re-run the linear_regression section of the (valid) entry at ``path``: the report, the
    verdict, and whether anything was re-run."""
    entry = rules.read_entry(path, policy)
    if SECTION not in entry["tasks"]:
        return [f"FAIL {path}: no {SECTION} section; every entry publishes one (the section this check re-runs)"], False, False
    try:
        report, passed = reproduce.reproduce(path, [SECTION], None, out / entry["name"],
                                             strategy=strategy_file(entry, root), progress=False)
    except CollapseLabError as exc:
        return [f"FAIL {path}: {exc}"], False, False
    return [report], passed, True


def check(base: str, root: Path, out: Path | None = None, policy: rules.Rules = rules.LEADERBOARD) -> tuple[list[str], bool]:
    """The check's report lines and verdict for the commits from ``base`` to HEAD in the checkout ``root``.

    ``out``: a new folder for the re-runs (default: a new temporary one); an existing one is refused."""
    changed = changed_submissions(base, root)
    if not changed:
        return [f"no new or changed submissions in {FOLDER}"], True
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="collapselab-check-pr-"))
    elif out.exists():
        raise CollapseLabError(f"--out {out} exists; the re-runs go to a new folder")
    lines = ["new or changed submissions:", *(f"  {path}" for path in changed)]
    published, _ = validate.load_entries(root / FOLDER, policy)
    found, ok = validate.check_files(changed, policy, published)
    lines += found
    if _changed(base, root, "ACDMR", [LEDGER]):  # fails whatever a re-run would show: nothing is re-run
        return [*lines, f"FAIL: the pull request changes {LEDGER} beside submissions; the code-equivalence ledger is "
                "the maintainers' record of code changes, never part of a submission", "FAIL"], False
    reproduced = 0
    for path in changed:
        try:
            report, passed, ran = reproduce_section(path, root, out, policy)
        except SubmissionError:
            continue  # invalid: already reported, and the check already fails
        lines += report
        reproduced += ran
        ok &= passed
    if reproduced == 0:
        lines.append(f"FAIL: {len(changed)} submission(s) changed and none was reproduced")
        ok = False
    lines.append("PASS" if ok else "FAIL")
    return lines, ok
