"""Speed of the text_lm task at a preset (default ``cpu``): training, sampling, generations.

Prints, each against a straightforward reference measured in the same run:
- training tokens/s of ``Task.fit`` (Lightning, through ``collapselab.toolkit.training.train``) and of a
  plain PyTorch loop over the same model, data and number of steps;
- sampling tokens/s with the key/value cache and without it (recomputing the prefix), on the
  trained model, and checks that both give the same tokens;
- generation 0 of seed 0 as a reader sees it: the valid-word rate of its evaluation samples
  (share of their words that occur in the real pool's text) and a few sample lines;
- seconds per generation of a ``replace`` run (sample, fit, evaluate), and the projected
  time of ten ``accumulate`` generations from the measured costs (fit time grows with the pool).

Run it alone on the machine: ``flock /tmp/collapselab-cpu.lock python tests/perf/bench_text_lm.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from tabulate import tabulate


def plain_training_seconds(task, steps: int) -> float:
    """The same model, data and optimiser trained by a bare PyTorch loop for ``steps`` steps."""
    import torch

    from collapselab.tasks.text_lm.model import GPT

    torch.manual_seed(0)
    model = GPT(task._model_config(steps)).train()
    optimizer = model.configure_optimizers()["optimizer"]
    tokens = torch.tensor(task.real_pool()["tokens"].astype(np.int64))
    batch = task.config["batch_size"]
    order = torch.randperm(len(tokens))
    start = time.perf_counter()
    for step in range(steps):
        index = order[torch.arange(step * batch, (step + 1) * batch) % len(tokens)]
        loss = model.token_nll(tokens[index]).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--generations", type=int, default=2, help="replace generations to time (default 2)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import torch

    from collapselab.contracts.registry import make_strategy, make_task
    from collapselab.engine import seeding
    from collapselab.engine.loop import RunSpec, execute
    from collapselab.tasks.text_lm import metrics
    from collapselab.tasks.text_lm.sampling import sample_tokens
    from collapselab.tasks.text_lm.task import EVAL_SEED

    task = make_task("text_lm", args.preset)
    c = task.config
    pool = task.real_pool()
    print(f"text_lm preset {args.preset}: {len(pool)} chunks x {c['context']} tokens (vocabulary {task.codec.vocab}), "
          f"{c['n_layer']} layers d={c['d_model']}, batch {c['batch_size']}, torch threads {torch.get_num_threads()}")

    task.fit(pool.subset(np.arange(c["batch_size"])), {**task.fit_options, "epochs": 1}, np.random.default_rng(9))  # warm-up
    start = time.perf_counter()
    fitted = task.fit(pool, task.fit_options, seeding.stream(0, 0, "fit"))  # generation 0 of seed 0
    fit_seconds = time.perf_counter() - start
    samples = task.decode(task._sample(fitted.model, c["eval_samples"], np.random.default_rng(EVAL_SEED)))
    known = metrics.vocabulary(b"".join(task.decode(pool["tokens"])))
    print(f"generation 0: loss {task.evaluate(fitted.model)['loss']:.4f} bits/byte, "
          f"valid-word rate {metrics.valid_word_rate(samples, known):.3f} of its {len(samples)} evaluation samples")
    for text in samples[:4]:
        print("   |", metrics.printable(text).replace("\n", " / "))
    train_tokens = fitted.compute.examples * c["context"]
    plain_seconds = plain_training_seconds(task, fitted.compute.steps)
    plain_tokens = fitted.compute.steps * c["batch_size"] * c["context"]

    model, device = fitted.model, torch.device("cpu")
    n_cached = min(len(pool), c["sample_batch"])
    n_plain = min(64, n_cached)
    start = time.perf_counter()
    sample_tokens(model, n_cached, c["context"], np.random.default_rng(1), c["temperature"], device, c["sample_batch"])
    cached_seconds = time.perf_counter() - start
    start = time.perf_counter()
    plain = sample_tokens(model, n_plain, c["context"], np.random.default_rng(1), c["temperature"], device, n_plain, cached=False)
    plain_sample_seconds = time.perf_counter() - start
    same = np.array_equal(plain, sample_tokens(model, n_plain, c["context"], np.random.default_rng(1), c["temperature"], device, n_plain))

    cached_rate = n_cached * c["context"] / cached_seconds
    plain_rate = n_plain * c["context"] / plain_sample_seconds
    rows = [
        ["training (Task.fit, Lightning)", f"{train_tokens / fit_seconds:,.0f}", f"{fit_seconds:.2f}"],
        ["training (plain PyTorch loop, same steps)", f"{plain_tokens / plain_seconds:,.0f}", f"{plain_seconds:.2f}"],
        [f"sampling with KV cache ({n_cached} sequences)", f"{cached_rate:,.0f}", f"{cached_seconds:.2f}"],
        [f"sampling without cache ({n_plain} sequences)", f"{plain_rate:,.0f}", f"{plain_sample_seconds:.2f}"],
    ]
    print()
    print(tabulate(rows, headers=["what", "tokens/s", "seconds"], tablefmt="simple", disable_numparse=True))
    print(f"\nLightning / plain training speed: {plain_seconds / fit_seconds * train_tokens / plain_tokens:.2f}")
    print(f"cached / uncached sampling speed: {cached_rate / plain_rate:.1f}x  (same tokens: {same})")

    with tempfile.TemporaryDirectory() as tmp:
        spec = RunSpec(task, make_strategy("replace"), 0, args.generations, Path(tmp))
        start = time.perf_counter()
        run = execute(spec, progress=False)
        total = time.perf_counter() - start
    rows = [[r.generation, f"{r.seconds['sample']:.2f}", f"{r.seconds['fit']:.2f}",
             f"{r.seconds['evaluate']:.2f}", f"{r.seconds['artifacts']:.2f}", f"{r.metrics['loss']:.4f}"]
            for r in run.records]
    print()
    print(tabulate(rows, headers=["gen", "sample s", "fit s", "eval s", "artifacts s", "loss (bits/byte)"],
                   tablefmt="simple", disable_numparse=True))
    later = run.records[1:] or run.records
    fit0 = float(np.mean([r.seconds["fit"] for r in later]))
    other = float(np.mean([r.seconds["sample"] + r.seconds["evaluate"] + r.seconds["artifacts"] for r in later]))
    print(f"\nreplace: {total:.1f} s for {len(run.records)} generations ({total / len(run.records):.1f} s each)")
    generations = 10
    accumulate = sum(fit0 * (g + 1) + other for g in range(generations + 1))
    replace = (generations + 1) * (fit0 + other)
    print(f"projected {generations} generations: replace {replace:.0f} s, accumulate {accumulate:.0f} s "
          f"(fit time x pool size; plus process start-up)")


if __name__ == "__main__":
    main()
