"""One colour and one marker per entry (or strategy) name, the same on every figure and page and
in every build, whatever else is on the board.

The shipped baselines' entries have fixed styles (:data:`FIXED`, chosen so no two share a colour
and a marker); any other name gets a style derived from the SHA-256 of the name: a hue on a
fixed-lightness colour wheel and one of :data:`MARKERS`. Neither depends on the other names, so
adding or removing an entry recolours nothing.
"""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass

#: Matplotlib marker codes the site can also draw as SVG swatches.
MARKERS = ("o", "s", "^", "v", "D", "p", "h", "*", "P", "X", "<", ">")


@dataclass(frozen=True)
class Style:
    """A colour (``#rrggbb``) and a matplotlib marker code (one of :data:`MARKERS`)."""

    colour: str
    marker: str


#: The shipped baselines' entries (``collapselab.leaderboard.baselines.entries()``); a test keeps
#: this map complete. Variants share their baseline's colour with another marker.
FIXED: dict[str, Style] = {
    "replace": Style("#222222", "o"),
    "real-only": Style("#7f7f7f", "s"),
    "accumulate": Style("#1f77b4", "o"),
    "accumulate-growing": Style("#1f77b4", "^"),
    "accumulate-subsample": Style("#17becf", "s"),
    "accumulate-synthetic": Style("#9edae5", "D"),
    "adaptive-ridge": Style("#8c564b", "h"),
    "density-ratio-filter": Style("#bcbd22", "p"),
    "fresh-real": Style("#2ca02c", "*"),
    "fresh-real-10": Style("#2ca02c", "v"),
    "fresh-real-20": Style("#2ca02c", "s"),
    "fresh-real-40": Style("#2ca02c", "^"),
    "mix": Style("#ff7f0e", "D"),
    "reward-curate": Style("#9467bd", "v"),
    "reward-curate-real": Style("#9467bd", "P"),
    "self-correct": Style("#d62728", "X"),
    "verifier-filter": Style("#e377c2", "<"),
    "verifier-filter-accumulate": Style("#e377c2", ">"),
}


def hashed(name: str) -> Style:
    """The style a name gets from its SHA-256: hue from the first two bytes, marker from the third."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.65, 0.72)
    colour = "#" + "".join(f"{round(255 * channel):02x}" for channel in (red, green, blue))
    return Style(colour, MARKERS[digest[2] % len(MARKERS)])


def style(name: str) -> Style:
    """The style of ``name``: fixed for the shipped baselines' entries, else from its hash."""
    return FIXED.get(name) or hashed(name)
