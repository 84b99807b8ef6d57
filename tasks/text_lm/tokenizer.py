"""Token codecs: raw bytes, or a byte-level BPE trained on the training side of the corpus.

A codec maps text (bytes) to token ids and every id back to the exact bytes it stands for, so
a model's cross-entropy per token converts to bits per byte of the text it scores (the sum of
its tokens' negative log-likelihoods over the number of bytes they decode to), whatever the
vocabulary.

- :func:`byte_codec`: the 256 byte values are the tokens.
- :func:`bpe_codec`: a byte-level BPE (Sennrich et al. 2016; GPT-2's byte-level variant,
  Radford et al. 2019) of ``vocab_size`` tokens, trained with Hugging Face ``tokenizers`` on
  the training side of the corpus only, never on held-out text. Its alphabet holds all 256
  bytes, so any byte string can be encoded. Training is deterministic for given text; the
  trained tokenizer is cached under ``$COLLAPSELAB_CACHE``, keyed by the SHA-256 of the text,
  the vocabulary size and the ``tokenizers`` version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from collapselab.errors import ConfigError

BYTE_VALUES = 256


def _unicode_to_byte() -> dict[str, int]:
    """The inverse of GPT-2's byte-to-unicode table, which byte-level BPE writes its tokens in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = list(printable)
    extra = 0
    for b in range(BYTE_VALUES):
        if b not in printable:
            printable.append(b)
            codes.append(BYTE_VALUES + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes)}


@dataclass(frozen=True)
class Codec:
    """Token ids <-> bytes. ``token_bytes[i]`` is what id ``i`` decodes to."""

    token_bytes: tuple[bytes, ...]
    encode_text: Callable[[bytes], list[int]]
    sha256: str

    @property
    def vocab(self) -> int:
        return len(self.token_bytes)

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        return np.uint8 if self.vocab <= 1 << 8 else np.uint16

    def encode(self, text: bytes) -> np.ndarray:
        """The token ids of ``text`` (1-D, the codec's dtype)."""
        return np.asarray(self.encode_text(text), dtype=self.dtype)

    def decode(self, ids: np.ndarray) -> bytes:
        """The bytes the ids ``ids`` (1-D) stand for."""
        return b"".join(self.token_bytes[i] for i in np.asarray(ids).tolist())

    def byte_lengths(self, chunks: np.ndarray) -> np.ndarray:
        """How many bytes each row of ``chunks`` ``(n, length)`` decodes to."""
        lengths = np.fromiter((len(t) for t in self.token_bytes), dtype=np.int64, count=self.vocab)
        return lengths[np.asarray(chunks, dtype=np.int64)].sum(axis=1)


def byte_codec() -> Codec:
    """Bytes as tokens (the identity)."""
    return Codec(tuple(bytes([b]) for b in range(BYTE_VALUES)), lambda text: list(text), "bytes")


def _train(text: bytes, vocab_size: int) -> str:
    """A byte-level BPE of ``vocab_size`` tokens trained on ``text``, as the tokenizer's JSON."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tokenizer.train_from_iterator([text.decode("utf-8")], trainer=trainer)
    return tokenizer.to_str()


def _write(spec: str, path: Path) -> None:
    path.write_text(spec, encoding="utf-8")


def bpe_codec(text: bytes, vocab_size: int) -> Codec:
    """The byte-level BPE of ``vocab_size`` tokens trained on ``text`` (UTF-8), from the cache if built before."""
    import tokenizers

    from collapselab.toolkit import cache

    if vocab_size <= BYTE_VALUES:
        raise ConfigError(f"a BPE vocabulary needs more than {BYTE_VALUES} tokens, got {vocab_size}")
    key = {"role": "text_lm byte-level BPE", "vocab_size": vocab_size, "tokenizers": tokenizers.__version__,
           "text_sha256": hashlib.sha256(text).hexdigest()}
    spec = cache.cached("text_lm/tokenizer", key, ".json", lambda: _train(text, vocab_size), _write,
                        lambda path: Path(path).read_text(encoding="utf-8"))
    tokenizer = tokenizers.Tokenizer.from_str(spec)
    to_byte = _unicode_to_byte()
    pieces = sorted(json.loads(spec)["model"]["vocab"].items(), key=lambda item: item[1])
    if [i for _, i in pieces] != list(range(len(pieces))):
        raise ConfigError("the BPE tokenizer's ids are not 0..V-1")
    token_bytes = tuple(bytes(to_byte[ch] for ch in piece) for piece, _ in pieces)

    def encode(data: bytes) -> list[int]:
        return list(tokenizer.encode(data.decode("utf-8"), add_special_tokens=False).ids)

    return Codec(token_bytes, encode, hashlib.sha256(spec.encode()).hexdigest())
