"""Gallery files: what a leaderboard entry's models generated, generation by generation.

Where it lives, and why a sibling file. An entry's gallery is ``galleries/<name>.json`` beside
its submission ``<name>.json`` (``leaderboard/submissions/galleries/replace.json`` for
``leaderboard/submissions/replace.json``), written by ``collapselab submit`` from the runs'
artifacts. It is not part of the submission because:

- the submission holds the numbers the leaderboard computes, reproduces and validates; pictures
  are a view of the same runs, ten to a hundred times larger, and would crowd the numbers
  file's 4 MiB limit and every tool that reads it (``validate``, ``reproduce``, ``export``);
- an entry without a gallery (made before galleries existed, or for a task without sample
  artifacts) is still a complete entry: the site shows its numbers and says it has no samples;
- the folder ``galleries/`` is not matched by the ``submissions/*.json`` pattern, so a gallery
  is never mistaken for an entry, whatever its name.

A gallery is validated like a submission, and nothing in it is trusted: a regular file of at
most :data:`MAX_BYTES` (bounded read, depth-limited strict JSON), a JSON schema with bounded
counts and string lengths, texts without control or bidirectional-control characters
(:mod:`.safe_text`; HTML escaping happens in the templates), and images that are PNGs
(signature, at most :data:`MAX_PNG_BYTES`, :data:`MAX_SIDE` pixels a side and
:data:`MAX_PIXELS` in all, checked before decoding, then verified and fully decoded by
Pillow, so no broken image is ever published). It must name its entry and only tasks, seeds and
generations the entry has. The site writes the images as files of its own (``img/gallery/``)
under names it makes from validated fields, so the Content-Security-Policy stays ``img-src 'self'``.

Format (``schema_version`` 1)::

    {"schema_version": 1, "entry": NAME,
     "tasks": {TASK: {"seed": 0, "generations": [
         {"generation": 0, "images": [{"png": BASE64, "caption": TEXT}], "texts": [TEXT, ...]}, ...]}}}
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collapselab.errors import ResultFileError, SubmissionError
from collapselab.formats import safe_text
from collapselab.formats.submission import write_checked
from collapselab.storage import schema, strict_json

SCHEMA_VERSION = 1
FOLDER = "galleries"
MAX_BYTES = 6 * 1024 * 1024
MAX_PNG_BYTES = 256 * 1024
MAX_SIDE = 1600
MAX_PIXELS = 1_000_000  # a full decode holds them all (RGBA: 4 MB); galleries use a fifth of it
MAX_GENERATIONS = 12
MAX_IMAGES = 2
MAX_TEXTS = 4
MAX_TEXT_CHARS = 600
MAX_CAPTION_CHARS = 300
MAX_ERRORS = 12
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT = {"type": "string", "maxLength": MAX_TEXT_CHARS, "pattern": safe_text.SAFE_PATTERN}
_CAPTION = {"type": "string", "maxLength": MAX_CAPTION_CHARS, "pattern": safe_text.SAFE_PATTERN}
_BASE64_CHARS = 4 * ((MAX_PNG_BYTES + 2) // 3)

GALLERY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "CollapseLab gallery",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema_version", "entry", "tasks"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "entry": {"type": "string", "maxLength": 64},
        "tasks": {
            "type": "object",
            "maxProperties": 32,
            "propertyNames": {"pattern": r"^[a-z0-9_]{1,64}(?!\n)$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["seed", "generations"],
                "properties": {
                    "seed": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                    "generations": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_GENERATIONS,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["generation"],
                            "properties": {
                                "generation": {"type": "integer", "minimum": 0, "maximum": 100_000},
                                "images": {
                                    "type": "array",
                                    "maxItems": MAX_IMAGES,
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["png", "caption"],
                                        "properties": {
                                            "png": {"type": "string", "maxLength": _BASE64_CHARS},
                                            "caption": _CAPTION,
                                        },
                                    },
                                },
                                "texts": {"type": "array", "maxItems": MAX_TEXTS, "items": _TEXT},
                            },
                        },
                    },
                },
            },
        },
    },
}


def path_for(submission_path: Path) -> Path:
    """Where the gallery of the submission at ``submission_path`` lives."""
    submission_path = Path(submission_path)
    return submission_path.parent / FOLDER / submission_path.name


def encode_png(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png_problem(data: bytes) -> str | None:
    """Why ``data`` is not an acceptable PNG (``None`` if it is)."""
    if len(data) > MAX_PNG_BYTES:
        return f"{len(data):,} bytes; at most {MAX_PNG_BYTES:,} are allowed"
    if not data.startswith(PNG_SIGNATURE):
        return "not a PNG (wrong signature)"
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            width, height = image.size
            if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
                return f"{width}x{height} pixels; at most {MAX_SIDE} a side and {MAX_PIXELS:,} in all"
            image.verify()  # chunk structure and checksums
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()  # every pixel decoded: a stream that checksums but does not decompress fails here
    except Exception as exc:  # Pillow raises many kinds of errors on a corrupted image
        return f"not a readable PNG: {type(exc).__name__}: {exc}"
    return None


def decode_png(text: str) -> bytes:
    """The bytes of a base64 PNG (strict alphabet); :class:`ValueError` if it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from None


