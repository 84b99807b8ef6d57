"""Tests of the language-model task (byte-level BPE tokens) on its smoke preset."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from collapselab.contracts.registry import make_strategy, make_task
from collapselab.engine.loop import RunSpec, execute
from collapselab.errors import ConfigError, TaskError
from collapselab.tasks.text_lm import TextLMTask, corpus, metrics, tokenizer

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def task() -> TextLMTask:
    return make_task("text_lm", "smoke")


@pytest.fixture(scope="module")
def model(task: TextLMTask):
    return task.fit(task.real_pool(), task.fit_options, np.random.default_rng(0)).model


def _run(root: Path, strategy: str = "replace", generations: int = 2, seed: int = 0):
    spec = RunSpec(make_task("text_lm", "smoke"), make_strategy(strategy), seed, generations, root)
    return execute(spec, progress=False)


def _losses(run) -> list[float]:
    return [r.metrics["loss"] for r in run.records]


# ----------------------------------------------------------------------- data
def test_split_is_disjoint_and_deterministic(task: TextLMTask) -> None:
    split = task._split
    c = task.config
    assert split.train.shape == (c["train_chunks"], c["context"]) and split.train.dtype == np.uint16
    again = make_task("text_lm", "smoke")._split
    assert np.array_equal(split.train, again.train) and np.array_equal(split.test, again.test)
    other = make_task("text_lm", "smoke", {"data_seed": 1})
    assert other.data_fingerprint()["split_sha256"] != task.data_fingerprint()["split_sha256"]
    side, validation, test = (task.codec.byte_lengths(part).sum()
                              for part in (np.concatenate([split.train, split.reserve]), split.validation, split.test))
    total = side + validation + test
    assert total > 0.99 * sum(len(d) for d in corpus.pydoc_documents())
    assert 0.03 < test / total <= c["test_fraction"] + 0.01
    assert 0.01 < validation / total <= c["validation_fraction"] + 0.01
    wider = make_task("text_lm", "smoke", {"validation_fraction": 0.1})
    # validation never takes test documents (the tokens differ: the BPE is trained on the changed training side)
    assert np.array_equal(wider._split.documents["test"], split.documents["test"])
    assert wider.data_fingerprint()["split_sha256"] != task.data_fingerprint()["split_sha256"]


def test_held_out_document_groups_never_straddle_the_split() -> None:
    """Documents sharing a paragraph land in one part: a corpus of pairs of twin documents puts both
    twins of every pair in the same one of test, validation and training side."""
    rng = np.random.default_rng(0)
    words = [bytes(w, "ascii") for w in ("alpha", "beta", "gamma", "delta", "omega", "sigma")]
    shared = [b" ".join(rng.choice(words, size=20)) for _ in range(30)]
    documents = [shared[i // 2] + corpus.SEPARATOR + b"own %d " % i + b"x" * 40 for i in range(60)]
    split = corpus.split_corpus(documents, 16, 10, 0.2, 0.2, data_seed=1)
    part_of = {int(i): part for part, docs in split.documents.parts.items() for i in docs}
    assert all(part_of[2 * pair] == part_of[2 * pair + 1] for pair in range(30))
    assert set(part_of.values()) == {"test", "validation", "train"}
    with pytest.raises(TaskError, match="validation_fraction"):
        corpus.split_corpus(documents, 16, 10, 0.2, 0.001, data_seed=1)


def test_no_training_text_in_the_test_or_validation_set() -> None:
    """Held out by groups of documents that share paragraphs: no training-side chunk of the cpu
    preset (as text) occurs anywhere in its test or validation text (without grouping, 24 of 128
    bytes did), and no validation chunk in the test text."""
    cpu = make_task("text_lm", "cpu")
    test_text, validation_text = (b"".join(cpu.decode(part)) for part in (cpu._split.test, cpu._split.validation))
    for text in cpu.decode(np.concatenate([cpu._split.train, cpu._split.reserve])):
        assert text not in test_text and text not in validation_text
    assert not any(text in test_text for text in cpu.decode(cpu._split.validation))


def test_the_tokenizer_is_trained_on_the_training_side_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The BPE sees the training side's text and no held-out document."""
    seen: list[bytes] = []
    train = tokenizer.bpe_codec

    def spy(text: bytes, vocab_size: int) -> tokenizer.Codec:
        seen.append(text)
        return train(text, vocab_size)

    monkeypatch.setattr(tokenizer, "bpe_codec", spy)
    fresh = make_task("text_lm", "smoke")
    split = fresh._split
    (text,) = seen
    assert all(chunk in text for chunk in fresh.decode(split.train[:50]))
    held_out = [t for t in fresh.decode(split.test) if len(t) > 60]
    assert held_out and not any(t in text for t in held_out)


