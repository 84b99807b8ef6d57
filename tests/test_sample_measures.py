"""Every secondary sample metric of mnist_vae and text_lm on synthetic samplers with a known
direction: one that shrinks the spread, one that drops a class (or repeats itself), one that emits
noise. Each metric must move the way collapse moves it (NumPy only: no model is trained)."""

from __future__ import annotations

import numpy as np
import pytest

from collapselab.tasks.mnist_vae import metrics as image
from collapselab.tasks.text_lm import metrics as text
from collapselab.toolkit.strata import stratum_losses

CLASSES, PER_CLASS, DIM = 10, 40, 8


def _clusters(rng: np.random.Generator, scale: float = 1.0, drop: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Features of ten well-separated classes (centres fixed), spread ``scale``, without the ``drop`` classes."""
    centres = np.random.default_rng(99).normal(0.0, 6.0, (CLASSES, DIM))
    keep = [c for c in range(CLASSES) if c not in drop]
    labels = np.repeat(keep, PER_CLASS * CLASSES // len(keep))
    return centres[labels] + scale * rng.normal(size=(labels.size, DIM)), labels


@pytest.fixture(scope="module")
def samplers() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    real = _clusters(rng)
    noise = rng.uniform(-25.0, 25.0, (CLASSES * PER_CLASS, DIM))
    return {"real": real, "faithful": _clusters(rng), "shrunk": _clusters(rng, scale=0.3),
            "dropped": _clusters(rng, drop=(0, 1, 2)), "noise": (noise, rng.integers(0, CLASSES, noise.shape[0]))}


def _measures(samplers: dict, name: str) -> dict[str, float]:
    real, _ = samplers["real"]
    features, classes = samplers[name]
    precision, recall = image.precision_recall(real, features)
    return {"variance_ratio": image.variance_ratio(features, real), "precision": precision, "recall": recall,
            "fd": image.frechet_distance(features, real), "mode_coverage": image.mode_coverage(classes),
            "class_entropy": image.class_entropy(classes)}


def test_image_measures_of_a_faithful_sampler_are_those_of_real_data(samplers) -> None:
    m = _measures(samplers, "faithful")
    assert m["variance_ratio"] == pytest.approx(1.0, abs=0.1)
    assert m["precision"] > 0.75 and m["recall"] > 0.75 and m["mode_coverage"] == pytest.approx(1.0)


def test_image_measures_move_the_collapse_way_under_shrunk_variance(samplers) -> None:
    faithful, shrunk = _measures(samplers, "faithful"), _measures(samplers, "shrunk")
    assert shrunk["variance_ratio"] < faithful["variance_ratio"]
    assert shrunk["recall"] < faithful["recall"] - 0.2  # the samples no longer reach the real spread
    assert shrunk["precision"] >= faithful["precision"] - 0.02  # ... but stay inside it
    assert shrunk["fd"] > faithful["fd"]


def test_image_measures_move_the_collapse_way_when_classes_vanish(samplers) -> None:
    faithful, dropped = _measures(samplers, "faithful"), _measures(samplers, "dropped")
    assert dropped["mode_coverage"] == pytest.approx(0.7)
    assert dropped["class_entropy"] < faithful["class_entropy"]
    assert dropped["recall"] < faithful["recall"] - 0.2
    assert dropped["fd"] > faithful["fd"]


def test_image_measures_move_the_collapse_way_under_noise(samplers) -> None:
    faithful, noise = _measures(samplers, "faithful"), _measures(samplers, "noise")
    assert 1.0 - noise["precision"] > 0.8 > 1.0 - faithful["precision"]  # hallucination = 1 - precision
    assert noise["fd"] > faithful["fd"]


def test_unplaceable_share_counts_mixtures_of_digits() -> None:
    clear = np.eye(CLASSES)[np.arange(20) % CLASSES] * 0.9 + 0.01
    mixed = np.tile(np.r_[[1 / 3] * 3, [0.0] * (CLASSES - 3)], (10, 1))
    assert image.unplaceable_share(clear) == 0.0
    assert image.unplaceable_share(np.vstack([clear, mixed])) == pytest.approx(1 / 3)


def test_tail_classes_and_stratum_losses() -> None:
    labels = np.repeat(np.arange(CLASSES), [9, 9, 9, 9, 4, 9, 3, 9, 9, 4])
    assert list(image.tail_classes(labels)) == [4, 6]  # 3 and 4 counts; 4 before 9 on the tie
    losses = np.where(np.isin(labels, [4, 6]), 5.0, 1.0)
    assert stratum_losses(losses, labels, np.array([4, 6])) == {"tail_loss": 5.0, "common_loss": 1.0}
    with pytest.raises(ValueError, match="both strata"):
        stratum_losses(losses, labels, np.arange(CLASSES))


# ------------------------------------------------------------------------ text
REAL = (b"The quick brown fox jumps over the lazy dog while the farmer sells bread at the market "
        b"and the children read books about ships that sail across the cold northern sea. ")


def _chunks(data: bytes, width: int = 64) -> np.ndarray:
    usable = len(data) // width * width
    return np.frombuffer(data[:usable], dtype=np.uint8).reshape(-1, width)


@pytest.fixture(scope="module")
def texts() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    words = REAL.split()
    shuffled = b" ".join(words[i] for i in rng.permutation(len(words) * 4) % len(words))
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    salad = b" ".join(bytes(rng.choice(letters, rng.integers(2, 9))) for _ in range(200))
    return {"real": _chunks(REAL * 6), "faithful": _chunks(REAL * 4 + shuffled), "salad": _chunks(salad),
            "repetitive": _chunks(b"the dog the dog " * 40)}


def _text(texts: dict, name: str) -> dict[str, float]:
    found = text.text_metrics(texts[name], texts["real"])
    known = text.vocabulary(REAL)
    found["hallucination"] = 1.0 - text.valid_word_rate([row.tobytes() for row in texts[name]], known)
    return found


def test_text_metrics_record_no_distinct_n_which_read_word_salad_as_diversity(texts) -> None:
    assert not any(key.startswith("distinct") for key in _text(texts, "salad"))


@pytest.mark.parametrize("bad", ["salad", "repetitive"])
def test_text_measures_move_the_collapse_way(texts, bad: str) -> None:
    faithful, worse = _text(texts, "faithful"), _text(texts, bad)
    assert worse["mode_coverage"] < 0.5 * faithful["mode_coverage"]
    assert worse["unigram_kl"] > faithful["unigram_kl"]
    if bad == "repetitive":
        assert worse["variance_ratio"] < 0.7 * faithful["variance_ratio"]
        assert worse["repetition"] > faithful["repetition"]
    else:
        assert worse["hallucination"] > 0.9 > 0.1 > faithful["hallucination"]


def test_surprising_chunks_are_those_unlike_the_training_text() -> None:
    train = _chunks(REAL * 8)
    odd = _chunks(b"zqxj vkwq jjzx qqvk " * 4)
    chunks = np.vstack([_chunks(REAL * 3), odd])
    picked = text.surprising_chunks(train, chunks, share=len(odd) / len(chunks))
    assert list(picked) == list(range(len(chunks) - len(odd), len(chunks)))
