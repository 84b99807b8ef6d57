"""Text corpora and their deterministic split into byte chunks.

A corpus is a list of documents (bytes). Three sources:

- ``pydoc`` (default): the English help topics that ship inside every CPython
  (``pydoc_data.topics``, ~465 KB, 79 documents). No download, no extra package. The text
  differs between Python versions; the data fingerprint in each run's manifest records which
  one a run used.
- ``tinystories``: TinyStories (Eldan & Li 2023, arXiv 2305.07759), the corpus of Gerstgrasser
  et al. 2024, read through the optional ``datasets`` package from the local Hugging Face
  cache only (nothing is downloaded unless ``HF_HUB_OFFLINE=0`` is set by the user).
- a path to a local UTF-8 text file: documents are its blank-line-separated paragraphs.

The split is by document, so no held-out byte shares a document with the training side.
Documents that share a paragraph of 64 bytes or more (the CPython help repeats passages
across topics) are grouped and stay on one side. Groups are taken in an order shuffled with
``data_seed`` into the test set as long as it stays within ``test_fraction`` of the bytes,
then, in the same order, the remaining groups into the validation set (model selection) as
long as it stays within ``validation_fraction``. The training side is concatenated, encoded
(as bytes, or by a tokenizer trained on the training side alone: no held-out byte shapes the
vocabulary) and cut into non-overlapping chunks of ``context`` tokens; test and validation
documents are encoded the same way. ``train_chunks`` training chunks, chosen at random with
``data_seed``, are the real pool and the others the reserve that fresh real data are drawn
from.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from collapselab.errors import TaskError
from collapselab.toolkit.splits import IndexSplit, carve

SEPARATOR = b"\n\n"
TINYSTORIES = "roneneldan/TinyStories"

#: Text -> token ids (1-D); an ``EncoderFactory`` builds one from the training side's text.
Encoder = Callable[[bytes], np.ndarray]
EncoderFactory = Callable[[bytes], Encoder]


def as_bytes(text: bytes) -> np.ndarray:
    """The identity encoder: the bytes of ``text`` are its tokens."""
    return np.frombuffer(text, dtype=np.uint8)


def pydoc_documents() -> list[bytes]:
    """The CPython help topics, one document per topic, in topic order."""
    from pydoc_data.topics import topics

    return [topics[key].encode("utf-8") for key in sorted(topics)]


def file_documents(path: Path) -> list[bytes]:
    """The blank-line-separated paragraphs of a UTF-8 text file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"task 'text_lm': cannot read corpus {path} as UTF-8 text: {exc}") from None
    paragraphs = [p.strip("\n") for p in text.replace("\r\n", "\n").split("\n\n")]
    return [p.encode("utf-8") for p in paragraphs if p.strip()]


