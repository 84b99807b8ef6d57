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

import hashlib
import math
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from collapselab import Pool, TaskMetadata
from collapselab.errors import ConfigError, TaskError
from collapselab.tasks.text_lm import corpus, metrics
from collapselab.toolkit.strata import stratum_losses
from collapselab.toolkit.torch_task import TorchTask

if TYPE_CHECKING:

    from collapselab.tasks.text_lm.model import ByteGPT, GPTConfig

EVAL_SEED = 20240401
VERIFIER_SEED = 20240611
VERIFIER_SHARE = 0.8  # of the reserve trains the verifier; the rest calibrates its threshold
ACCEPT_QUANTILE = 0.95  # the verifier accepts text at most as surprising as 95% of held-out real text
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


class TextLMTask(TorchTask):
    name = "text_lm"
    version = "2.1"
    metadata = TaskMetadata(
        modality="text (byte-level language model)",
        requires=("torch", "pytorch_lightning"),
        extra="text",
        description="A small causal transformer trained on bytes of real text, then on its own samples.",
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
            "repetition": "seq-rep-8 of the samples: share of byte 8-grams repeating within a sample (Welleck et al. 2020)",
        },
    )
    presets = {
        "smoke": {**_COMMON, "context": 32, "train_chunks": 64, "n_layer": 1, "n_head": 2, "d_model": 32,
                  "steps": 8, "batch_size": 16, "lr": 1e-2, "weight_decay": 0.0,
                  "sample_batch": 256, "eval_samples": 8, "generations": 2},
        "cpu": {**_COMMON, "context": 128, "train_chunks": 2000, "n_layer": 2, "n_head": 4, "d_model": 64,
                "steps": 3200, "batch_size": 8, "lr": 3e-3, "weight_decay": 0.0,
                "sample_batch": 1024, "eval_samples": 256, "generations": 10},
        "paper": {**_COMMON, "corpus": "tinystories", "max_documents": 300_000, "context": 256,
                  "train_chunks": 200_000, "n_layer": 6, "n_head": 6, "d_model": 384,
                  "steps": 3125, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.1,
                  "sample_batch": 1024, "eval_samples": 512, "accelerator": "auto", "generations": 10},
    }

    def default_fit_options(self) -> Mapping[str, Any]:
        return {**super().default_fit_options(), "weight_decay": float(self.config["weight_decay"])}

    def default_sampling_options(self) -> Mapping[str, Any]:
        return {"temperature": float(self.config["temperature"])}

    def check_config(self, config: Mapping[str, Any]) -> None:
        super().check_config(config)
        positive = ("context", "train_chunks", "n_layer", "n_head", "d_model", "sample_batch", "eval_samples")
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

    def build_model(self, total_steps: int, options: Mapping[str, Any]) -> ByteGPT:
        from collapselab.tasks.text_lm.model import ByteGPT

        return ByteGPT(self._model_config(total_steps, float(options["weight_decay"])))

    def training_tensors(self, pool: Pool) -> list[Any]:
        import torch

        return [torch.tensor(pool["tokens"])]

    def sample(self, model: ByteGPT, n: int, rng: np.random.Generator, options: Mapping[str, Any]) -> Pool:
        """``n`` chunks of ``context`` bytes, each sampled from the start at ``options["temperature"]``."""
        return Pool({"tokens": self._sample(model, n, rng, float(options["temperature"]))}, origin=0)

    def _sample(self, model: ByteGPT, n: int, rng: np.random.Generator, temperature: float | None = None) -> np.ndarray:
        from collapselab.tasks.text_lm.sampling import sample_bytes

        c = self.config
        temperature = c["temperature"] if temperature is None else temperature
        return sample_bytes(model, n, c["context"], rng, temperature, self.torch_device, c["sample_batch"])

    def _bits_per_byte(self, model: ByteGPT, chunks: np.ndarray) -> np.ndarray:
        """Mean negative log2-likelihood of each chunk's bytes under ``model``."""
        import torch

        model = model.to(self.torch_device).eval()
        batch = self.config["sample_batch"]
        out = []
        with torch.no_grad():
            for i in range(0, len(chunks), batch):
                items = torch.tensor(chunks[i : i + batch], device=self.torch_device)
                out.append(model.byte_nll(items).mean(dim=1).double().cpu().numpy())
        return np.concatenate(out) / math.log(2)

    def evaluate(self, model: ByteGPT) -> dict[str, float]:
        """Bits per byte on all held-out chunks, and sample metrics from a fixed seed."""
        bits = self._bits_per_byte(model, self._split.test)
        samples = self._sample(model, self.config["eval_samples"], np.random.default_rng(EVAL_SEED))
        test = self._split.test
        return {
            "loss": float(bits.mean()),
            **metrics.text_metrics(samples, test),
            "unigram_entropy_real": metrics.unigram_entropy(test),
            "hallucination": 1.0 - metrics.valid_word_rate([row.tobytes() for row in samples], self._vocabulary),
            **stratum_losses(bits, np.arange(len(test)), self._surprising),
        }

    @cached_property
    def _vocabulary(self) -> frozenset[bytes]:
        return metrics.vocabulary(b" ".join(row.tobytes() for row in np.asarray(self._split.train, dtype=np.uint8)))

    @cached_property
    def _surprising(self) -> np.ndarray:
        return metrics.surprising_chunks(self._split.train, self._split.test)

    # ----------------------------------------------------- hooks for strategies
    def _verifier_parts(self) -> tuple[np.ndarray, np.ndarray]:
        reserve = self._split.reserve
        if len(reserve) < 10:
            raise TaskError(f"task {self.name!r}: the reserve holds {len(reserve)} chunks, too few to train a verifier; "
                            "lower train_chunks")
        cut = max(1, round(VERIFIER_SHARE * len(reserve)))
        return reserve[:cut], reserve[cut:]

    def _verifier(self, quality: float) -> tuple[ByteGPT, float]:
        """A byte model independent of the generator chain: the task's architecture trained with its
        own seed for ``quality`` times the preset's step budget on 80% of the reserve (real text
        outside the real pool and the test set); quality 0 is the untrained model (uninformative).
        Returns the model and its acceptance threshold: the 95th percentile of its bits per byte on
        the other 20% of the reserve. Cached on disk, keyed by everything it depends on."""
        import torch

        from collapselab.toolkit import cache
        from collapselab.toolkit.training import budget_loader, load_state, save_state, train

        if not 0.0 <= quality <= 1.0:
            raise TaskError(f"task {self.name!r}: verifier quality must be in [0, 1], got {quality}")
        fit_on, calibrate = self._verifier_parts()
        steps = round(quality * self.config["steps"])
        key = {"role": "text verifier", "steps": steps, "seed": VERIFIER_SEED, "batch": self.config["batch_size"],
               "model": {k: self.config[k] for k in ("context", "n_layer", "n_head", "d_model", "lr", "dropout")},
               "reserve_sha256": hashlib.sha256(fit_on.tobytes()).hexdigest(), "torch": torch.__version__}

        def build() -> ByteGPT:
            if steps == 0:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(VERIFIER_SEED)
                    return self.build_model(1, self.fit_options).eval()
            rng = np.random.default_rng(VERIFIER_SEED)
            loader = budget_loader([torch.tensor(fit_on)], np.ones(len(fit_on)), self.config["batch_size"], steps, rng)
            model, _ = train(lambda: self.build_model(steps, self.fit_options), loader, rng, f"{self.name} (verifier)",
                             steps=steps, accelerator=self.config["accelerator"], gradient_clip_val=1.0)
            return model.eval()

        model = cache.cached("text_lm/verifier", key, ".pt", build, save_state,
                             lambda path: load_state(self.build_model(1, self.fit_options), path))
        return model, float(np.quantile(self._bits_per_byte(model, calibrate), ACCEPT_QUANTILE))

    def verify(self, pool: Pool, quality: float, rng: np.random.Generator) -> np.ndarray:
        """Threshold minus the verifier's bits per byte: the verifier accepts a chunk at most as surprising
        to it as 95% of held-out real text (a threshold, not a top-k: it may accept all or none)."""
        model, threshold = self._verifier(quality)
        return threshold - self._bits_per_byte(model, pool["tokens"])

    def reward(self, pool: Pool) -> np.ndarray:
        """Minus the best verifier's bits per byte of each chunk (higher: more fluent)."""
        model, _ = self._verifier(1.0)
        return -self._bits_per_byte(model, pool["tokens"])

    def features(self, pool: Pool) -> np.ndarray:
        """The chunk's byte histogram (256 shares) and the best verifier's bits per byte."""
        tokens = np.asarray(pool["tokens"])
        histogram = np.stack([np.bincount(row, minlength=256) for row in tokens]).astype(np.float64) / tokens.shape[1]
        model, _ = self._verifier(1.0)
        return np.concatenate([histogram, self._bits_per_byte(model, tokens)[:, None]], axis=1)

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
