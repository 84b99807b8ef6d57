"""Writing sample artifacts in the format every reader previews (:mod:`collapselab.formats.samples`)."""

from __future__ import annotations

import io
from pathlib import Path

from collapselab.formats.samples import CAPTION_KEY, SampleKind, sample_kind


def write_sample_image(path: Path, png: bytes, caption: str = "") -> None:
    """The PNG image ``png`` at ``path`` (named ``samples-*.png``), with ``caption`` in its
    ``Description`` text chunk: the gallery shows it under the image."""
    from PIL import Image, PngImagePlugin

    if sample_kind(path.name) is not SampleKind.IMAGE:
        raise ValueError(f"{path.name}: a sample image is named samples-*.png")
    info = PngImagePlugin.PngInfo()
    if caption:
        info.add_text(CAPTION_KEY, caption)
    with Image.open(io.BytesIO(png)) as image:
        image.save(path, "PNG", pnginfo=info)
