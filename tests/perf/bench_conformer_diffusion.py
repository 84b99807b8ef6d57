"""Speed of the conformer diffusion task at a preset, each against a straightforward reference
measured in the same run:

* reference conformers: seconds per molecule (ETKDGv3 + MMFF94 + pruning), parallel vs one process;
* symmetric heavy-atom RMSD: the vectorised Kabsch form vs RDKit's ``GetBestRMS`` pair by pair;
* training: molecules/s of ``Task.fit`` (Lightning) vs a plain PyTorch loop on the same model and
  data (both after a warm-up fit, best of ``--repeats``);
* sampling: conformers/s with the preset's batch vs batches of 16;
* seconds per generation (fit, sample, evaluate, artifacts) and the projected 10-generation
  totals of replace and accumulate.

    flock /tmp/collapselab-cpu.lock python tests/perf/bench_conformer_diffusion.py [--preset cpu]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # NumPy's BLAS threads fight torch's for the cores

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate
from timing import timed  # tests/perf/timing.py, beside this script


def plain_fit(task, pool, rng: np.random.Generator) -> object:
    """The reference: the same model, loader, optimiser, schedule and epochs as ``task.fit``, without Lightning."""
    import torch

    from collapselab.toolkit.seeds import torch_seed
    from collapselab.toolkit.training import make_loader

    tensors = [torch.tensor(pool["mol"]), torch.tensor(pool["pos"]), torch.ones(len(pool))]
    loader = make_loader(tensors, task.config["batch_size"], rng)
    epochs = task.fit_options["epochs"]
    with torch_seed(rng):
        model = task._build(epochs * len(loader))
        configured = model.configure_optimizers()
        optimiser, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
        for _ in range(epochs):
            for batch_idx, batch in enumerate(loader):
                loss = model.training_step(batch, batch_idx)
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimiser.step()
                scheduler.step()
    return model


def bench_reference(smiles: list[str], embed: int) -> list[list[object]]:
    from collapselab.tasks.conformer_diffusion import reference

    settings = reference.EmbedSettings(seed=11, mmff=True, prune_rms=0.25)
    counts = [embed] * len(smiles)
    serial, one = timed(lambda: reference.build_ensembles(smiles, counts, settings, workers=1))
    parallel, many = timed(lambda: reference.build_ensembles(smiles, counts, settings))
    assert one.sha256() == many.sha256(), "parallel reference differs from serial"
    per = lambda s: f"{s / len(smiles):.4f}"
    return [
        ["reference conformers", f"s/molecule, {os.cpu_count()} processes", per(parallel), "1 process", per(serial),
         f"{serial / parallel:.2f}x"],
    ]


def _rdkit_mol(heavy, conformers: np.ndarray):
    """``heavy`` with one conformer per row of ``conformers``."""
    from rdkit import Chem

    mol = Chem.Mol(heavy)
    for xyz in conformers.astype(float):
        conf = Chem.Conformer(heavy.GetNumAtoms())
        for i, p in enumerate(xyz):
            conf.SetAtomPosition(i, p.tolist())
        mol.AddConformer(conf, assignId=True)
    return mol


def bench_rmsd(task) -> list[list[object]]:
    """The COV/MAT workload of one evaluation: 2k probe x k reference conformers per test molecule."""
    from rdkit import Chem
    from rdkit.Chem import rdMolAlign

    from collapselab.tasks.conformer_diffusion import rmsd

    data, rng = task._data, np.random.default_rng(0)
    pairs, ours_s, rdkit_s, worst = 0, 0.0, 0.0, 0.0
    for m in data.split.test:
        h = data.heavy_atoms(int(m))
        ref = data.conformers(int(m))[:, :h]
        probe = np.concatenate([ref, ref]) + rng.normal(0.0, 0.3, (2 * len(ref), h, 3))
        heavy = Chem.MolFromSmiles(data.table.smiles[int(m)])
        seconds, ours = timed(lambda: rmsd.pairwise_rmsd(probe, ref, rmsd.automorphisms(heavy)))
        ours_s += seconds
        probes = [Chem.Mol(_rdkit_mol(heavy, probe), confId=k) for k in range(len(probe))]
        refs = [Chem.Mol(_rdkit_mol(heavy, ref), confId=k) for k in range(len(ref))]
        start = time.perf_counter()
        theirs = np.array([[rdMolAlign.GetBestRMS(Chem.Mol(a), b) for b in refs] for a in probes])
        rdkit_s += time.perf_counter() - start
        worst = max(worst, float(np.abs(ours - theirs).max()))
        pairs += ours.size
    return [["symmetric RMSD (COV/MAT)", f"pairs/s (max |diff| {worst:.1e} A)", f"{pairs / ours_s:.0f}",
             "RDKit GetBestRMS per pair", f"{pairs / rdkit_s:.0f}", f"{rdkit_s / ours_s:.1f}x"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--reference-molecules", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("COLLAPSELAB_CACHE", tempfile.mkdtemp(prefix="bench-conformer-diffusion-"))

    import torch

    from collapselab.engine import seeding
    from collapselab.tasks.conformer_diffusion import ConformerDiffusionTask, molecules
    from collapselab.tasks.conformer_diffusion.evaluation import sample_positions

    task = ConformerDiffusionTask(args.preset)
    c = task.config
    print(f"conformer_diffusion, preset {args.preset}: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cache {os.environ['COLLAPSELAB_CACHE']}")
    smiles = molecules.nci_smiles(c["min_heavy"], c["max_heavy"])[: args.reference_molecules]
    rows = bench_reference(smiles, c["ref_embed"])
    setup, real = timed(task.real_pool)
    print(f"data set-up (reference for {len(task._data.table)} molecules, cold cache): {setup:.1f} s; "
          f"real pool {len(real)} conformers of {len(task._data.split.train)} molecules")
    rows += bench_rmsd(task)

    fit = lambda: task.fit(real, task.fit_options, seeding.stream(0, 0, "fit"))
    cold_s, fitted = timed(fit)  # includes one-time costs (imports, first optimiser)
    fit_s = min(timed(fit)[0] for _ in range(args.repeats))
    plain_s = min(timed(lambda: plain_fit(task, real, seeding.stream(0, 0, "fit")))[0] for _ in range(args.repeats))
    examples = fitted.compute.examples
    rows.append(["training", f"molecules/s, Lightning (best of {args.repeats})", f"{examples / fit_s:.0f}",
                 "plain PyTorch loop", f"{examples / plain_s:.0f}", f"{plain_s / fit_s:.2f}x"])

    model = fitted.model
    mols = np.asarray(real["mol"])[: min(len(real), 1024)]
    batch_s, _ = timed(lambda: sample_positions(model, mols, c["sample_steps"], 0, c["eval_batch"], "cpu"))
    small = mols[:256]
    small_s, _ = timed(lambda: sample_positions(model, small, c["sample_steps"], 0, 16, "cpu"))
    rows.append(["sampling", f"conformers/s, batch {c['eval_batch']}, {c['sample_steps']} steps",
                 f"{len(mols) / batch_s:.0f}", "batch 16", f"{len(small) / small_s:.0f}",
                 f"{(small_s / len(small)) / (batch_s / len(mols)):.2f}x"])
    print()
    print(tabulate(rows, headers=["what", "unit", "value", "reference", "reference value", "speed-up"],
                   tablefmt="simple", disable_numparse=True))

    sample_s, _ = timed(lambda: task.sample(model, len(real), seeding.stream(0, 1, "sample")))
    eval_s, metrics = timed(lambda: task.evaluate(model))
    with tempfile.TemporaryDirectory() as tmp:
        first_art_s, _ = timed(lambda: task.write_artifacts(model, 0, Path(tmp), seeding.stream(0, 0, "artifacts")))
        art_s, _ = timed(lambda: task.write_artifacts(model, 1, Path(tmp), seeding.stream(0, 1, "artifacts")))
    per_example = fit_s / examples
    gens = 10
    fixed = (gens + 1) * (eval_s + art_s) + gens * sample_s + first_art_s + cold_s - fit_s
    replace = fixed + (gens + 1) * fit_s
    accumulate = fixed + sum(per_example * examples * (g + 1) for g in range(gens + 1))
    print()
    print(tabulate(
        [["fit on the real pool (first fit of a process)", f"{fit_s:.2f} ({cold_s:.2f})"],
         [f"sample {len(real)} conformers", f"{sample_s:.2f}"],
         ["evaluate", f"{eval_s:.2f}"], ["artifacts (first call, with the ETKDG rows)", f"{art_s:.2f} ({first_art_s:.2f})"],
         ["one replace generation", f"{fit_s + sample_s + eval_s + art_s:.2f}"],
         [f"projected replace, {gens} generations", f"{replace:.0f}"],
         [f"projected accumulate, {gens} generations (fit grows with the pool)", f"{accumulate:.0f}"]],
        headers=["seconds per phase", "s"], tablefmt="simple", disable_numparse=True))
    print("\ngeneration-0 metrics:", ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
