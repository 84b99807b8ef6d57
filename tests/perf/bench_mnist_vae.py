"""Speed of the MNIST VAE task at a preset: seconds per phase and per generation, and the
overhead of the shared Lightning training loop against a plain PyTorch loop on the same model,
data and settings. Also prints the task's reference points (classifier accuracy, the
real-data floors of the sample metrics, the fully collapsed model's loss).

    flock /tmp/collapselab-cpu.lock python tests/perf/bench_mnist_vae.py [--preset cpu] [--repeats 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # NumPy's BLAS threads fight torch's for the cores

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate
from timing import timed  # tests/perf/timing.py, beside this script


def plain_fit(task, pool, rng: np.random.Generator) -> object:
    """The reference: the same VAE, loader, optimiser, loss and epochs as ``task.fit``, without Lightning."""
    import torch

    from collapselab.toolkit.seeds import torch_seed
    from collapselab.toolkit.training import make_loader

    x = torch.from_numpy(np.asarray(pool["image"], dtype=np.float32).reshape(len(pool), -1))
    loader = make_loader([x, torch.ones(len(pool))], task.config["batch_size"], rng)
    with torch_seed(rng):
        model = task._build()
        optimiser = model.configure_optimizers()
        for _ in range(task.config["epochs"]):
            for batch_idx, batch in enumerate(loader):
                loss = model.training_step(batch, batch_idx)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--generations", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("COLLAPSELAB_CACHE", tempfile.mkdtemp(prefix="bench-mnist-vae-"))

    import torch

    from collapselab.tasks.mnist_vae import MnistVaeTask, classifier, metrics

    start = time.perf_counter()
    task = MnistVaeTask(args.preset)
    real = task.real_pool()
    t_data = time.perf_counter() - start
    t_classifier, _ = timed(lambda: task._test_features)
    n, c = len(real), task.config
    print(f"mnist_vae preset {args.preset}: real pool {n}, epochs {c['epochs']}, batch {c['batch_size']}, "
          f"VAE 784-{c['hidden']}x{c['layers']}-{c['latent']}, torch threads {torch.get_num_threads()}, "
          f"device {task.device()}")
    print(f"data load {t_data:.2f} s; classifier (train or cache) + test features {t_classifier:.2f} s\n")

    # ---------------------------------------------------------- phases of one generation
    rng = np.random.default_rng(0)
    fits = [timed(lambda: task.fit(real, {}, rng)) for _ in range(args.repeats)]
    t_fit = min(t for t, _ in fits)
    model = fits[0][1].model
    t_sample, samples = timed(lambda: task.sample(model, n, rng))
    t_eval, _ = timed(lambda: task.evaluate(model))
    t_score, _ = timed(lambda: task.score(model, samples))
    with tempfile.TemporaryDirectory() as folder:
        t_art, _ = timed(lambda: task.write_artifacts(model, 0, Path(folder), rng))
    per_gen_other = t_sample + t_eval + t_art
    rows = [["fit (pool N), min of repeats", t_fit], ["sample N", t_sample], ["evaluate", t_eval],
            ["score N (verifier-filter)", t_score], ["write_artifacts", t_art]]
    print(tabulate(rows, headers=["phase", "seconds"], floatfmt=".3f"), "\n")

    # --------------------------------------------------------- fit cost against pool size
    synthetic = task.sample(model, 3 * n, rng).with_origin(1)
    scaling = []
    for k in (1, 2, 4):
        pool = real if k == 1 else real + synthetic.subset(np.arange((k - 1) * n))
        seconds, fitted = timed(lambda: task.fit(pool, {}, rng))
        scaling.append([f"{k}N = {len(pool)}", seconds, fitted.compute.examples / seconds])
    print(tabulate(scaling, headers=["pool", "fit s", "examples/s"], floatfmt=(".0f", ".2f", ".0f")), "\n")
    slope, intercept = np.polyfit([1, 2, 4], [row[1] for row in scaling], 1)
    G = args.generations
    replace = (G + 1) * t_fit + G * per_gen_other + t_eval + t_art
    accumulate = sum(intercept + slope * (g + 1) for g in range(G + 1)) + G * per_gen_other + t_eval + t_art
    print(f"projected {G}-generation run (fit from the linear fit above, plus sample/evaluate/artifacts):")
    print(tabulate([["replace", replace, replace / (G + 1)], ["accumulate", accumulate, accumulate / (G + 1)]],
                   headers=["strategy", "total s", "s / generation"], floatfmt=".1f"), "\n")

    # ------------------------------------------------------- Lightning against a plain loop
    lightning, plain = [], []
    for i in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        lightning.append(timed(lambda: task.fit(real, {}, np.random.default_rng(i)))[0])
        plain.append(timed(lambda: plain_fit(task, real, np.random.default_rng(i)))[0])
    rows = [["collapselab.toolkit.training.train (Lightning)", min(lightning), statistics.median(lightning)],
            ["plain PyTorch loop", min(plain), statistics.median(plain)]]
    print(tabulate(rows, headers=[f"fit of pool N, {args.repeats} repeats", "min s", "median s"], floatfmt=".3f"))
    print(f"Lightning / plain: {min(lightning) / min(plain):.3f} (min), "
          f"{statistics.median(lightning) / statistics.median(plain):.3f} (median)\n")

    # --------------------------------------------------------------- reference points
    splits = task._splits
    test_features, test_classes = classifier.embed(task._classifier, splits.test.images, task._device)
    accuracy = float(np.mean(test_classes == splits.test.labels))
    k = min(c["eval_samples"], len(splits.reserve))
    reserve_features, reserve_classes = classifier.embed(task._classifier, splits.reserve.images[:k], task._device)
    p = np.clip(splits.train.images.reshape(n, -1).mean(0), 1e-3, 1 - 1e-3)
    x = splits.test.images.reshape(len(splits.test), -1)
    independent = float(-(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1).mean())
    rows = [
        ["classifier accuracy on the test digits", accuracy],
        [f"fd: {k} real reserve digits vs test (the floor)", metrics.frechet_distance(reserve_features, test_features)],
        ["class_entropy of real test digits", metrics.class_entropy(test_classes)],
        ["loss of the independent-pixel model fit to the real pool", independent],
    ]
    print(tabulate(rows, headers=["reference point", "value"], floatfmt=".4g"))


if __name__ == "__main__":
    main()