def test_bpe_codec_round_trips_and_trains_deterministically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = corpus.SEPARATOR.join(corpus.pydoc_documents()[:20]) + "\n\u00e9t\u00e9 \u2014 \U0001F600".encode()
    monkeypatch.setenv("COLLAPSELAB_CACHE", str(tmp_path / "one"))
    codec = tokenizer.bpe_codec(text, 400)
    assert codec.vocab == 400 and codec.dtype == np.uint16
    ids = codec.encode(text)
    assert codec.decode(ids) == text and len(ids) < 0.6 * len(text)
    assert codec.byte_lengths(ids[None, :50])[0] == len(codec.decode(ids[:50]))
    assert sorted(codec.token_bytes[:256]) == [bytes([b]) for b in range(256)]  # any byte string can be encoded
    monkeypatch.setenv("COLLAPSELAB_CACHE", str(tmp_path / "two"))  # trained again from scratch
    assert tokenizer.bpe_codec(text, 400).sha256 == codec.sha256
    assert len(list((tmp_path / "one" / "text_lm" / "tokenizer").glob("*.json"))) == 2  # the entry and its key
    tokenizer.bpe_codec(text + b" more", 400)  # other text: another entry (here with the same merges)
    assert len(list((tmp_path / "two" / "text_lm" / "tokenizer").glob("*.json"))) == 4
    assert tokenizer.bpe_codec(b"zzzz qqqq " * 200, 300).sha256 != codec.sha256
    with pytest.raises(ConfigError, match="more than 256"):
        tokenizer.bpe_codec(text, 256)


def test_fresh_real_pool_comes_from_the_reserve(task: TextLMTask) -> None:
    pool = task.fresh_real_pool(20, np.random.default_rng(3))
    assert len(pool) == 20 and set(pool.origin_counts()) == {-1}
    train_rows = {row.tobytes() for row in task.real_pool()["tokens"]}
    reserve_rows = {row.tobytes() for row in task._split.reserve}
    assert all(row.tobytes() in reserve_rows and row.tobytes() not in train_rows for row in pool["tokens"])
    with pytest.raises(TaskError, match="reserve"):
        task.fresh_real_pool(len(task._split.reserve) + 1, np.random.default_rng(0))