def tinystories_documents(max_documents: int) -> list[bytes]:
    """The first ``max_documents`` stories (0: all) of TinyStories' train split, from the local cache."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        import datasets
    except ImportError:
        raise TaskError(
            "task 'text_lm': corpus=tinystories needs the optional package `datasets` "
            "(pip install 'collapselab[text]')"
        ) from None
    split = "train" if max_documents <= 0 else f"train[:{max_documents}]"
    try:
        stories = datasets.load_dataset(TINYSTORIES, split=split)["text"]
    except Exception as exc:  # datasets raises many types for a missing offline cache
        raise TaskError(
            f"task 'text_lm': TinyStories is not in the local Hugging Face cache ({type(exc).__name__}: {exc}). "
            f"Fetch it once with `python -c \"import datasets; datasets.load_dataset('{TINYSTORIES}')\"` "
            "or pass corpus=PATH to a local text file."
        ) from None
    return [story.strip().encode("utf-8") for story in stories if story.strip()]


def load_documents(corpus: str, max_documents: int) -> list[bytes]:
    """The documents of ``corpus`` (``pydoc``, ``tinystories`` or a file path)."""
    if corpus == "pydoc":
        return pydoc_documents()
    if corpus == "tinystories":
        return tinystories_documents(max_documents)
    path = Path(corpus).expanduser()
    if not path.is_file():
        raise TaskError(f"task 'text_lm': corpus must be 'pydoc', 'tinystories' or a text file; {corpus!r} is none")
    return file_documents(path)


def duplicate_groups(documents: list[bytes], min_length: int = 64) -> list[list[int]]:
    """Indices of documents grouped so that two documents sharing a paragraph of at least
    ``min_length`` bytes are in one group (exact-duplicate grouping, after Lee et al. 2022,
    "Deduplicating Training Data Makes Language Models Better", ACL): a group never straddles
    the train/test split."""
    parent = list(range(len(documents)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[bytes, int] = {}
    for i, document in enumerate(documents):
        for paragraph in document.split(SEPARATOR):
            paragraph = paragraph.strip()
            if len(paragraph) >= min_length:
                key = hashlib.sha256(paragraph).digest()
                parent[root(i)] = root(first.setdefault(key, i))
    groups: dict[int, list[int]] = {}
    for i in range(len(documents)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def chunk(documents: list[bytes], length: int, encode: Encoder = as_bytes) -> np.ndarray:
    """The documents joined by blank lines, encoded and cut into ``(n, length)`` chunks of tokens (the tail dropped)."""
    stream = encode(SEPARATOR.join(documents))
    n = len(stream) // length
    return stream[: n * length].reshape(n, length).copy()


@dataclass(frozen=True)
class Split:
    """Chunks of the real pool, the reserve (fresh real data), the validation set and the held-out test set;
    ``documents`` says which documents went to the test set, the validation set and the training side."""

    train: np.ndarray
    reserve: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    documents: IndexSplit
    fingerprint: dict[str, object]


def _held_out(order: np.ndarray, groups: list[list[int]], sizes: list[int], target: float, taken: set[int]) -> list[int]:
    """Documents of the groups, in ``order``, that fit within ``target`` bytes (skipping groups holding ``taken``)."""
    total, chosen = 0, []
    for g in order:
        if groups[g][0] not in taken and total + sizes[g] <= target:
            chosen.extend(groups[g])
            total += sizes[g]
    return chosen


def split_corpus(
    documents: list[bytes], context: int, train_chunks: int, test_fraction: float, validation_fraction: float,
    data_seed: int, encoder: EncoderFactory | None = None,
) -> Split:
    """Split ``documents`` by groups of documents into test set, validation set and training side, then
    encode (bytes, or ``encoder(training side text)``) and chunk (module docstring); the parts are
    disjoint index sets checked by :mod:`collapselab.toolkit.splits`."""
    if len(documents) < 3:
        raise TaskError(f"task 'text_lm': the corpus needs at least 3 documents, it has {len(documents)}")
    rng = np.random.default_rng([data_seed, 4])
    groups = duplicate_groups(documents)
    sizes = [sum(len(documents[i]) for i in group) for group in groups]
    corpus_bytes = sum(sizes)
    order = rng.permutation(len(groups))
    held_out: dict[str, list[int]] = {}
    for part, fraction in (("test", test_fraction), ("validation", validation_fraction)):
        taken = {i for docs in held_out.values() for i in docs}
        held_out[part] = _held_out(order, groups, sizes, fraction * corpus_bytes, taken)
        if not held_out[part]:
            raise TaskError(f"task 'text_lm': no group of documents fits in {part}_fraction of the corpus; raise it")
    taken = set(held_out["test"]) | set(held_out["validation"])
    side_docs = [i for g in order for i in groups[g] if i not in taken]
    parts = {"test": held_out["test"], "validation": held_out["validation"], "train": side_docs}
    by_document = IndexSplit(len(documents), {part: np.asarray(docs, dtype=np.int64) for part, docs in parts.items()})
    training_side = [documents[i] for i in side_docs]
    encode = as_bytes if encoder is None else encoder(SEPARATOR.join(training_side))
    test, validation = (chunk([documents[i] for i in held_out[part]], context, encode) for part in ("test", "validation"))
    side = chunk(training_side, context, encode)
    if train_chunks > len(side):
        raise TaskError(
            f"task 'text_lm': train_chunks={train_chunks} but the training side of the corpus has only "
            f"{len(side)} chunks of {context} bytes; lower train_chunks or use a larger corpus"
        )
    for part, chunks in (("test", test), ("validation", validation)):
        if len(chunks) == 0:
            raise TaskError(f"task 'text_lm': the {part} documents are shorter than one context; raise {part}_fraction")
    by_chunk = carve(rng.permutation(len(side)), [("train", train_chunks)], "reserve")
    train, reserve = side[np.sort(by_chunk.train)], side[by_chunk.reserve]
    digest = hashlib.sha256()
    for document in documents:
        digest.update(hashlib.sha256(document).digest())
    fingerprint = {
        "documents": len(documents),
        "corpus_sha256": digest.hexdigest(),
        "split_sha256": hashlib.sha256(f"{context}|{by_document.sha256()}|{by_chunk.sha256()}".encode()).hexdigest(),
        "train_bytes": int(train.size),
        "validation_bytes": int(validation.size),
        "test_bytes": int(test.size),
        "reserve_chunks": int(len(reserve)),
    }
    return Split(train, reserve, validation, test, by_document, fingerprint)
