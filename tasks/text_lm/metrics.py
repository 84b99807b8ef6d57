"""Text metrics computed on byte samples (NumPy only; the model-based loss lives in the task).

- n-gram coverage (the modes of the collapse profile): the share of the distinct word bigrams
  of held-out real text (words: maximal runs of ASCII letters, lower case; bigrams within a
  sample) that occur in the samples. It replaces distinct-n (Li et al. 2016), which read
  collapse backwards: word salad has many distinct "words", so distinct-n rose as text
  degenerated; coverage falls both when samples repeat themselves and when they invent words.
- byte-entropy ratio (the variance of the collapse profile): the entropy of the samples' byte
  histogram over that of held-out real text; it falls as the samples' variety shrinks.
- unigram entropy: Shannon entropy (bits) of the byte histogram; and the Kullback-Leibler
  divergence KL(real || samples) in bits between the byte histograms of held-out real text
  and of the samples, each count smoothed by 1/2 (the Krichevsky-Trofimov estimator).
- repetition: seq-rep-n of Welleck et al. 2020 ("Neural Text Generation with Unlikelihood
  Training", ICLR): per sample, the fraction of its byte n-grams that repeat an earlier
  n-gram of the same sample, averaged over samples (byte 8-grams: in real text these are
  mostly runs of indentation; loops of generated text raise it).
- valid-word rate: the share of word occurrences in the samples (a word being a maximal run
  of ASCII letters, compared in lower case) that occur as words in the training text; real
  held-out text scores close to 1, and invented "words" lower it (the hallucination signal
  of Schaeffer et al. 2025, definition 8, in this task's terms: ``hallucination`` = 1 - rate).
- tails: the quarter of the held-out chunks that a byte-bigram model of the training text
  (counts + 1/2) finds most surprising, fixed by the data before any model is trained (the
  task's ``evaluate`` sees only the model it scores, so the stratum cannot be generation 0's
  own judgement); ``tail_loss`` and ``common_loss`` are the model's bits per byte on them and
  on the other chunks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

REPETITION_N = 8
TAIL_SHARE = 0.25


WORD = re.compile(rb"[A-Za-z]+")


def vocabulary(text: bytes) -> frozenset[bytes]:
    """The lower-cased words (maximal runs of ASCII letters) that occur in ``text``."""
    return frozenset(word.lower() for word in WORD.findall(text))


def valid_word_rate(samples: Iterable[bytes], known: frozenset[bytes]) -> float:
    """Share of word occurrences in ``samples`` whose lower-cased form is in ``known`` (1.0 without words)."""
    found = [word.lower() for sample in samples for word in WORD.findall(sample)]
    return sum(word in known for word in found) / len(found) if found else 1.0


COVERAGE_N = 2


def word_ngrams(samples: Iterable[bytes], n: int) -> set[tuple[bytes, ...]]:
    """The distinct lower-cased word n-grams of ``samples`` (words as in :func:`vocabulary`), within each sample."""
    found: set[tuple[bytes, ...]] = set()
    for sample in samples:
        tokens = [word.lower() for word in WORD.findall(sample)]
        found.update(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return found


def ngram_coverage(samples: Iterable[bytes], real: Iterable[bytes], n: int = COVERAGE_N) -> float:
    """Share of the distinct word n-grams of ``real`` that occur in ``samples`` (0 when real has none)."""
    reference = word_ngrams(real, n)
    return len(reference & word_ngrams(samples, n)) / len(reference) if reference else 0.0


def byte_counts(chunks: np.ndarray) -> np.ndarray:
    """How often each of the 256 byte values occurs in ``chunks`` (any shape of uint8)."""
    return np.bincount(np.asarray(chunks, dtype=np.uint8).ravel(), minlength=256)


def unigram_entropy(chunks: np.ndarray) -> float:
    """Entropy in bits of the byte distribution of ``chunks``."""
    counts = byte_counts(chunks)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def unigram_kl(real: np.ndarray, samples: np.ndarray) -> float:
    """KL(real || samples) in bits between byte histograms, counts smoothed by 1/2."""
    p, q = byte_counts(real) + 0.5, byte_counts(samples) + 0.5
    p, q = p / p.sum(), q / q.sum()
    return float((p * np.log2(p / q)).sum())


def repetition(chunks: np.ndarray, n: int) -> float:
    """Mean over rows of ``chunks`` of 1 - (distinct byte n-grams / byte n-grams) in the row."""
    rows = np.asarray(chunks, dtype=np.uint8)
    width = rows.shape[1] - n + 1
    if width < 1:
        return 0.0
    windows = np.lib.stride_tricks.sliding_window_view(rows, n, axis=1)
    codes = windows.astype(np.uint64) @ (np.uint64(256) ** np.arange(n, dtype=np.uint64))
    distinct = np.array([len(np.unique(row)) for row in codes])
    return float(np.mean(1.0 - distinct / width))


def text_metrics(samples: list[bytes], real: np.ndarray) -> dict[str, float]:
    """Word-bigram coverage of ``real`` (``mode_coverage``), byte-entropy ratio (``variance_ratio``),
    unigram entropy, repetition and unigram KL from ``real`` (held-out text, uint8) of text samples
    (their lengths may differ)."""
    as_bytes = [np.frombuffer(sample, dtype=np.uint8) for sample in samples]
    everything = np.concatenate(as_bytes) if as_bytes else np.zeros(0, dtype=np.uint8)
    return {
        "mode_coverage": ngram_coverage(samples, [np.asarray(real, dtype=np.uint8).tobytes()]),
        "variance_ratio": unigram_entropy(everything) / unigram_entropy(real),
        "unigram_entropy": unigram_entropy(everything),
        "unigram_kl": unigram_kl(real, everything),
        "repetition": float(np.mean([repetition(row[None, :], REPETITION_N) for row in as_bytes])),
    }


def _byte_pairs(text: bytes) -> np.ndarray:
    codes = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
    return codes[:-1] * 256 + codes[1:]


def bigram_surprisal(train: Iterable[bytes], chunks: Iterable[bytes]) -> np.ndarray:
    """Mean bits per byte pair of each of ``chunks`` (texts) under a byte-bigram model of the ``train``
    texts (counts + 1/2; a chunk of under two bytes scores 0)."""
    pairs = [_byte_pairs(text) for text in train]
    counts = np.bincount(np.concatenate(pairs) if pairs else np.zeros(0, dtype=np.int64),
                         minlength=256 * 256).reshape(256, 256) + 0.5
    bits = (-np.log2(counts / counts.sum(axis=1, keepdims=True))).ravel()
    return np.array([bits[p].mean() if p.size else 0.0 for p in map(_byte_pairs, chunks)])


def surprising_chunks(train: Iterable[bytes], chunks: list[bytes], share: float = TAIL_SHARE) -> np.ndarray:
    """Indices of the ``share`` of ``chunks`` (at least one) the bigram model of ``train`` finds most surprising."""
    order = np.argsort(-bigram_surprisal(train, chunks), kind="stable")
    return np.sort(order[: max(1, int(share * len(chunks)))])


def printable(sample: bytes) -> str:
    """``sample`` decoded as UTF-8 for reading: invalid bytes become U+FFFD, other unprintable
    characters ``\\xNN`` (or ``\\uNNNN``)."""
    text = sample.decode("utf-8", errors="replace")
    return "".join(ch if ch in "\n\t" or ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
