"""Linear regression under recursive relabelling: the analytic laboratory of model collapse.

The setting of Dohmatob, Feng & Kempe 2024 ("Model Collapse Demystified: The Case of Regression",
arXiv 2402.07712, Sec. 3) and Gerstgrasser et al. 2024 (arXiv 2404.01413, Sec. 2): Gaussian rows
with covariance Sigma (isotropic, or a power law with a source condition, :mod:`setting`), real labels
x.w* + N(0, sigma^2) on T rows, and every synthetic generation T0 rows labelled by the previous
generation's generator plus N(0, sigma0^2). The model is least squares, or ridge with the paper's
per-sample penalty when a strategy sets ``ridge_lambda``; ``regularise_generator=false`` keeps the
next generation's labeller unregularised, so ridge only shapes the evaluated model (the paper's
downstream model).

The compute budget of one fit is ``examples`` examples (default: as many as the real pool holds), the
closed-form analogue of optimiser steps x batch size: a fit on any pool is the least-squares (or ridge)
fit to exactly that many examples drawn from it (:func:`fitting.budget_weights`: successive random
permutations, so a pool of exactly the budget is fitted whole), so a strategy changes what the model
trains on, not how much. A strategy may ask for more through the fit option ``examples`` (Gerstgrasser
et al.'s accumulate fits all of its growing pool); the record's ``compute.examples`` says what was spent.

``trials`` Monte-Carlo trials run vectorised as the pools' replicas. With ``design=fixed`` the design
is one matrix per data seed, stored once in the task; pools hold row indices and labels (:mod:`data`).
The loss is the exact excess risk (w - w*)^T Sigma (w - w*), averaged over trials, with its standard
error; ``theory_loss`` is the expected value for the pools the run used (:mod:`theory`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from collapselab import REAL, Compute, FitResult, Pool, Task, TaskMetadata
from collapselab.errors import TaskError
from collapselab.tasks.linear_regression import data, fitting, measures, theory
from collapselab.tasks.linear_regression.setting import SAME, LinearRegressionConfig, Setting

_COMMON = {"noise_var": 1.0, "generator_samples": SAME, "generator_noise_var": float(SAME), "design": "fixed",
           "spectrum": "isotropic", "spectrum_decay": 2.0, "source_r": 0.5, "data_seed": SAME, "examples": SAME}


class LinearRegressionTask(Task):
    name = "linear_regression"
    version = "3.1"
    Config = LinearRegressionConfig
    settings: LinearRegressionConfig
    seeded_data = True
    leaderboard_seeds = 10  # seconds per run: enough seeds for t intervals on 9 degrees of freedom
    metadata = TaskMetadata(
        modality="tabular (linear regression)",
        description="OLS/ridge on Gaussian rows relabelled by the previous model; exact excess risk in the Sigma-norm.",
        citation="Dohmatob, Feng & Kempe 2024, arXiv 2402.07712; Gerstgrasser et al. 2024, arXiv 2404.01413",
        loss_unit="excess risk (w - w*)^T Sigma (w - w*)",
        secondary_metrics={
            "loss_se": "Monte-Carlo standard error of the loss over trials",
            "theory_loss": "expected excess risk for the pools used, where the papers' theory covers them",
            "generator_loss": "excess risk of the weights that label the next generation",
            "weight_norm": "mean squared norm of the fitted weights (shrinkage shows as a fall)",
            "variance_ratio": "spread of the generator's labels over the real labels' (collapse profile: variance)",
            "label_noise_ratio": "variance of the synthetic labels' noise around the truth over the real noise",
            "tail_loss": "power spectra: excess risk along the quarter of directions with the smallest eigenvalues",
            "common_loss": "power spectra: excess risk along the quarter of directions with the largest eigenvalues",
        },
    )
    presets = {
        "smoke": {**_COMMON, "dim": 5, "n_samples": 20, "trials": 200, "generations": 3},
        "cpu": {**_COMMON, "dim": 10, "n_samples": 100, "trials": 1000, "generations": 10},
        "paper": {**_COMMON, "dim": 100, "n_samples": 500, "trials": 1000, "generations": 20},
    }
    metric_bounds = {"loss": (0.0, None), "loss_se": (0.0, None), "generator_loss": (0.0, None),
                     "weight_norm": (0.0, None), "variance_ratio": (0.0, None), "label_noise_ratio": (0.0, None),
                     "tail_loss": (0.0, None), "common_loss": (0.0, None)}

    def resolved_config(self) -> Mapping[str, Any]:
        """The config with the -1 sentinels of ``generator_samples``, ``generator_noise_var`` and
        ``examples`` resolved (``data_seed = -1`` stays: it means the run seed, :attr:`data_seed`)."""
        s = self.setting
        return {**self.config, "generator_samples": s.generator_samples,
                "generator_noise_var": s.generator_noise_var, "examples": s.examples}

    def memory_estimate(self, config: Mapping[str, Any]) -> int:
        """Float64 arrays a run holds at least: the real pool and one generation's sample (labels, and rows
        for ``design=fresh``), the fixed design, and per trial w*, the verifier's direction and the model."""
        s = Setting.from_config(config)
        return data.kind(s).memory_bytes(s, s.n_samples + s.generator_samples) + 3 * 8 * s.trials * s.dim

    @cached_property
    def setting(self) -> Setting:
        return Setting.from_config(self.settings)

    def default_fit_options(self) -> Mapping[str, Any]:
        return {"examples": self.setting.examples, "ridge_lambda": 0.0, "regularise_generator": True}

    @property
    def example_budget(self) -> int:
        """Examples one standard fit processes (config ``examples``; -1: ``n_samples``)."""
        return self.setting.examples

    # ------------------------------------------------------------------ data
    @property
    def data_seed(self) -> int:
        """``data_seed``, or (-1) the run seed (0 for an instance not bound to a run)."""
        pinned = self.settings.data_seed
        return pinned if pinned != SAME else (self.run_seed or 0)

    @cached_property
    def _data(self) -> data.RealData:
        return data.real_data(self.setting, self.data_seed)

    def real_pool(self) -> Pool:
        return self._data.pool

    def synthetic_size(self) -> int:
        return self.setting.generator_samples

    def fresh_real_pool(self, n: int, rng: np.random.Generator) -> Pool:
        """New real examples: fresh rows (``design=fresh``), or new real labels of the fixed design's rows."""
        real = self._data
        rows = real.rows_for(n, rng)
        return real.make_pool(rows, real.labels(rows, real.w_star, self.setting.noise_var, rng), REAL)

    def data_fingerprint(self) -> dict[str, Any]:
        """The generator of the real data, shared by every seed of an experiment (never one seed's draw);
        a change to how it draws bumps the task's version."""
        pinned = self.settings.data_seed
        return {"generator": "Gaussian rows, w* and label noise from NumPy PCG64 streams of SeedSequence(data seed)",
                "data_seed": "run seed" if pinned == SAME else pinned}

    # ----------------------------------------------------------------- model
    def fit(self, pool: Pool, options: Mapping[str, Any], rng: np.random.Generator) -> FitResult:
        """Model: array (2, trials, d) = (the evaluated weights, the weights labelling the next generation),
        fitted to exactly ``options["examples"]`` examples drawn from ``pool`` (:func:`fitting.budget_weights`)."""
        lam = float(options["ridge_lambda"])
        if not (np.isfinite(lam) and lam >= 0):
            raise TaskError(f"task {self.name!r}: fit option 'ridge_lambda' must be >= 0, got {lam}")
        examples = options["examples"]
        if isinstance(examples, bool) or not isinstance(examples, int | np.integer) or examples < 1:
            raise TaskError(f"task {self.name!r}: fit option 'examples' must be an integer >= 1, got {examples!r}")
        stats = self._data.statistics(pool, fitting.budget_weights(pool, int(examples), rng))
        separate = lam > 0 and not options["regularise_generator"]
        weights = fitting.solve(stats, [lam, 0.0] if separate else [lam])
        model = np.stack([weights[0], weights[-1]])
        return FitResult(model, Compute(examples=int(examples), steps=0))

    def sample(self, model: np.ndarray, n: int, rng: np.random.Generator, options: Mapping[str, Any]) -> Pool:
        real = self._data
        rows = real.rows_for(n, rng)
        return real.make_pool(rows, real.labels(rows, model[1], self.setting.generator_noise_var, rng), 0)

    def _excess(self, w: np.ndarray) -> np.ndarray:
        return np.sum(self.setting.eigenvalues * (w - self._data.w_star) ** 2, axis=1)

    def evaluate(self, model: np.ndarray) -> dict[str, float]:
        excess = self._excess(model[0])
        trials = len(excess)
        s, w_star = self.setting, self._data.w_star
        found = {
            "loss": float(excess.mean()),
            "loss_se": float(excess.std(ddof=1) / np.sqrt(trials)) if trials > 1 else 0.0,
            "generator_loss": float(self._excess(model[1]).mean()),
            "weight_norm": float(np.sum(model[0] ** 2, axis=1).mean()),
            "variance_ratio": measures.variance_ratio(s.eigenvalues, model[1], w_star, s.noise_var,
                                                      s.generator_noise_var),
        }
        noise = measures.label_noise_ratio(s.eigenvalues, model[1], w_star, s.noise_var, s.generator_noise_var)
        if noise is not None:
            found["label_noise_ratio"] = noise
        if s.spectrum == "power":
            found.update(measures.stratum_losses(s.eigenvalues, model[0], w_star))
        return found

    def validate(self, model: np.ndarray) -> dict[str, float]:
        """Model selection on an independent draw of real data (:attr:`data.RealData.validation`): ``mse``, the
        evaluated weights' mean squared error on its labels, and ``loss`` = mse - noise_var, an unbiased estimate
        of the excess risk (fresh design) or of the fixed-design excess risk (w - w*)^T (X^T X / T) (w - w*)
        (fixed design); it may fall below 0. Never :meth:`evaluate`'s exact risk against w*."""
        rows, y = self._data.validation
        mse = float(np.mean((y - self._data.predict(rows, model[0])) ** 2))
        return {"loss": mse - self.setting.noise_var, "mse": mse}

    def theory(self, records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        design = self._data.theory_design()
        corrected = {int(o) for record in records for o in record.get("corrected", ())}  # the expert's work, as recorded
        value = theory.theory_loss(records, self.setting, design, corrected)
        return {} if value is None else {"theory_loss": value}

    @classmethod
    def scaling_law_experiment(cls) -> Mapping[str, Any] | None:
        """``figures/scaling_law.json``, written by ``experiments scaling-law`` (Dohmatob, Feng & Kempe 2024, Sec. 5)."""
        return json.loads((Path(__file__).parent / "figures" / "scaling_law.json").read_text())

    def save_model(self, model: np.ndarray, path: Path) -> None:
        with open(path, "wb") as handle:
            np.save(handle, model, allow_pickle=False)

    def load_model(self, path: Path) -> np.ndarray:
        return np.load(path, allow_pickle=False)

    # --------------------------------------------- hooks for strategies
    @cached_property
    def _reference(self) -> np.ndarray:
        """The least-squares (minimum-norm) fit to the real pool, per trial: what real data alone say."""
        return fitting.solve(self._data.statistics(self.real_pool()), [0.0])[0]

    def _predict(self, pool: Pool, w: np.ndarray) -> np.ndarray:
        return self._data.predict(self._data.item_rows(pool), w)

    def verify(self, pool: Pool, quality: float, rng: np.random.Generator) -> np.ndarray:
        """A verifier independent of the chain (Feng et al. 2024, arXiv 2406.07515): per trial the weight
        vector w_v = w* + (1 - quality) ||w*||_Sigma u, u a random direction of unit Sigma-norm drawn once
        per data seed; an item is accepted when its label is within two noise standard deviations of the
        verifier's prediction: score = 2 sigma - |y - x.w_v|, sigma^2 = max(noise_var, generator_noise_var).
        Quality 1 knows w* exactly; quality 0 is as far from w* as the zero predictor is."""
        if not 0.0 <= quality <= 1.0:
            raise TaskError(f"task {self.name!r}: verifier quality must be in [0, 1], got {quality}")
        w_star = self._data.w_star
        scale = np.sqrt(np.sum(self.setting.eigenvalues * w_star**2, axis=1, keepdims=True))
        w_v = w_star + (1.0 - quality) * scale * self._data.verifier_direction
        band = 2.0 * np.sqrt(max(self.setting.noise_var, self.setting.generator_noise_var))
        return band - np.abs(pool["y"] - self._predict(pool, w_v))

    def correct(self, pool: Pool, strength: float, rng: np.random.Generator) -> Pool:
        """Self-correction (Gillman et al. 2024, arXiv 2402.07087): each label moved toward the expert's
        prediction, y' = y + strength (x.w_ref - y), where the expert w_ref is the least-squares fit to the
        real pool (what the real data alone say; it never sees w* or the chain)."""
        if not 0.0 <= strength <= 1.0:
            raise TaskError(f"task {self.name!r}: correction strength must be in [0, 1], got {strength}")
        y = pool["y"]
        corrected = y + strength * (self._predict(pool, self._reference) - y)
        payload = dict(pool.payload)
        payload["y"] = corrected
        return Pool(payload, pool.origin, pool.weight, pool.replicas)

    def reward(self, pool: Pool) -> np.ndarray:
        """Minus the squared residual under the real-data fit w_ref, shape (n, trials)."""
        return -((pool["y"] - self._predict(pool, self._reference)) ** 2)

    def features(self, pool: Pool) -> np.ndarray:
        """(y, x.w_ref, e, e^2) per item and trial, e = y - x.w_ref, shape (n, trials, 4): the label, what the
        real data predict for its row, the residual and its square. Real labels scatter around x.w_ref with the
        label noise only; a generator's labels add its drift x.(w_gen - w_ref), which grows with the generation.
        Both residuals have mean about 0 and differ in variance, so the log density ratio of the two is
        quadratic in e: the square makes it linear in these features, as a linear discriminant needs."""
        predicted = self._predict(pool, self._reference)
        y = pool["y"]
        residual = y - predicted
        return np.stack([y, predicted, residual, residual**2], axis=-1)
