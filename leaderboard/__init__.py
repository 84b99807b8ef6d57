"""The CollapseLab leaderboard: submission files (``submissions/``) and the static-site builder.

The builder reads submissions as JSON only; it never imports or runs a submitted strategy.
"""

from pathlib import Path

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
#: The entries of a CollapseLab checkout, relative to its root.
CHECKOUT_SUBMISSIONS = Path("leaderboard") / "submissions"
#: Where the site's footer links the README by default: the checkout's, beside a site built into ``site/``.
README = "../README.md"


def checkout_root(start: Path | None = None) -> Path | None:
    """The CollapseLab checkout holding ``start`` (default: the current folder), or None: the nearest
    folder with a ``pyproject.toml`` naming the ``collapselab`` project and a ``leaderboard/submissions``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        project = folder / "pyproject.toml"
        if project.is_file() and (folder / CHECKOUT_SUBMISSIONS).is_dir():
            try:
                text = project.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            return folder if 'name = "collapselab"' in text else None
    return None


def submissions_folder(given: str | None = None) -> tuple[Path, str]:
    """The folder of entries a command reads, and a phrase saying which: ``given``, else the current
    checkout's ``leaderboard/submissions`` (so a new local entry is never left out), else the
    installed package's."""
    if given is not None:
        return Path(given), "as given"
    root = checkout_root()
    if root is not None:
        return root / CHECKOUT_SUBMISSIONS, "this checkout's"
    return SUBMISSIONS, "the installed package's"
