"""Molecular conformer diffusion under recursive training (the GeoDiff experiment at CPU scale).

Gerstgrasser et al. 2024 ("Is Model Collapse Inevitable?", arXiv 2404.01413) retrained GeoDiff
(Xu et al. 2022, ICLR), a diffusion model of molecular conformers, on its own samples: the
held-out test loss rose when data were replaced and stayed flat when they accumulated. Here:

* real data: RDKit ETKDGv3 + MMFF94 conformer ensembles (cached) of small H/C/N/O/F
  molecules from the NCI set RDKit ships, split by molecule into train / validation / reserve / test;
* model: an E(3)-equivariant e3nn denoiser over atom coordinates conditioned on the
  molecular graph (bonds plus 1-3 and 1-4 pairs, optionally a radius graph), trained with
  PyTorch Lightning for a fixed number of epochs over each generation's pool;
* synthetic data: conformers the model samples for the training molecules' graphs;
* primary metric: the denoising loss on the test molecules' reference conformers at fixed
  noise levels and noise draws; secondary: COV/MAT (heavy-atom RMSD, 0.5 A) with twice as
  many generated as reference conformers per test molecule, and bond-length error.

Pool payload: ``mol`` (n,) molecule index, ``pos`` (n, max_atoms, 3) coordinates in A.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, model_validator

from collapselab import Pool, TaskMetadata
from collapselab.errors import ConfigError, TaskError
from collapselab.toolkit.samples import write_sample_image
from collapselab.toolkit.seeds import derive_int
from collapselab.toolkit.strata import stratum_losses
from collapselab.toolkit.torch_task import TorchConfig, TorchTask

if TYPE_CHECKING:  # heavy modules (torch, e3nn, RDKit) load only when a task method needs them
    from collapselab.tasks.conformer_diffusion.data import ConformerData
    from collapselab.tasks.conformer_diffusion.model import ConformerDiffusion

EVAL_SEED = 20240402  # fixed noise draws and samples of evaluate(): same model, same numbers
SCORE_SEED = 20240403
ETKDG_SEED_OFFSET = 1000  # the ETKDG reference rows use seeds disjoint from the reference's

_MODEL = {"scalars": 32, "vectors": 8, "layers": 3, "hidden": 64, "radius": 0.0}


class ConformerConfig(TorchConfig):
    """The molecules and their split, the reference ensembles (RDKit ETKDG + MMFF), the denoiser,
    its training, the sampler, the evaluation and the expert's relaxation."""

    min_heavy: int = Field(ge=1, description="fewest heavy atoms of a molecule")
    max_heavy: int = Field(ge=1, description="most heavy atoms of a molecule")
    molecules: int = Field(ge=0, description="molecules kept (0 = every one in the heavy-atom range)")
    hydrogens: bool
    n_test: int = Field(ge=1)
    n_reserve: int = Field(ge=0)
    n_validation: int = Field(ge=1)
    split_seed: int = Field(ge=0)
    ref_embed: int = Field(ge=1, description="reference conformers embedded per molecule")
    ref_prune_rms: float = Field(ge=0)
    ref_seed: int = Field(ge=0)
    scalars: int = Field(ge=1)
    vectors: int = Field(ge=1)
    layers: int = Field(ge=1)
    hidden: int = Field(ge=1)
    radius: float = Field(ge=0, description="the graph's radius edges in A (0: bonds only)")
    lr: float = Field(gt=0)
    ema_decay: float = Field(ge=0, lt=1)
    sample_steps: int = Field(ge=1)
    x0_clip: float = Field(ge=0)
    eval_levels: int = Field(ge=1)
    eval_batch: int = Field(ge=1)
    cov_threshold: float = Field(gt=0, description="RMSD (A) under which a sample covers a reference conformer")
    sdf_molecules: int = Field(ge=0)
    expert_steps: int = Field(ge=0)

    @model_validator(mode="after")
    def _heavy_range(self) -> ConformerConfig:
        if self.min_heavy > self.max_heavy:
            raise ValueError(f"need min_heavy <= max_heavy, got {self.min_heavy}, {self.max_heavy}")
        return self


