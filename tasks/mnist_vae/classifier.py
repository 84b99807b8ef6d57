"""The fixed feature extractor: a LeNet-5 digit classifier trained once on the real training digits.

LeCun et al. 1998, "Gradient-based learning applied to document recognition". Its 84-d
penultimate activations are the feature space of the Fréchet distance, as Alemohammad et al.
2024 ("Self-Consuming Generative Models Go MAD", ICLR) used LeNet features for MNIST; its
predicted classes give the class histogram of the samples. The trained weights are cached,
content-keyed on the training digits, the training settings and the torch version, so every
run of a configuration measures with the same instrument and none retrains it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from collapselab.toolkit import cache
from collapselab.toolkit.training import budget_loader, load_state, save_state, train

VERSION = 3
BATCH_SIZE = 128
LR = 1e-3


class LeNet(pl.LightningModule):
    """LeNet-5 with ReLU and max pooling: 28x28 -> 6@28x28 -> 16@10x10 -> 120 -> 84 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        )
        self.dense = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.head = nn.Linear(84, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """84-d penultimate activations of images ``x`` of shape (n, 1, 28, 28)."""
        return self.dense(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y, _ = batch  # the budget loader appends item weights (all 1 here)
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=LR)


def as_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images (n, 28, 28) in {0, 1} -> float32 (n, 1, 28, 28)."""
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).reshape(-1, 1, 28, 28)


def cache_key(train_sha256: str, epochs: int, seed: int, device_type: str, role: str = "features") -> dict[str, Any]:
    """Everything the trained weights depend on (``role``: the evaluation's feature extractor, or a
    verifier of some quality trained on other digits with another seed)."""
    return {
        "model": "lenet5",
        "role": role,
        "version": VERSION,
        "epochs": int(epochs),
        "batch_size": BATCH_SIZE,
        "lr": LR,
        "seed": int(seed),
        "train_sha256": train_sha256,
        "torch": torch.__version__,
        "device_type": device_type,
    }


def fit_classifier(images: np.ndarray, labels: np.ndarray, epochs: int, seed: int, accelerator: str) -> LeNet:
    """Train LeNet-5 on ``images`` for ``epochs`` passes with the shared Lightning loop (no cache)."""
    rng = np.random.default_rng(int(seed))
    steps = int(epochs) * -(-len(images) // BATCH_SIZE)
    tensors = [as_tensor(images), torch.from_numpy(labels.astype(np.int64))]
    loader = budget_loader(tensors, np.ones(len(images)), BATCH_SIZE, steps, rng)
    model, _ = train(LeNet, loader, rng, "mnist_vae (classifier)", steps=steps, accelerator=accelerator)
    return model.eval()


def load_classifier(key: Mapping[str, Any], images: np.ndarray, labels: np.ndarray, accelerator: str) -> LeNet:
    """The classifier for ``key`` from the cache, trained on ``images`` and stored there if absent."""

    def build() -> LeNet:
        return fit_classifier(images, labels, key["epochs"], key["seed"], accelerator)

    def load(path: Path) -> LeNet:
        return load_state(LeNet(), path)

    return cache.cached("mnist_vae/classifier", key, ".pt", build, save_state, load)


@torch.no_grad()
def probabilities(classifier: LeNet, images: np.ndarray, device: torch.device, batch: int = 2048) -> np.ndarray:
    """Class probabilities (float64, (n, 10)) of ``images``."""
    classifier = classifier.to(device).eval()
    parts = [torch.softmax(classifier(chunk.to(device)), dim=-1).double().cpu() for chunk in as_tensor(images).split(batch)]
    return torch.cat(parts).numpy()


@torch.no_grad()
def embed(classifier: LeNet, images: np.ndarray, device: torch.device, batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (float64, (n, 84)) and predicted classes ((n,)) of ``images``."""
    classifier = classifier.to(device).eval()
    features, classes = [], []
    for chunk in as_tensor(images).split(batch):
        h = classifier.features(chunk.to(device))
        features.append(h.double().cpu())
        classes.append(classifier.head(h).argmax(-1).cpu())
    return torch.cat(features).numpy(), torch.cat(classes).numpy()
