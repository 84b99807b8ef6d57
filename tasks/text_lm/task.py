"""Byte-level language modelling under recursive training (Gerstgrasser et al. 2024, Sec. 3).

Gerstgrasser et al. 2024 ("Is Model Collapse Inevitable?", arXiv 2404.01413) trained small
GPT-2/Llama-2 models on TinyStories, sampled a corpus of the same size from each model at
temperature 1 and trained the next model on it: test cross-entropy rose steadily when the
data were replaced and stayed flat when they accumulated. This task runs that loop with a
byte-level GPT (:mod:`tasks.text_lm.model`) on an embedded corpus (CPython's help text) by
default, on any local text file, or on TinyStories (:mod:`tasks.text_lm.corpus`).

An item is a chunk of ``context`` bytes (payload ``tokens``, uint8 of shape (n, context)).
The primary metric is the cross-entropy of the held-out real text in bits per byte; the
secondary metrics (:mod:`tasks.text_lm.metrics`) describe a fixed-seed set of samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from collapselab import FitResult, Pool, Task, TaskMetadata
from collapselab.errors import ConfigError, TaskError
from collapselab.tasks.text_lm import corpus, metrics
from collapselab.toolkit.devices import check_accelerator, resolve_device

if TYPE_CHECKING:
    import torch

    from collapselab.tasks.text_lm.model import ByteGPT, GPTConfig

EVAL_SEED = 20240401
ARTIFACT_SAMPLES = 16

_COMMON = {
    "corpus": "pydoc",
    "max_documents": 0,
    "data_seed": 0,
    "test_fraction": 0.1,
    "dropout": 0.0,
    "temperature": 1.0,
    "accelerator": "cpu",
}


class TextLMTask(Task):
    name = "text_lm"
    version = "1.0"
    metadata = TaskMetadata(
        modality="text (byte-level language model)",
        description="A small causal transformer trained on bytes of real text, then on its own samples.",
        citation="Gerstgrasser et al. 2024, arXiv 2404.01413 (Sec. 3); Shumailov et al. 2024, Nature 631",
        loss_unit="bits per byte (held-out real text)",
        secondary_metrics={
            "distinct_1": "distinct word unigrams / word unigrams in fixed-seed samples (Li et al. 2016)",
            "distinct_2": "the same for word bigrams",
            "distinct_3": "the same for word trigrams",
            "unigram_entropy": "entropy (bits) of the samples' byte histogram",
            "unigram_entropy_real": "the same for held-out real text (reference)",
            "unigram_kl": "KL(real || samples) in bits between byte histograms of held-out text and samples",
            "repetition": "seq-rep-8 of the samples: share of byte 8-grams repeating within a sample (Welleck et al. 2020)",
        },
    )
    presets = {
        "smoke": {**_COMMON, "context": 32, "train_chunks": 64, "n_layer": 1, "n_head": 2, "d_model": 32,
                  "epochs": 2, "batch_size": 16, "lr": 1e-2, "weight_decay": 0.0,
                  "sample_batch": 256, "eval_samples": 8, "generations": 2},
        "cpu": {**_COMMON, "context": 128, "train_chunks": 640, "n_layer": 2, "n_head": 4, "d_model": 64,
                "epochs": 2, "batch_size": 8, "lr": 3e-3, "weight_decay": 0.0,
                "sample_batch": 512, "eval_samples": 256, "generations": 10},
        "paper": {**_COMMON, "corpus": "tinystories", "max_documents": 300_000, "context": 256,
                  "train_chunks": 200_000, "n_layer": 6, "n_head": 6, "d_model": 384,
                  "epochs": 1, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.1,
                  "sample_batch": 1024, "eval_samples": 512, "accelerator": "auto", "generations": 10},
    }

    def __init__(self, preset: str = "cpu", overrides: Mapping[str, Any] | None = None) -> None:
        super().__init__(preset, overrides)
        # Instance-level: the default number of epochs is the preset's.
        self.fit_options = {"epochs": int(self.config["epochs"]), "weight_decay": float(self.config["weight_decay"])}

    def check_config(self, config: Mapping[str, Any]) -> None:
        positive = ("context", "train_chunks", "n_layer", "n_head", "d_model", "epochs", "batch_size",
                    "sample_batch", "eval_samples")
        for key in positive:
            if config[key] < 1:
                raise ConfigError(f"{key} must be >= 1, got {config[key]}")
        if config["d_model"] % config["n_head"]:
            raise ConfigError(f"d_model ({config['d_model']}) must be divisible by n_head ({config['n_head']})")
        if not 0.0 < config["test_fraction"] < 1.0:
            raise ConfigError(f"test_fraction must be in (0, 1), got {config['test_fraction']}")
        if not 0.0 <= config["dropout"] < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {config['dropout']}")
        for key in ("temperature", "lr"):
            if config[key] <= 0:
                raise ConfigError(f"{key} must be positive, got {config[key]}")
        if config["weight_decay"] < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {config['weight_decay']}")
        check_accelerator(config["accelerator"])

    # ------------------------------------------------------------------ data
    @cached_property
    def _split(self) -> corpus.Split:
        c = self.config
        documents = corpus.load_documents(c["corpus"], c["max_documents"])
        return corpus.split_corpus(documents, c["context"], c["train_chunks"], c["test_fraction"], c["data_seed"])

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
        return dict(self._split.fingerprint)

    def device(self) -> str:
        return str(self._device)

    @cached_property
    def _device(self) -> torch.device:
        return resolve_device(self.config["accelerator"])

    # ----------------------------------------------------------------- model
    def _model_config(self, total_steps: int = 1, weight_decay: float | None = None) -> GPTConfig:
        from collapselab.tasks.text_lm.model import GPTConfig

        c = self.config
        return GPTConfig(
            context=c["context"],
            n_layer=c["n_layer"],
            n_head=c["n_head"],
            d_model=c["d_model"],
            dropout=c["dropout"],
            lr=c["lr"],
            weight_decay=c["weight_decay"] if weight_decay is None else weight_decay,
            total_steps=total_steps,
        )

    def fit(self, pool: Pool, options: Mapping[str, Any], rng: np.random.Generator) -> FitResult:
        """Train a fresh model for ``epochs`` over ``pool``; item weights scale each item's loss."""
        import torch

        from collapselab.tasks.text_lm.model import ByteGPT
        from collapselab.toolkit.training import make_loader, train

        c = self.config
        epochs = int(options["epochs"])
        if epochs < 1:
            raise TaskError(f"task 'text_lm': fit option epochs must be >= 1, got {epochs}")
        weight = np.ones(len(pool)) if pool.weight is None else np.asarray(pool.weight)
        if weight.sum() <= 0:
            raise TaskError("task 'text_lm': every item of the training pool has weight 0")
        weight = weight / weight.mean()
        tokens = torch.tensor(pool["tokens"])
        loader = make_loader([tokens, torch.as_tensor(weight, dtype=torch.float32)], c["batch_size"], rng)
        model_config = self._model_config(epochs * len(loader), float(options["weight_decay"]))
        model, compute = train(
            lambda: ByteGPT(model_config),
            loader,
            rng,
            self.name,
            epochs=epochs,
            accelerator=c["accelerator"],
            gradient_clip_val=1.0,
        )
        return FitResult(model.eval(), compute)

    def sample(self, model: ByteGPT, n: int, rng: np.random.Generator) -> Pool:
        """``n`` chunks of ``context`` bytes, each sampled from the start at the configured temperature."""
        return Pool({"tokens": self._sample(model, n, rng)}, origin=0)

    def _sample(self, model: ByteGPT, n: int, rng: np.random.Generator) -> np.ndarray:
        from collapselab.tasks.text_lm.sampling import sample_bytes

        c = self.config
        return sample_bytes(model, n, c["context"], rng, c["temperature"], self._device, c["sample_batch"])

    def _bits_per_byte(self, model: ByteGPT, chunks: np.ndarray) -> np.ndarray:
        """Mean negative log2-likelihood of each chunk's bytes under ``model``."""
        import torch

        model = model.to(self._device).eval()
        batch = self.config["sample_batch"]
        out = []
        with torch.no_grad():
            for i in range(0, len(chunks), batch):
                items = torch.tensor(chunks[i : i + batch], device=self._device)
                out.append(model.byte_nll(items).mean(dim=1).double().cpu().numpy())
        return np.concatenate(out) / math.log(2)

    def evaluate(self, model: ByteGPT) -> dict[str, float]:
        """Bits per byte on all held-out chunks, and sample metrics from a fixed seed."""
        loss = float(self._bits_per_byte(model, self._split.test).mean())
        samples = self._sample(model, self.config["eval_samples"], np.random.default_rng(EVAL_SEED))
        test = self._split.test
        return {
            "loss": loss,
            **metrics.text_metrics(samples, test),
            "unigram_entropy_real": metrics.unigram_entropy(test),
        }

    def score(self, model: ByteGPT, pool: Pool) -> np.ndarray:
        """Per-item log2-likelihood per byte under ``model`` (higher is more plausible text)."""
        return -self._bits_per_byte(model, pool["tokens"])

    def write_artifacts(self, model: ByteGPT, generation: int, directory: Path, rng: np.random.Generator) -> list[str]:
        """``samples-gen-XXXX.txt``: a few samples of this generation's model, as text."""
        samples = self._sample(model, ARTIFACT_SAMPLES, rng)
        name = f"samples-gen-{generation:04d}.txt"
        header = (
            f"# text_lm generation {generation}: {len(samples)} samples of {samples.shape[1]} bytes "
            f"at temperature {self.config['temperature']}\n"
        )
        body = "".join(f"\n--- sample {i} ---\n{metrics.printable(row.tobytes())}\n" for i, row in enumerate(samples))
        (directory / name).write_text(header + body, encoding="utf-8")
        return [name]

    def save_model(self, model: ByteGPT, path: Path) -> None:
        from collapselab.toolkit.training import save_state

        save_state(model, path)

    def load_model(self, path: Path) -> ByteGPT:
        from collapselab.tasks.text_lm.model import ByteGPT
        from collapselab.toolkit.training import load_state

        return load_state(ByteGPT(self._model_config()), path)