def test_local_text_file_corpus(tmp_path: Path) -> None:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    rng = np.random.default_rng(0)
    paragraphs = [" ".join(rng.choice(words, size=40)) for _ in range(60)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    documents = corpus.load_documents(str(path), 0)
    assert len(documents) == 60
    text_task = make_task("text_lm", "smoke", {"corpus": str(path), "train_chunks": 40})
    assert len(text_task.real_pool()) == 40
    assert text_task.data_fingerprint()["documents"] == 60
    with pytest.raises(TaskError, match="train_chunks"):
        make_task("text_lm", "smoke", {"corpus": str(path), "train_chunks": 10_000}).real_pool()
    with pytest.raises(TaskError, match="corpus must be"):
        make_task("text_lm", "smoke", {"corpus": str(tmp_path / "missing.txt")}).real_pool()


def test_tinystories_reads_the_local_cache_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The TinyStories path asks ``datasets`` for the train split, offline, and reports a missing cache."""
    import sys
    import types

    calls = []

    def load_dataset(name: str, split: str):
        calls.append((name, split, os.environ.get("HF_HUB_OFFLINE")))
        return {"text": [f"Once upon a time {i}. " * 20 for i in range(40)] + ["  "]}

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    stories = make_task("text_lm", "smoke", {"corpus": "tinystories", "max_documents": 41, "train_chunks": 20})
    assert len(stories.real_pool()) == 20 and stories.data_fingerprint()["documents"] == 40
    assert calls == [(corpus.TINYSTORIES, "train[:41]", "1")]

    def missing(name: str, split: str):
        raise ConnectionError("offline and not cached")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=missing))
    with pytest.raises(TaskError, match="not in the local Hugging Face cache"):
        make_task("text_lm", "smoke", {"corpus": "tinystories"}).real_pool()


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        make_task("text_lm", "smoke", {"d_model": 30, "n_head": 4})
    with pytest.raises(ConfigError, match="temperature"):
        make_task("text_lm", "smoke", {"temperature": 0.0})
    with pytest.raises(ConfigError, match="vocab_size"):
        make_task("text_lm", "smoke", {"vocab_size": 200})
    with pytest.raises(ConfigError, match="no config key"):
        make_task("text_lm", "smoke", {"layers": 3})
    paper = make_task("text_lm", "paper")
    assert paper.config["accelerator"] == "auto" and paper.config["corpus"] == "tinystories"
    assert paper.config["vocab_size"] == 0  # the paper preset stays byte-level


# -------------------------------------------------------------------- metrics
def test_valid_word_rate_on_known_inputs() -> None:
    known = metrics.vocabulary(b"The cat sat; the DOG ran.\n")
    assert known == {b"the", b"cat", b"sat", b"dog", b"ran"}
    # 'Cat' and 'dog' match in lower case, 'zexagtif' and 'rint' are invented: 3 of 5 words.
    assert metrics.valid_word_rate([b"Cat zexagtif, dog", b"rint the"], known) == pytest.approx(3 / 5)
    assert metrics.valid_word_rate([b"12 ;; --"], known) == 1.0
    assert metrics.valid_word_rate([b"catdog"], known) == 0.0


def test_text_metrics_on_known_inputs() -> None:
    # real bigrams (the cat) (cat sat) (the dog): the sample holds (the cat) only; "Cat" matches in lower case.
    assert metrics.ngram_coverage([b"The Cat, the"], [b"the cat sat", b"the dog"]) == pytest.approx(1 / 3)
    assert metrics.ngram_coverage([b"anything"], [b"one"]) == 0.0
    uniform = np.arange(256, dtype=np.uint8)[None, :]
    assert metrics.unigram_entropy(uniform) == pytest.approx(8.0)
    assert metrics.unigram_entropy(np.zeros((3, 5), dtype=np.uint8)) == 0.0
    text = np.frombuffer(b"the cat sat on the mat " * 20, dtype=np.uint8)
    assert metrics.unigram_kl(text, text) == pytest.approx(0.0, abs=1e-12)
    assert metrics.unigram_kl(text, np.full(400, ord("x"), dtype=np.uint8)) > 5.0
    loop = np.frombuffer(b"abcd" * 8, dtype=np.uint8)[None, :]
    assert metrics.repetition(loop, 4) == pytest.approx(1 - 4 / 29)
    assert metrics.repetition(uniform, 8) == 0.0
    assert metrics.printable(b"ok\x00\xff\n") == "ok\\x00\ufffd\n"
    assert metrics.printable("a\u2000b".encode()) == "a\\u2000b"


def test_text_metrics_of_samples_of_different_lengths() -> None:
    """Decoded samples differ in length: histograms pool all their bytes, seq-rep-8 is per sample."""
    samples = [b"abcdabcdabcdabcd", b"the cat"]
    real = np.frombuffer(b"the cat sat on the mat", dtype=np.uint8)
    values = metrics.text_metrics(samples, real)
    pooled = np.frombuffer(b"".join(samples), dtype=np.uint8)
    assert values["unigram_entropy"] == pytest.approx(metrics.unigram_entropy(pooled))
    assert values["unigram_kl"] == pytest.approx(metrics.unigram_kl(real, pooled))
    assert values["repetition"] == pytest.approx((1 - 4 / 9 + 0.0) / 2)
    # word bigrams of the real text: the cat, cat sat, sat on, on the, the mat; the samples hold one
    assert values["mode_coverage"] == pytest.approx(1 / 5)
    assert values["variance_ratio"] == pytest.approx(metrics.unigram_entropy(pooled) / metrics.unigram_entropy(real))


# ---------------------------------------------------------------------- model
def test_weighted_loss_weights_each_item(task: TextLMTask, model) -> None:
    items = torch.tensor(task.real_pool()["tokens"][:4].astype(np.int64))
    weights = torch.tensor([4.0, 0.0, 0.0, 0.0])
    with torch.no_grad():
        per_item = model.token_nll(items).mean(dim=1)
        loss = model.training_step((items, weights), 0)
    assert float(loss) == pytest.approx(float((per_item * weights).mean()), rel=1e-6)
    assert float(loss) != pytest.approx(float(per_item.mean()), rel=1e-3)


def test_weighted_pool_fits_and_all_zero_weights_fail(task: TextLMTask) -> None:
    pool = task.real_pool()
    weighted = pool.with_weight(np.linspace(0.5, 1.5, len(pool)))
    result = task.fit(weighted, task.fit_options, np.random.default_rng(0))
    assert result.compute.steps == task.config["steps"]
    with pytest.raises(TaskError, match="weight 0"):
        task.fit(pool.with_weight(np.zeros(len(pool))), task.fit_options, np.random.default_rng(0))


def test_cached_sampler_gives_the_same_tokens_as_recomputing(task: TextLMTask, model) -> None:
    from collapselab.tasks.text_lm.sampling import sample_tokens

    device = torch.device("cpu")
    length = task.config["context"]
    cached = sample_tokens(model, 12, length, np.random.default_rng(5), 1.0, device, 5, cached=True)
    plain = sample_tokens(model, 12, length, np.random.default_rng(5), 1.0, device, 5, cached=False)
    assert cached.shape == (12, length) and cached.min() >= 0 and cached.max() < task.codec.vocab
    assert np.array_equal(cached, plain)
    other = sample_tokens(model, 12, length, np.random.default_rng(6), 1.0, device, 5)
    assert not np.array_equal(cached, other)
    cold = sample_tokens(model, 12, length, np.random.default_rng(5), 0.05, device, 5)
    assert len(np.unique(cold)) < len(np.unique(cached))


def test_sample_and_evaluate(task: TextLMTask, model) -> None:
    pool = task.sample(model, 10, np.random.default_rng(1), task.sampling_options)
    assert pool["tokens"].shape == (10, task.config["context"])
    assert pool.equals(task.sample(model, 10, np.random.default_rng(1), task.sampling_options))
    first, second = task.evaluate(model), task.evaluate(model)
    assert first == second
    assert all(math.isfinite(v) for v in first.values())
    assert set(first) == {"loss"} | set(task.metadata.secondary_metrics)
    assert 0 < first["loss"] < 8.0  # better than uniform bytes after training


def test_loss_is_bits_per_byte_of_the_held_out_text(task: TextLMTask, model) -> None:
    """The tokens' negative log-likelihoods, summed and converted to bits, over the bytes they decode to."""
    test = task._split.test
    with torch.no_grad():
        nats = model.token_nll(torch.tensor(test.astype(np.int64))).double().sum().item()
    text_bytes = sum(len(t) for t in task.decode(test))
    assert text_bytes > 1.5 * test.size  # BPE tokens stand for more than one byte each
    assert task.evaluate(model)["loss"] == pytest.approx(nats / math.log(2) / text_bytes, rel=1e-6)
    byte_level = make_task("text_lm", "smoke", {"vocab_size": 0})
    assert byte_level.codec.vocab == 256 and byte_level._split.test.dtype == np.uint8


# ----------------------------------------------------------------------- loop
def test_smoke_run_completes_with_artifacts(tmp_path: Path) -> None:
    run = _run(tmp_path, "replace")
    assert run.complete and len(run.records) == 3
    for record in run.records:
        assert all(math.isfinite(v) for v in record.metrics.values())
        (artifact,) = record.artifacts
        text = (run.path / artifact).read_text(encoding="utf-8")
        assert text.count("--- sample") == 16
    data = run.manifest.task.data
    assert data["train_tokens"] == 64 * 32 and data["train_bytes"] > 64 * 32 and data["vocab"] == 512
    assert len(data["tokenizer_sha256"]) == 64


@pytest.mark.slow
def test_paper_architecture_runs_on_the_embedded_corpus(tmp_path: Path) -> None:
    """The paper preset's model (6 layers, d=384, context 256) through one generation, on CPU."""
    overrides = {"corpus": "pydoc", "train_chunks": 64, "accelerator": "cpu", "eval_samples": 4, "sample_batch": 64}
    task = make_task("text_lm", "paper", overrides)
    run = execute(RunSpec(task, make_strategy("replace"), 0, 1, tmp_path), progress=False)
    assert run.complete and all(math.isfinite(v) for v in run.records[-1].metrics.values())


def test_the_temperature_study_samples_at_each_temperature_and_plots(tmp_path: Path) -> None:
    """The heat-death study (Marchi et al. 2024) at the smoke preset: each run samples every
    generation at its temperature (recorded), every run shares generation 0, and the figure is written."""
    from collapselab.tasks.text_lm import experiments

    assert experiments.main(["temperature", "--out", str(tmp_path), "--preset", "smoke", "--temperatures", "0.5,2.0",
                             "--real-fractions", "0,0.5", "--generations", "2"]) == 0
    assert (tmp_path / "temperature.png").stat().st_size > 10_000
    from collapselab.engine.rundir import find_runs

    runs = find_runs([tmp_path / "runs"])
    assert len(runs) == 4
    temperatures = sorted({r.records[1].sampling_options["temperature"] for r in runs})
    assert temperatures == [0.5, 2.0]
    assert all(r.records[g].sampling_options["temperature"] == r.records[1].sampling_options["temperature"]
               for r in runs for g in (1, 2))
    assert len({r.curve()[0] for r in runs}) == 1  # one generation 0 for the whole study
