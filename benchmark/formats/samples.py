"""The sample artifacts a task writes for people to look at, and how every reader tells their kind.

A task's ``write_artifacts`` may write, per generation, files named ``samples-*`` (any other name
is a file the run keeps and nobody previews). Their kind follows from the suffix, the same for
every task and modality, so a new modality needs no change to the core:

- ``.png``: an image of samples (a grid of digits, drawn molecules, a plot of generated points).
  Its caption, if any, is the PNG's ``Description`` text chunk
  (:func:`collapselab.toolkit.samples.write_sample_image` writes one);
- ``.txt``: text samples, separated by lines ``--- ... ---``; ``#`` lines before the first
  separator are a header;
- anything else (``.sdf``, ``.npz``...): a file, kept with the run and linked, not previewed.
"""

from __future__ import annotations

import enum
import re
from pathlib import PurePath

SAMPLE_PREFIX = "samples-"
CAPTION_KEY = "Description"
#: The line between two text samples: three dashes, anything, three dashes.
TEXT_SEPARATOR = re.compile(r"^-{3}.*-{3}\s*$")


class SampleKind(enum.Enum):
    IMAGE = ".png"
    TEXT = ".txt"
    FILE = ""


def sample_kind(name: str) -> SampleKind | None:
    """The kind of the artifact called ``name`` (``None``: not a sample artifact)."""
    path = PurePath(name)
    if not path.name.startswith(SAMPLE_PREFIX):
        return None
    for kind in (SampleKind.IMAGE, SampleKind.TEXT):
        if path.suffix == kind.value:
            return kind
    return SampleKind.FILE


def text_samples(text: str) -> list[str]:
    """The samples of a ``.txt`` sample artifact, in order: the blocks between separator lines,
    without the header's ``#`` lines, blank ones left out."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if TEXT_SEPARATOR.match(line):
            blocks.append([])
        elif not (len(blocks) == 1 and line.startswith("#")):
            blocks[-1].append(line)
    found = ["\n".join(block).strip("\n") for block in blocks]
    return [sample for sample in found if sample.strip()]
