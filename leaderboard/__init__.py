"""The CollapseLab leaderboard: submission files (``submissions/``) and the static-site builder.

The builder reads submissions as JSON only; it never imports or runs a submitted strategy.
"""

from pathlib import Path

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