_SHORT = {"maxItems": "has more than {} items", "maxLength": "is longer than {} characters",
          "maxProperties": "has more than {} fields", "pattern": "contains characters that are not allowed"}


def _schema_problems(data: Any, source: str) -> list[str]:
    errors = sorted(schema.validator(GALLERY_SCHEMA).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    problems = []
    for error in errors[:MAX_ERRORS]:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        message = error.message
        if len(message) > 200:  # jsonschema quotes the whole value (an image, a list of items)
            message = _SHORT.get(str(error.validator), "is not allowed here").format(error.validator_value)
        problems.append(f"{source}: field {where}: {message}")
    if len(errors) > MAX_ERRORS:
        problems.append(f"{source}: ... and {len(errors) - MAX_ERRORS} more problem(s)")
    return problems


def problems(data: Any, source: str, entry: Mapping[str, Any]) -> list[str]:
    """Every way ``data`` (a parsed gallery) breaks the format or does not belong to ``entry``."""
    found = _schema_problems(data, source)
    if found:
        return found
    if data["entry"] != entry["name"]:
        found.append(f"{source}: field entry: {data['entry']!r} is not the entry {entry['name']!r}")
    for task, section in sorted(data["tasks"].items()):
        field = f"{source}: field tasks/{task}"
        if task not in entry["tasks"]:
            found.append(f"{field}: the entry has no task {task!r}")
            continue
        seeds = [run["seed"] for run in entry["tasks"][task]["runs"]]
        if section["seed"] not in seeds:
            found.append(f"{field}/seed: the entry has no seed {section['seed']} on {task} (seeds {seeds})")
        last = entry["tasks"][task]["generations"]
        generations = [item["generation"] for item in section["generations"]]
        if generations != sorted(set(generations)) or generations[-1] > last:
            found.append(f"{field}/generations: {generations} must increase, from 0..{last} (the entry's generations)")
        for index, item in enumerate(section["generations"]):
            for number, image in enumerate(item.get("images", [])):
                try:
                    problem = png_problem(decode_png(image["png"]))
                except ValueError as exc:
                    problem = str(exc)
                if problem:
                    found.append(f"{field}/generations/{index}/images/{number}/png: {problem}")
    return found


def read(path: Path, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The validated gallery at ``path`` of ``entry``; :class:`SubmissionError` lists every problem."""
    try:
        data = strict_json.loads(strict_json.read_text(Path(path), MAX_BYTES), str(path))
    except ResultFileError as exc:
        raise SubmissionError([str(exc)]) from None
    found = problems(data, str(path), entry)
    if found:
        raise SubmissionError(found)
    return data


def read_for(submission_path: Path, entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The gallery beside ``submission_path`` if there is one (validated), else ``None``."""
    path = path_for(submission_path)
    if not path.exists() and not path.is_symlink():
        return None
    return read(path, entry)


def write(path: Path, data: Mapping[str, Any], entry: Mapping[str, Any]) -> None:
    """Check ``data`` against the format and ``entry``, then write it (strict JSON, sorted keys)."""
    write_checked(path, data, problems(data, str(path), entry), "gallery", MAX_BYTES)