def _preset(**values: Any) -> dict[str, Any]:
    base = {
        "min_heavy": 4, "max_heavy": 9, "molecules": 0, "hydrogens": False,
        "n_test": 60, "n_reserve": 60, "n_validation": 30, "split_seed": 0,
        "ref_embed": 10, "ref_prune_rms": 0.25, "ref_seed": 1,
        **_MODEL,
        "steps": 1000, "batch_size": 32, "lr": 1e-2, "ema_decay": 0.0,
        "sample_steps": 25, "x0_clip": 8.0, "eval_levels": 8, "eval_batch": 512, "cov_threshold": 0.5, "sdf_molecules": 12,
        "expert_steps": 200, "accelerator": "cpu", "generations": 10,
    }
    unknown = set(values) - set(base)
    if unknown:
        raise KeyError(f"unknown preset keys {sorted(unknown)}")
    return {**base, **values}


class ConformerDiffusionTask(TorchTask):
    name = "conformer_diffusion"
    version = "3.0"
    Config = ConformerConfig
    settings: ConformerConfig
    metadata = TaskMetadata(
        modality="molecules (3D conformers)",
        requires=("torch", "pytorch_lightning", "e3nn", "rdkit"),
        extra="molecules",
        description="E(3)-equivariant diffusion (e3nn) over conformers of NCI molecules; denoising loss on held-out molecules.",
        citation="Gerstgrasser et al. 2024, arXiv 2404.01413; Xu et al. 2022 (GeoDiff), ICLR",
        loss_unit="epsilon MSE per coordinate on held-out molecules' conformers (fixed noise levels and draws)",
        secondary_metrics={
            "cov_r": "COV-R: share of reference conformers within 0.5 A heavy-atom RMSD of a sample",
            "mat_r": "MAT-R (A): mean RMSD from each reference conformer to its closest sample",
            "cov_p": "COV-P: share of samples within 0.5 A of a reference conformer",
            "mat_p": "MAT-P (A): mean RMSD from each sample to its closest reference conformer",
            "bond_mae": "mean absolute bond-length error of samples against the MMFF reference (A)",
            "variance_ratio": "mean pairwise RMSD within generated ensembles over within reference ensembles",
            "mode_coverage": "COV-R again, as the collapse profile's modes",
            "hallucination": "share of samples failing RDKit distance-bound bond-length or clash tests",
            "tail_loss": "denoising loss on test molecules whose ring systems are rarest in training",
            "common_loss": "denoising loss on the other test molecules",
        },
    )
    presets = {
        "smoke": _preset(
            max_heavy=6, molecules=40, n_test=6, n_reserve=4, n_validation=4, ref_embed=4, scalars=8, vectors=2, layers=1,
            hidden=16, steps=8, batch_size=16, sample_steps=4, eval_levels=2, sdf_molecules=2, generations=2,
        ),
        "cpu": _preset(),
        "paper": _preset(
            max_heavy=15, hydrogens=True, n_test=200, n_reserve=200, n_validation=100, ref_embed=20, scalars=64, vectors=16,
            layers=4, hidden=128, radius=6.0, steps=20000, batch_size=64, lr=1e-3, sample_steps=100, x0_clip=10.0,
            eval_batch=1024, accelerator="auto", generations=10,
        ),
    }
    def __init__(self, preset: str = "cpu", overrides: Mapping[str, Any] | None = None) -> None:
        super().__init__(preset, overrides)
        self._memo: tuple[Any, ...] | None = None  # the last evaluated model's test samples

    def default_sampling_options(self) -> Mapping[str, Any]:
        """``sample_steps``: the number of ancestral diffusion steps of the sampler."""
        return {"sample_steps": self.settings.sample_steps}

    # ------------------------------------------------------------------ data
    @cached_property
    def _data(self) -> ConformerData:
        from collapselab.tasks.conformer_diffusion import data

        loaded = data.load(self.settings)
        if len(loaded.split.train) < 1:
            held_out = self.settings.n_test + self.settings.n_reserve + self.settings.n_validation
            raise ConfigError(
                f"n_test + n_reserve + n_validation = {held_out} leaves no training molecules out of {len(loaded.table)}"
            )
        return loaded

    @cached_property
    def _real(self) -> Pool:
        return Pool(self._data.items(self._data.split.train), origin=-1)

    @cached_property
    def _reserve(self) -> Pool:
        if not len(self._data.split.reserve):
            raise NotImplementedError("this configuration keeps no reserve molecules (n_reserve=0)")
        return Pool(self._data.items(self._data.split.reserve), origin=-1)

    @cached_property
    def _test(self) -> dict[str, np.ndarray]:
        return self._data.items(self._data.split.test)

    def real_pool(self) -> Pool:
        return self._real

    def fresh_real_pool(self, n: int, rng: np.random.Generator) -> Pool:
        """Reference conformers of the reserve molecules (never trained on by the standard track)."""
        return self._reserve.subset(_draw(len(self._reserve), n, rng))

    def data_fingerprint(self) -> dict[str, Any]:
        return self._data.fingerprint()

    # ----------------------------------------------------------------- model
    def build_model(self, total_steps: int, options: Mapping[str, Any]) -> ConformerDiffusion:
        from collapselab.tasks.conformer_diffusion.model import ConformerDiffusion, ModelSpec

        c = self.settings
        spec = ModelSpec(scalars=c.scalars, vectors=c.vectors, layers=c.layers, hidden=c.hidden, radius=c.radius)
        return ConformerDiffusion(self._data.table, spec, lr=c.lr, max_steps=total_steps, ema_decay=c.ema_decay)

    def training_tensors(self, pool: Pool) -> list[Any]:
        import torch

        return [torch.tensor(pool["mol"]), torch.tensor(pool["pos"])]

    def _sample(self, model: ConformerDiffusion, mols: np.ndarray, seed: int, steps: int | None = None) -> np.ndarray:
        from collapselab.tasks.conformer_diffusion.evaluation import sample_positions

        c = self.settings
        steps = c.sample_steps if steps is None else steps
        return sample_positions(model, mols, steps, seed, c.eval_batch, self.device(), c.x0_clip)

    def sample(self, model: ConformerDiffusion, n: int, rng: np.random.Generator, options: Mapping[str, Any]) -> Pool:
        """``n`` new conformers for training molecules, drawn with the real pool's molecule mix."""
        mols = np.asarray(self._real["mol"])[_draw(len(self._real), n, rng)]
        return Pool({"mol": mols, "pos": self._sample(model, mols, derive_int(rng), int(options["sample_steps"]))}, origin=0)

    def _losses(self, model: ConformerDiffusion, mol: np.ndarray, pos: np.ndarray, seed: int) -> np.ndarray:
        from collapselab.tasks.conformer_diffusion.evaluation import item_losses

        c = self.settings
        return item_losses(model, mol, pos, c.eval_levels, seed, c.eval_batch, self.device())

    def _ensemble(self, model: ConformerDiffusion, mols: np.ndarray) -> tuple[list[np.ndarray], dict[str, float]]:
        """Twice as many samples as reference conformers per molecule of ``mols`` (fixed seed), their
        ensemble metrics and the collapse profile's sample measures."""
        from collapselab.tasks.conformer_diffusion import collapse_measures
        from collapselab.tasks.conformer_diffusion.evaluation import ensemble_metrics

        counts = 2 * self._data.ensembles.counts[mols]
        flat = self._sample(model, np.repeat(mols, counts), EVAL_SEED)
        parts = np.split(flat, np.cumsum(counts)[:-1])
        generated = [conf[:, : int(self._data.table.n_atoms[m])] for m, conf in zip(mols, parts)]
        metrics = ensemble_metrics(self._data, mols, generated, self.settings.cov_threshold)
        metrics.update(collapse_measures.sample_measures(self._data, mols, generated, metrics, self.settings.hydrogens))
        return generated, metrics

    def _test_samples(self, model: ConformerDiffusion) -> tuple[np.ndarray, list[np.ndarray], dict[str, float]]:
        """The test molecules' samples and ensemble metrics (:meth:`_ensemble`); memoised for the model
        last evaluated, so that the artifacts show the conformers that were scored without sampling
        them again."""
        if self._memo is not None and self._memo[0] is model:
            return self._memo[1:]
        test = self._data.split.test
        generated, metrics = self._ensemble(model, test)
        self._memo = (model, test, generated, metrics)
        return test, generated, metrics

    def evaluate(self, model: ConformerDiffusion) -> dict[str, float]:
        """Denoising loss, its tail and common strata, and ensemble metrics on the test molecules (what
        the leaderboard publishes)."""
        return self._held_out_metrics(model, self._data.split.test, self._test["mol"], self._test["pos"],
                                      self._test_samples(model)[2])

    def _held_out_metrics(self, model: ConformerDiffusion, mols: np.ndarray, mol: np.ndarray, pos: np.ndarray,
                          ensemble: dict[str, float]) -> dict[str, float]:
        """Loss on the conformers (``mol``, ``pos``) of the held-out molecules ``mols``, its tail and common
        strata (the rarest ring systems among ``mols``), and the ``ensemble`` metrics."""
        from collapselab.tasks.conformer_diffusion import collapse_measures

        losses = self._losses(model, mol, pos, EVAL_SEED)
        tails = stratum_losses(losses, mol, collapse_measures.tail_molecules(self._data, mols))
        return {"loss": float(losses.mean()), **ensemble, **tails}

    def validate(self, model: ConformerDiffusion) -> dict[str, float]:
        """The same metrics on the validation molecules (model selection; never the test molecules)."""
        mols = self._data.split.validation
        items = self._data.items(mols)
        return self._held_out_metrics(model, mols, items["mol"], items["pos"], self._ensemble(model, mols)[1])

    @cached_property
    def _etkdg_rows(self) -> dict[str, dict[str, float]]:
        """COV/MAT of RDKit itself on the test molecules (same sample counts as the model)."""
        from collapselab.tasks.conformer_diffusion import reference
        from collapselab.tasks.conformer_diffusion.evaluation import ensemble_metrics

        d, test = self._data, self._data.split.test
        smiles = [d.table.smiles[m] for m in test]
        counts = [2 * int(d.ensembles.counts[m]) for m in test]
        rows = {}
        for label, mmff in (("RDKit ETKDGv3", False), ("RDKit ETKDGv3 + MMFF94", True)):
            settings = reference.EmbedSettings(seed=self.settings.ref_seed + ETKDG_SEED_OFFSET, mmff=mmff, prune_rms=0.0)
            ens = reference.ensembles(smiles, counts, settings)
            generated = [ens.conformers(i)[:, : int(d.table.n_atoms[m])] for i, m in enumerate(test)]
            rows[label] = ensemble_metrics(d, test, generated, self.settings.cov_threshold)
        return rows

    # ----------------------------------------------------- hooks for strategies
    @cached_property
    def _geometry(self) -> dict[int, Any]:
        return {}

    def _reference_geometry(self, m: int) -> Any:
        from collapselab.tasks.conformer_diffusion import chemistry

        if m not in self._geometry:
            self._geometry[m] = chemistry.reference_geometry(self._data, m)
        return self._geometry[m]

    @cached_property
    def _reference_energy(self) -> dict[int, float]:
        return {}

    def _energy_above_reference(self, m: int, pos: np.ndarray) -> float:
        """MMFF94 energy of ``pos`` above the molecule's lowest reference conformer, per heavy atom."""
        from collapselab.tasks.conformer_diffusion import chemistry

        smiles, hydrogens, atoms = self._data.table.smiles[m], self.settings.hydrogens, int(self._data.table.n_atoms[m])
        if m not in self._reference_energy:
            self._reference_energy[m] = min(chemistry.mmff_energy(smiles, c, hydrogens) for c in self._data.conformers(m))
        energy = chemistry.mmff_energy(smiles, pos[:atoms], hydrogens)
        return (energy - self._reference_energy[m]) / self._data.heavy_atoms(m)

    def _items(self, pool: Pool) -> list[tuple[int, np.ndarray]]:
        return [(int(m), np.asarray(p)[: int(self._data.table.n_atoms[int(m)])]) for m, p in zip(pool["mol"], pool["pos"])]

    def verify(self, pool: Pool, quality: float, rng: np.random.Generator) -> np.ndarray:
        """Geometric validity against RDKit: every bond within ``tol`` of its mean reference length and
        the MMFF94 energy at most ``window`` (per heavy atom) above the molecule's lowest reference
        conformer. ``quality`` sets how strict it is: tol = 0.05 + 0.45 (1 - q) A and
        window = 1 + 9 (1 - q) kcal/mol per heavy atom. Score = min(1 - dev/tol, 1 - dE/window)."""
        from collapselab.tasks.conformer_diffusion import chemistry

        if not 0.0 <= quality <= 1.0:
            raise TaskError(f"task {self.name!r}: verifier quality must be in [0, 1], got {quality}")
        tol, window = 0.05 + 0.45 * (1.0 - quality), 1.0 + 9.0 * (1.0 - quality)
        scores = []
        for m, pos in self._items(pool):
            geometry = self._reference_geometry(m)
            bonds = chemistry.deviations(geometry, pos)[geometry.kind == 0]
            energy = self._energy_above_reference(m, pos)
            scores.append(min(1.0 - float(bonds.max(initial=0.0)) / tol, 1.0 - energy / window))
        return np.array(scores)

    def correct(self, pool: Pool, strength: float, rng: np.random.Generator) -> Pool:
        """``round(strength * expert_steps)`` MMFF94 minimisation steps on each conformer (RDKit),
        the expert of a self-correcting loop (Gillman et al. 2024)."""
        from collapselab.tasks.conformer_diffusion import chemistry

        if not 0.0 <= strength <= 1.0:
            raise TaskError(f"task {self.name!r}: correction strength must be in [0, 1], got {strength}")
        steps = round(strength * self.settings.expert_steps)
        pos = np.array(pool["pos"], dtype=np.float32)
        for i, (m, atoms) in enumerate(self._items(pool)):
            pos[i, : len(atoms)] = chemistry.relax(self._data.table.smiles[m], atoms, self.settings.hydrogens, steps)
        return Pool({"mol": np.asarray(pool["mol"]), "pos": pos}, pool.origin, pool.weight)

    def reward(self, pool: Pool) -> np.ndarray:
        """-log(1 + dE), dE the MMFF94 energy above the reference minimum per heavy atom (kcal/mol)."""
        return np.array([-np.log1p(max(self._energy_above_reference(m, pos), 0.0)) for m, pos in self._items(pool)])

    def features(self, pool: Pool) -> np.ndarray:
        """Mean and largest deviation of bond, 1-3 and 1-4 distances from the reference's (A)."""
        from collapselab.tasks.conformer_diffusion import chemistry

        rows = []
        for m, pos in self._items(pool):
            geometry = self._reference_geometry(m)
            found = chemistry.deviations(geometry, pos)
            row = []
            for kind in (0, 1, 2):
                part = found[geometry.kind == kind]
                row += [float(part.mean()) if len(part) else 0.0, float(part.max(initial=0.0))]
            rows.append(row)
        return np.array(rows)

    def write_artifacts(self, model: ConformerDiffusion, generation: int, directory: Path, rng: np.random.Generator) -> list[str]:
        from collapselab.tasks.conformer_diffusion import artifacts

        c = self.settings
        mols, generated, metrics = self._test_samples(model)
        names = []
        if c.sdf_molecules:
            sdf = f"samples-gen-{generation:04d}.sdf"
            k = c.sdf_molecules
            artifacts.write_sdf(directory / sdf, self._data, mols[:k], generated[:k], generation)
            names.append(sdf)
            drawn = artifacts.draw_sdf(directory / sdf)
            if drawn is not None:
                image = f"samples-gen-{generation:04d}.png"
                write_sample_image(directory / image, *drawn)
                names.append(image)
        rows = {f"model, generation {generation}": metrics}
        rows.update(self._etkdg_rows)
        counts = (
            f"{len(mols)} test molecules, {int(self._data.ensembles.counts[mols].sum())} reference and "
            f"{sum(len(g) for g in generated)} generated conformers"
        )
        table = f"coverage-gen-{generation:04d}.txt"
        (directory / table).write_text(artifacts.coverage_table(rows, c.cov_threshold, counts))
        names.append(table)
        return names


def _draw(size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices into ``range(size)``: whole random permutations, then part of one more,
    so every index is used as evenly as possible."""
    repeats = -(-n // size)
    return np.concatenate([rng.permutation(size) for _ in range(repeats)])[:n]
