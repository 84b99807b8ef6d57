"""Language modelling under recursive training (Gerstgrasser et al. 2024, Sec. 3).

Gerstgrasser et al. 2024 ("Is Model Collapse Inevitable?", arXiv 2404.01413) trained small
GPT-2/Llama-2 models on TinyStories, sampled a corpus of the same size from each model at
temperature 1 and trained the next model on it: test cross-entropy rose steadily when the
data were replaced and stayed flat when they accumulated. This task runs that loop with a
small GPT (:mod:`tasks.text_lm.model`) on an embedded corpus (CPython's help text) by
default, on any local text file, or on TinyStories (:mod:`tasks.text_lm.corpus`). Its tokens
are bytes (``vocab_size`` 0) or a byte-level BPE of ``vocab_size`` tokens trained on the
training side of the corpus (:mod:`tasks.text_lm.tokenizer`).

An item is a chunk of ``context`` tokens (payload ``tokens``, unsigned ints of shape (n, context)).
The primary metric is the cross-entropy of the held-out real text in bits per byte (the
tokens' negative log2-likelihoods summed over the bytes they decode to); the secondary
metrics (:mod:`tasks.text_lm.metrics`) describe a fixed-seed set of samples, decoded to text.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from collapselab import Pool, TaskMetadata
from collapselab.errors import TaskError
from collapselab.tasks.text_lm import corpus, metrics, tokenizer
from collapselab.toolkit.strata import stratum_losses
from collapselab.toolkit.torch_task import GRADIENT_CLIP, TorchConfig, TorchTask

if TYPE_CHECKING:

    from collapselab.tasks.text_lm.model import GPT, GPTConfig

EVAL_SEED = 20240401
VERIFIER_SEED = 20240611
VERIFIER_SHARE = 0.8  # of the reserve trains the verifier; the rest calibrates its threshold
ACCEPT_QUANTILE = 0.95  # the verifier accepts text at most as surprising as 95% of held-out real text
ARTIFACT_SAMPLES = 16

class TextLMConfig(TorchConfig):
    """The corpus and its split, the tokenizer, the transformer and its optimiser, and sampling."""

    corpus: str = Field(min_length=1, description="pydoc, tinystories or the path of a text file")
    vocab_size: int = Field(description="BPE vocabulary size, or 0 for bytes")
    max_documents: int = Field(ge=0, description="documents read from the corpus (0 = all)")
    data_seed: int = Field(ge=0)
    test_fraction: float = Field(gt=0, lt=1)
    validation_fraction: float = Field(gt=0, lt=1)
    context: int = Field(ge=1, description="tokens per training chunk and per sample")
    train_chunks: int = Field(ge=1)
    n_layer: int = Field(ge=1)
    n_head: int = Field(ge=1)
    d_model: int = Field(ge=1)
    dropout: float = Field(ge=0, lt=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    temperature: float = Field(gt=0, description="the sampler's default temperature")
    sample_batch: int = Field(ge=1)
    eval_samples: int = Field(ge=1)

    @field_validator("vocab_size")
    @classmethod
    def _vocabulary(cls, vocab: int) -> int:
        if vocab != 0 and not tokenizer.BYTE_VALUES < vocab <= 1 << 16:
            raise ValueError(f"must be 0 (bytes) or in ({tokenizer.BYTE_VALUES}, 65536]")
        return vocab

    @model_validator(mode="after")
    def _shapes(self) -> TextLMConfig:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if self.test_fraction + self.validation_fraction >= 1.0:
            raise ValueError("test_fraction + validation_fraction must be below 1 (the rest is the training side)")
        return self


_COMMON = {
    "corpus": "pydoc",
    "vocab_size": 0,
    "max_documents": 0,
    "data_seed": 0,
    "test_fraction": 0.1,
    "validation_fraction": 0.05,
    "dropout": 0.0,
    "temperature": 1.0,
    "accelerator": "cpu",
}


class TextLMTask(TorchTask):
    name = "text_lm"
    version = "3.0"
    Config = TextLMConfig
    settings: TextLMConfig
    metadata = TaskMetadata(
        modality="text (language model, byte-level BPE tokens)",
        requires=("torch", "pytorch_lightning", "tokenizers"),
        extra="text",
        description="A small causal transformer trained on real text, then on its own samples.",
        citation="Gerstgrasser et al. 2024, arXiv 2404.01413 (Sec. 3); Shumailov et al. 2024, Nature 631",
        loss_unit="bits per byte (held-out real text)",
        secondary_metrics={
            "mode_coverage": "share of the held-out text's distinct word bigrams that occur in fixed-seed samples",
            "variance_ratio": "entropy of the samples' byte histogram over held-out real text's",
            "hallucination": "share of sampled words (runs of ASCII letters) absent from the training text",
            "tail_loss": "bits per byte on the quarter of held-out chunks a byte-bigram model of the training text "
                         "finds most surprising",
            "common_loss": "bits per byte on the other held-out chunks",
            "unigram_entropy": "entropy (bits) of the samples' byte histogram",
            "unigram_entropy_real": "the same for held-out real text (reference)",
            "unigram_kl": "KL(real || samples) in bits between byte histograms of held-out text and samples",
            "repetition": "seq-rep-8 of the samples: share of byte 8-grams repeating within a decoded sample (Welleck et al. 2020)",
        },
    )
    presets = {
        "smoke": {**_COMMON, "vocab_size": 512, "context": 32, "train_chunks": 64, "n_layer": 1, "n_head": 2, "d_model": 32,
                  "steps": 8, "batch_size": 16, "lr": 1e-2, "weight_decay": 0.0,
                  "sample_batch": 256, "eval_samples": 8, "generations": 2},
        "cpu": {**_COMMON, "vocab_size": 4096, "context": 64, "train_chunks": 1000, "n_layer": 2, "n_head": 4,
                "d_model": 64, "steps": 750, "batch_size": 8, "lr": 3e-3, "weight_decay": 0.0,
                "sample_batch": 1024, "eval_samples": 256, "generations": 10},
        "paper": {**_COMMON, "corpus": "tinystories", "max_documents": 300_000, "context": 256,
                  "train_chunks": 200_000, "n_layer": 6, "n_head": 6, "d_model": 384,
                  "steps": 3125, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.1,
                  "sample_batch": 1024, "eval_samples": 512, "accelerator": "auto", "generations": 10},
    }

    def default_fit_options(self) -> Mapping[str, Any]:
        return {**super().default_fit_options(), "weight_decay": self.settings.weight_decay}

    def default_sampling_options(self) -> Mapping[str, Any]:
        return {"temperature": self.settings.temperature}

    # ------------------------------------------------------------------ data
    @cached_property
    def _data(self) -> tuple[corpus.Split, tokenizer.Codec]:
        """The split in tokens, and the codec: bytes, or a BPE trained on the training side only."""
        c = self.settings
        documents = corpus.load_documents(c.corpus, c.max_documents)
        codecs = [tokenizer.byte_codec()]

        def train_bpe(training_text: bytes) -> corpus.Encoder:
            codecs.append(tokenizer.bpe_codec(training_text, c.vocab_size))
            return codecs[-1].encode

        split = corpus.split_corpus(documents, c.context, c.train_chunks, c.test_fraction,
                                    c.validation_fraction, c.data_seed, train_bpe if c.vocab_size else None)
        return split, codecs[-1]

    @property
    def _split(self) -> corpus.Split:
        return self._data[0]

    @property
    def codec(self) -> tokenizer.Codec:
        """Token ids <-> bytes for this configuration."""
        return self._data[1]

    @cached_property
    def _test_text(self) -> np.ndarray:
        """The held-out test chunks decoded to bytes (uint8, 1-D)."""
        return self._text(self._split.test)

    @cached_property
    def _validation_text(self) -> np.ndarray:
        """The validation chunks decoded to bytes (uint8, 1-D)."""
        return self._text(self._split.validation)

    def _text(self, chunks: np.ndarray) -> np.ndarray:
        return np.frombuffer(self.codec.decode(chunks.ravel()), dtype=np.uint8)

    def decode(self, chunks: np.ndarray) -> list[bytes]:
        """Each row of token ids as the bytes it stands for."""
        return [self.codec.decode(row) for row in np.asarray(chunks)]

    def real_pool(self) -> Pool:
        return Pool({"tokens": self._split.train}, origin=-1)

    def fresh_real_pool(self, n: int, rng: np.random.Generator) -> Pool:
        """``n`` chunks of the reserve: training-side text outside the real pool (never test text)."""
        reserve = self._split.reserve
        if n > len(reserve):
            raise TaskError(
                f"task 'text_lm': {n} fresh real chunks requested but the reserve holds {len(reserve)}; "
                "lower train_chunks or use a larger corpus"
            )
        return Pool({"tokens": reserve[np.sort(rng.choice(len(reserve), size=n, replace=False))]}, origin=-1)

    def data_fingerprint(self) -> dict[str, Any]:
        split, codec = self._data
        return {**split.fingerprint, "train_bytes": int(codec.byte_lengths(split.train).sum()),
                "test_bytes": int(self._test_text.size), "train_tokens": int(split.train.size),
                "test_tokens": int(split.test.size), "vocab": codec.vocab, "tokenizer_sha256": codec.sha256}

    # ----------------------------------------------------------------- model
    def _model_config(self, total_steps: int = 1, weight_decay: float | None = None) -> GPTConfig:
        from collapselab.tasks.text_lm.model import GPTConfig

        c = self.settings
        return GPTConfig(
            context=c.context,
            vocab=self.codec.vocab,
            n_layer=c.n_layer,
            n_head=c.n_head,
            d_model=c.d_model,
            dropout=c.dropout,
            lr=c.lr,
            weight_decay=c.weight_decay if weight_decay is None else weight_decay,
            total_steps=total_steps,
        )

    def build_model(self, total_steps: int, options: Mapping[str, Any]) -> GPT:
        from collapselab.tasks.text_lm.model import GPT

        return GPT(self._model_config(total_steps, float(options["weight_decay"])))

    def training_tensors(self, pool: Pool) -> list[Any]:
        import torch

        return [torch.tensor(np.asarray(pool["tokens"], dtype=np.int64))]

    def sample(self, model: GPT, n: int, rng: np.random.Generator, options: Mapping[str, Any]) -> Pool:
        """``n`` chunks of ``context`` tokens, each sampled from the start at ``options["temperature"]``."""
        return Pool({"tokens": self._sample(model, n, rng, float(options["temperature"]))}, origin=0)

    def _sample(self, model: GPT, n: int, rng: np.random.Generator, temperature: float | None = None) -> np.ndarray:
        from collapselab.tasks.text_lm.sampling import sample_tokens

        c = self.settings
        temperature = c.temperature if temperature is None else temperature
        ids = sample_tokens(model, n, c.context, rng, temperature, self.torch_device, c.sample_batch)
        return ids.astype(self.codec.dtype)

    def _bits(self, model: GPT, chunks: np.ndarray) -> np.ndarray:
        """Negative log2-likelihood of each chunk (summed over its tokens) under ``model``."""
        import torch

        model = model.to(self.torch_device).eval()
        batch = self.settings.sample_batch
        out = []
        with torch.no_grad():
            for i in range(0, len(chunks), batch):
                items = torch.tensor(np.asarray(chunks[i : i + batch], dtype=np.int64), device=self.torch_device)
                out.append(model.token_nll(items).sum(dim=1).double().cpu().numpy())
        return np.concatenate(out) / math.log(2)

    def _bits_per_token(self, model: GPT, chunks: np.ndarray) -> np.ndarray:
        """Each chunk's mean negative log2-likelihood per token (per byte for the byte codec). The
        verifier scores text by it: per byte, even an untrained model would favour chunks of long tokens."""
        return self._bits(model, chunks) / np.asarray(chunks).shape[1]

    def evaluate(self, model: GPT) -> dict[str, float]:
        """Bits per byte of all held-out test text, its tail and common strata, and sample metrics from
        a fixed seed against it."""
        return self._held_out_metrics(model, self._split.test, self._test_text)

    def validate(self, model: GPT) -> dict[str, float]:
        """The same metrics on the validation text (model selection; never the test text)."""
        return self._held_out_metrics(model, self._split.validation, self._validation_text)

    def _held_out_metrics(self, model: GPT, chunks: np.ndarray, text: np.ndarray) -> dict[str, float]:
        bits, lengths = self._bits(model, chunks), self.codec.byte_lengths(chunks)
        samples = self.decode(self._sample(model, self.settings.eval_samples, np.random.default_rng(EVAL_SEED)))
        surprising = metrics.surprising_chunks(self._training_texts, self.decode(chunks))
        return {
            "loss": float(bits.sum() / lengths.sum()),
            **metrics.text_metrics(samples, text),
            "unigram_entropy_real": metrics.unigram_entropy(text),
            "hallucination": 1.0 - metrics.valid_word_rate(samples, self._vocabulary),
            **stratum_losses(bits / lengths, np.arange(len(chunks)), surprising),
        }

    @cached_property
    def _training_texts(self) -> list[bytes]:
        """The real pool's chunks as text."""
        return self.decode(self._split.train)

    @cached_property
    def _vocabulary(self) -> frozenset[bytes]:
        return metrics.vocabulary(b" ".join(self._training_texts))

    # ----------------------------------------------------- hooks for strategies
    def _verifier_parts(self) -> tuple[np.ndarray, np.ndarray]:
        reserve = self._split.reserve
        if len(reserve) < 10:
            raise TaskError(f"task {self.name!r}: the reserve holds {len(reserve)} chunks, too few to train a verifier; "
                            "lower train_chunks")
        cut = max(1, round(VERIFIER_SHARE * len(reserve)))
        return reserve[:cut], reserve[cut:]

    def _verifier(self, quality: float) -> tuple[GPT, float]:
        """A language model independent of the generator chain: the task's architecture trained with its
        own seed for ``quality`` times the preset's step budget on 80% of the reserve (real text
        outside the real pool and the test set); quality 0 is the untrained model (uninformative).
        Returns the model and its acceptance threshold: the 95th percentile of its bits per token on
        the other 20% of the reserve. Cached on disk, keyed by everything it depends on."""
        import torch

        from collapselab.toolkit import cache
        from collapselab.toolkit.training import budget_loader, load_state, save_state, train

        if not 0.0 <= quality <= 1.0:
            raise TaskError(f"task {self.name!r}: verifier quality must be in [0, 1], got {quality}")
        fit_on, calibrate = self._verifier_parts()
        steps = round(quality * self.settings.steps)
        key = {"role": "text verifier", "steps": steps, "seed": VERIFIER_SEED, "batch": self.settings.batch_size,
               "model": {k: self.config[k] for k in ("context", "n_layer", "n_head", "d_model", "lr", "dropout")},
               "tokenizer_sha256": self.codec.sha256,
               "reserve_sha256": hashlib.sha256(fit_on.tobytes()).hexdigest(), "torch": torch.__version__}

        def build() -> GPT:
            if steps == 0:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(VERIFIER_SEED)
                    return self.build_model(1, self.fit_options).eval()
            rng = np.random.default_rng(VERIFIER_SEED)
            loader = budget_loader([torch.tensor(fit_on)], np.ones(len(fit_on)), self.settings.batch_size, steps, rng)
            model, _ = train(lambda: self.build_model(steps, self.fit_options), loader, rng, f"{self.name} (verifier)",
                             steps=steps, accelerator=self.settings.accelerator, gradient_clip_val=GRADIENT_CLIP)
            return model.eval()

        model = cache.cached("text_lm/verifier", key, ".pt", build, save_state,
                             lambda path: load_state(self.build_model(1, self.fit_options), path))
        return model, float(np.quantile(self._bits_per_token(model, calibrate), ACCEPT_QUANTILE))

    def verify(self, pool: Pool, quality: float, rng: np.random.Generator) -> np.ndarray:
        """Threshold minus the verifier's bits per token: the verifier accepts a chunk at most as surprising
        to it as 95% of held-out real text (a threshold, not a top-k: it may accept all or none)."""
        model, threshold = self._verifier(quality)
        return threshold - self._bits_per_token(model, pool["tokens"])

    def reward(self, pool: Pool) -> np.ndarray:
        """Minus the best verifier's bits per token of each chunk (higher: more fluent)."""
        model, _ = self._verifier(1.0)
        return -self._bits_per_token(model, pool["tokens"])

    def features(self, pool: Pool) -> np.ndarray:
        """The histogram of the bytes the chunk decodes to (256 shares) and the best verifier's bits per token."""
        tokens = np.asarray(pool["tokens"])
        histogram = np.stack([metrics.byte_counts(np.frombuffer(text, dtype=np.uint8)) / max(1, len(text))
                              for text in self.decode(tokens)])
        model, _ = self._verifier(1.0)
        return np.concatenate([histogram, self._bits_per_token(model, tokens)[:, None]], axis=1)

    def write_artifacts(self, model: GPT, generation: int, directory: Path, rng: np.random.Generator) -> list[str]:
        """``samples-gen-XXXX.txt``: a few samples of this generation's model, as text."""
        samples = self.decode(self._sample(model, ARTIFACT_SAMPLES, rng))
        name = f"samples-gen-{generation:04d}.txt"
        header = (
            f"# text_lm generation {generation}: {len(samples)} samples of {self.settings.context} tokens "
            f"at temperature {self.settings.temperature}\n"
        )
        body = "".join(f"\n--- sample {i} ---\n{metrics.printable(text)}\n" for i, text in enumerate(samples))
        (directory / name).write_text(header + body, encoding="utf-8")
        return [name]
