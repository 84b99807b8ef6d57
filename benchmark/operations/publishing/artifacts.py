"""From a run's artifacts to its gallery: what the models generated, ready for the site.

The loop records, per generation, the artifacts a task wrote (``record["artifacts"]``). Those
named ``samples-*`` are samples of that generation's model; their kind follows from the file type
(:mod:`collapselab.formats.samples`), the same for every task:

- images (``.png``): scaled to at most :data:`IMAGE_WIDTH` pixels wide and reduced to a palette
  of :data:`PALETTE` colours (Pillow), so a generation costs tens of kilobytes; captioned by the
  image's own ``Description`` text chunk when it has one;
- texts (``.txt``): the first :data:`~collapselab.formats.gallery.MAX_TEXTS` samples (blocks
  between ``--- ... ---`` lines; ``#`` header lines dropped), each cut to
  :data:`~collapselab.formats.gallery.MAX_TEXT_CHARS` characters, control and
  bidirectional-control characters replaced;
- other files (conformers as ``.sdf``, ...): not previewed (a task that wants them seen draws them
  into a ``samples-*.png``, as conformer_diffusion does).

A gallery keeps one seed per task (the lowest) and at most
:data:`~collapselab.formats.gallery.MAX_GENERATIONS` generations, evenly spaced from 0 to G.
Every artifact is read with a size bound, as a regular file inside the run's ``artifacts/``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collapselab.engine.rundir import ARTIFACTS, Run
from collapselab.errors import ResultFileError
from collapselab.formats import gallery, safe_text, samples
from collapselab.formats.records import Record
from collapselab.storage import strict_json

IMAGE_WIDTH = 600
MIN_IMAGE_WIDTH = 200
PALETTE = 32
MAX_ARTIFACT_BYTES = 16 * 1024 * 1024
MAX_SOURCE_PIXELS = 25_000_000


def pick_generations(last: int, limit: int = gallery.MAX_GENERATIONS) -> list[int]:
    """Generations 0..last, or ``limit`` of them evenly spaced (0 and ``last`` included)."""
    if last + 1 <= limit:
        return list(range(last + 1))
    return sorted({round(i * last / (limit - 1)) for i in range(limit)})


def clean_text(text: str, limit: int) -> str:
    """``text`` without control or bidirectional-control characters (newlines and tabs kept), cut to
    ``limit`` characters."""
    text = safe_text.replace_unsafe(text.replace("\r\n", "\n"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_excerpts(text: str) -> list[str]:
    """The first samples of a text artifact (:func:`collapselab.formats.samples.text_samples`), cleaned and cut."""
    return [clean_text(s, gallery.MAX_TEXT_CHARS) for s in samples.text_samples(text)[: gallery.MAX_TEXTS]]


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def small_png(data: bytes, source: str) -> tuple[bytes, str]:
    """A sample image scaled down and palettised until it fits the gallery's per-image limit, and
    the caption it carries ('' for none)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_SOURCE_PIXELS:
                raise ResultFileError(f"{source}: {opened.width}x{opened.height} pixels is too large for a sample image")
            caption = opened.info.get(samples.CAPTION_KEY, "")
            image = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ResultFileError(f"{source}: not a readable image: {exc}") from None
    caption = clean_text(caption, gallery.MAX_CAPTION_CHARS) if isinstance(caption, str) else ""
    width = min(IMAGE_WIDTH, image.width)
    while True:
        height = max(1, round(image.height * width / image.width))
        scaled = image.resize((width, height), Image.Resampling.LANCZOS).quantize(PALETTE)
        png = _png(scaled)
        if len(png) <= gallery.MAX_PNG_BYTES or width <= MIN_IMAGE_WIDTH:
            return png, caption
        width = max(MIN_IMAGE_WIDTH, int(width * 0.75))


def _preview(run: Run, name: str) -> tuple[Path, samples.SampleKind] | None:
    """The artifact file ``name`` of ``run`` and its kind, if it is a sample image or text inside the
    run's ``artifacts/``."""
    path = run.path / name
    if path.is_symlink() or path.resolve().parent != (run.path / ARTIFACTS).resolve():
        return None
    kind = samples.sample_kind(path.name)
    return (path, kind) if kind in (samples.SampleKind.IMAGE, samples.SampleKind.TEXT) else None


def generation_item(run: Run, record: Record) -> dict[str, Any] | None:
    """The gallery item of one generation: its sample images and texts (``None``: it has none)."""
    images: list[dict[str, str]] = []
    texts: list[str] = []
    generation = record.generation
    for name in record.artifacts:
        found = _preview(run, str(name))
        if found is None or not found[0].exists():
            continue
        path, kind = found
        data = strict_json.read_bounded(path, MAX_ARTIFACT_BYTES)
        label = f"generation {generation}, seed {run.seed}"
        if kind is samples.SampleKind.TEXT:
            texts.extend(text_excerpts(data.decode("utf-8", "replace")))
        elif len(images) < gallery.MAX_IMAGES:
            png, caption = small_png(data, str(path))
            images.append({"png": gallery.encode_png(png), "caption": caption or f"{path.name} ({label})"})
    if not images and not texts:
        return None
    item: dict[str, Any] = {"generation": generation}
    if images:
        item["images"] = images
    if texts:
        item["texts"] = texts[: gallery.MAX_TEXTS]
    return item


def run_gallery(run: Run, limit: int = gallery.MAX_GENERATIONS) -> dict[str, Any] | None:
    """One task's gallery from ``run`` (``None``: the run has no sample artifacts)."""
    items = [generation_item(run, run.records[g]) for g in pick_generations(len(run.records) - 1, limit)]
    kept = [item for item in items if item is not None]
    return {"seed": run.seed, "generations": kept} if kept else None


def entry_gallery(runs: Sequence[Run], name: str, limit: int = gallery.MAX_GENERATIONS) -> dict[str, Any]:
    """The gallery of the entry ``name`` from its runs: per task, the lowest seed's samples."""
    by_task: dict[str, Run] = {}
    for run in sorted(runs, key=lambda r: r.seed, reverse=True):
        by_task[run.task] = run
    tasks = {task: run_gallery(run, limit) for task, run in sorted(by_task.items())}
    return {"schema_version": gallery.SCHEMA_VERSION, "entry": name, "tasks": {t: s for t, s in tasks.items() if s}}


def fitting_gallery(runs: Sequence[Run], name: str) -> dict[str, Any]:
    """:func:`entry_gallery` with fewer generations until the file fits the gallery's size limit."""
    limit = gallery.MAX_GENERATIONS
    while True:
        data = entry_gallery(runs, name, limit)
        if len(strict_json.dumps(data, indent=1).encode()) <= gallery.MAX_BYTES or limit <= 2:
            return data
        limit = max(2, limit // 2)
