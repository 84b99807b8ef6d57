"""From a run's artifacts to its gallery: what the models generated, ready for the site.

The loop records, per generation, the artifacts a task wrote (``record["artifacts"]``). Those
named ``samples-*`` are samples of that generation's model, and their kind follows from the
file type:

- ``.png`` (MNIST sample grids): scaled to at most :data:`IMAGE_WIDTH` pixels wide and reduced
  to a palette of :data:`PALETTE` colours (Pillow), so a generation costs tens of kilobytes;
- ``.txt`` (text samples): the first :data:`~collapselab.formats.gallery.MAX_TEXTS` samples
  (blocks between ``--- ... ---`` lines; ``#`` header lines dropped), each cut to
  :data:`~collapselab.formats.gallery.MAX_TEXT_CHARS` characters, control and
  bidirectional-control characters replaced;
- ``.sdf`` (conformers): up to :data:`CONFORMERS` generated conformers, one per molecule first,
  drawn by RDKit (``MolDraw2DCairo``) from their own coordinates: heavy atoms, rotated onto their
  two principal axes (``CanonicalizeConformer``) and projected, so distorted geometry shows.

A gallery keeps one seed per task (the lowest) and at most
:data:`~collapselab.formats.gallery.MAX_GENERATIONS` generations, evenly spaced from 0 to G.
Every artifact is read with a size bound, as a regular file inside the run's ``artifacts/``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from collapselab.engine.rundir import Run
from collapselab.errors import ResultFileError
from collapselab.formats import gallery, safe_text
from collapselab.storage import strict_json

SAMPLE_PREFIX = "samples-"
ARTIFACTS = "artifacts"
IMAGE_WIDTH = 600
MIN_IMAGE_WIDTH = 200
PALETTE = 32
CONFORMERS = 6
PANEL = (200, 170)
MAX_ARTIFACT_BYTES = 16 * 1024 * 1024
MAX_SOURCE_PIXELS = 25_000_000
_SEPARATOR = re.compile(r"^-{3}.*-{3}\s*$")


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
    """The first samples of a text artifact (see the module docstring)."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if _SEPARATOR.match(line):
            blocks.append([])
        elif not (len(blocks) == 1 and line.startswith("#")):
            blocks[-1].append(line)
    samples = ["\n".join(block).strip("\n") for block in blocks]
    return [clean_text(s, gallery.MAX_TEXT_CHARS) for s in samples if s.strip()][: gallery.MAX_TEXTS]


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def small_png(data: bytes, source: str) -> bytes:
    """A sample grid scaled down and palettised until it fits the gallery's per-image limit."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_SOURCE_PIXELS:
                raise ResultFileError(f"{source}: {opened.width}x{opened.height} pixels is too large for a sample image")
            image = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ResultFileError(f"{source}: not a readable image: {exc}") from None
    width = min(IMAGE_WIDTH, image.width)
    while True:
        height = max(1, round(image.height * width / image.width))
        scaled = image.resize((width, height), Image.Resampling.LANCZOS).quantize(PALETTE)
        png = _png(scaled)
        if len(png) <= gallery.MAX_PNG_BYTES or width <= MIN_IMAGE_WIDTH:
            return png
        width = max(MIN_IMAGE_WIDTH, int(width * 0.75))


def conformer_png(text: str, source: str) -> tuple[bytes, str] | None:
    """A grid of generated conformers drawn by RDKit, and its caption (``None``: no readable molecule)."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdMolTransforms
    from rdkit.Chem.Draw import rdMolDraw2D

    rdBase.DisableLog("rdApp.*")
    supplier = Chem.SDMolSupplier()
    supplier.SetData(text, removeHs=False)
    read = [mol for mol in supplier if mol is not None and mol.GetNumConformers()]
    if not read:
        return None
    names = [mol.GetProp("_Name").split(" | ")[0] if mol.HasProp("_Name") else "" for mol in read]
    first = [i for i, name in enumerate(names) if name not in names[:i]]
    chosen = (first + [i for i in range(len(read)) if i not in first])[:CONFORMERS]
    mols = []
    for index in chosen:
        mol = Chem.RemoveHs(read[index], sanitize=False)
        mol.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(mol)  # drawing needs ring information, which an unsanitised copy lacks
        rdMolTransforms.CanonicalizeConformer(mol.GetConformer())
        mols.append(mol)
    columns = min(3, len(mols))
    rows = -(-len(mols) // columns)
    drawer = rdMolDraw2D.MolDraw2DCairo(columns * PANEL[0], rows * PANEL[1], PANEL[0], PANEL[1])
    # draw the generated coordinates (no fresh 2D layout), with legible atom labels
    for option, value in {"prepareMolsBeforeDrawing": False, "minFontSize": 11, "bondLineWidth": 2}.items():
        setattr(drawer.drawOptions(), option, value)
    legends = [clean_text(names[i], 40) for i in chosen]
    drawer.DrawMolecules(mols, legends=legends)
    drawer.FinishDrawing()
    caption = (f"{len(mols)} of {len(read)} generated conformers ({', '.join(dict.fromkeys(legends))}): heavy atoms "
               "on their two principal axes")
    return drawer.GetDrawingText(), clean_text(caption, gallery.MAX_CAPTION_CHARS)


def _artifact(run: Run, name: str) -> Path | None:
    """The artifact file ``name`` of ``run`` if it is a sample file inside the run's ``artifacts/``."""
    path = run.path / name
    if path.is_symlink() or path.resolve().parent != (run.path / ARTIFACTS).resolve():
        return None
    return path if path.name.startswith(SAMPLE_PREFIX) else None


def generation_item(run: Run, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The gallery item of one generation: its sample images and texts (``None``: it has none)."""
    images: list[dict[str, str]] = []
    texts: list[str] = []
    generation = int(record["generation"])
    for name in record.get("artifacts", []):
        path = _artifact(run, str(name))
        if path is None or not path.exists():
            continue
        data = strict_json.read_bounded(path, MAX_ARTIFACT_BYTES)
        label = f"generation {generation}, seed {run.seed}"
        if path.suffix == ".png" and len(images) < gallery.MAX_IMAGES:
            images.append({"png": gallery.encode_png(small_png(data, str(path))), "caption": f"{path.name} ({label})"})
        elif path.suffix == ".sdf" and len(images) < gallery.MAX_IMAGES:
            drawn = conformer_png(data.decode("utf-8", "replace"), str(path))
            if drawn is not None:
                images.append({"png": gallery.encode_png(drawn[0]), "caption": drawn[1]})
        elif path.suffix == ".txt":
            texts.extend(text_excerpts(data.decode("utf-8", "replace")))
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
