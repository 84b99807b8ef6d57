"""Linear regression under recursive relabelling: the analytically tractable collapse setting.

Gerstgrasser et al. 2024 ("Is Model Collapse Inevitable?", arXiv 2404.01413) and Dohmatob
et al. 2024 ("Model Collapse Demystified", arXiv 2402.07712): rows x ~ N(0, I_d), a known
w* on the unit sphere, labels y = x.w* + N(0, sigma^2). A later generation's data are labelled
by the previous model plus fresh noise, on the same rows (``design=fixed``) or on new rows
(``design=fresh``). The model is OLS, or ridge when a strategy sets ``ridge_lambda`` (the
penalty lambda ||w||^2 added to the summed squared error).

``trials`` independent Monte-Carlo trials (own design, w* and noise) run vectorised as the
pool's replicas: payload ``x`` has shape (n, trials, d) and ``y`` (n, trials); the fit is a
batched float64 solve. The loss is the exact excess risk ||w_hat - w*||^2 (Sigma = I),
averaged over trials, with its standard error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from collapselab import Compute, FitResult, Pool, Task, TaskMetadata
from collapselab.errors import ConfigError, TaskError
from collapselab.tasks.linear_regression import theory


class LinearRegressionTask(Task):
    name = "linear_regression"
    version = "1.0"
    metadata = TaskMetadata(
        modality="tabular (linear regression)",
        description="OLS/ridge on Gaussian rows relabelled by the previous model; exact excess risk.",
        citation="Gerstgrasser et al. 2024, arXiv 2404.01413; Dohmatob et al. 2024, arXiv 2402.07712",
        loss_unit="excess risk ||w - w*||^2",
        secondary_metrics={
            "loss_se": "Monte-Carlo standard error of the loss over trials",
            "theory_loss": "closed-form expected excess risk, where one exists for the pools used",
            "weight_norm": "mean squared norm of the fitted weights (shrinkage shows as a fall)",
        },
    )
    presets = {
        "smoke": {"dim": 5, "n_samples": 20, "noise_var": 1.0, "design": "fixed", "trials": 200,
                  "data_seed": 0, "generations": 3},
        "cpu": {"dim": 10, "n_samples": 100, "noise_var": 1.0, "design": "fixed", "trials": 1000,
                "data_seed": 0, "generations": 10},
        "paper": {"dim": 100, "n_samples": 500, "noise_var": 1.0, "design": "fixed", "trials": 100,
                  "data_seed": 0, "generations": 20},
    }

    def default_fit_options(self) -> Mapping[str, Any]:
        return {"ridge_lambda": 0.0}

    def check_config(self, config: Mapping[str, Any]) -> None:
        if config["design"] not in ("fixed", "fresh"):
            raise ConfigError(f"design must be 'fixed' or 'fresh', got {config['design']!r}")
        for key in ("dim", "n_samples", "trials"):
            if config[key] < 1:
                raise ConfigError(f"{key} must be >= 1, got {config[key]}")
        if config["noise_var"] < 0:
            raise ConfigError(f"noise_var must be >= 0, got {config['noise_var']}")

    # ------------------------------------------------------------------ data
    @cached_property
    def _truth(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(w* of shape (trials, d), the real design (T, trials, d), the real labels (T, trials))."""
        c = self.config
        rng = np.random.default_rng([c["data_seed"], 20240412])
        w_star = rng.standard_normal((c["trials"], c["dim"]))
        w_star /= np.linalg.norm(w_star, axis=1, keepdims=True)
        x = rng.standard_normal((c["n_samples"], c["trials"], c["dim"]))
        y = self._label(x, w_star, rng)
        return w_star, x, y

    def _label(self, x: np.ndarray, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(x.shape[:2]) * np.sqrt(self.config["noise_var"])
        return np.einsum("ntd,td->nt", x, w) + noise

    def _rows(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Design rows for ``n`` new examples: the fixed design (cycled) or fresh Gaussian rows."""
        if self.config["design"] == "fresh":
            return rng.standard_normal((n, self.config["trials"], self.config["dim"]))
        x = self._truth[1]
        return x[np.arange(n) % len(x)]

    @cached_property
    def _real(self) -> Pool:
        _, x, y = self._truth
        return Pool({"x": x, "y": y}, origin=-1, replicas=self.config["trials"])

    def real_pool(self) -> Pool:
        return self._real

    def fresh_real_pool(self, n: int, rng: np.random.Generator) -> Pool:
        x = self._rows(n, rng)
        return Pool({"x": x, "y": self._label(x, self._truth[0], rng)}, origin=-1, replicas=self.config["trials"])

    def data_fingerprint(self) -> dict[str, Any]:
        digest = hashlib.sha256()
        for array in self._truth:
            digest.update(np.ascontiguousarray(array).tobytes())
        return {"real_sha256": digest.hexdigest()}

    # ----------------------------------------------------------------- model
    def fit(self, pool: Pool, options: Mapping[str, Any], rng: np.random.Generator) -> FitResult:
        x = pool["x"].transpose(1, 0, 2)  # (trials, n, d): one BLAS matmul per trial below
        y = pool["y"].T[..., None]
        weighted = x if pool.weight is None else x * pool.weight[None, :, None]
        gram = weighted.transpose(0, 2, 1) @ x
        moment = (weighted.transpose(0, 2, 1) @ y)[..., 0]
        lam = float(options.get("ridge_lambda", 0.0))
        if lam:
            gram = gram + lam * np.eye(gram.shape[-1])
        try:
            w_hat = np.linalg.solve(gram, moment[..., None])[..., 0]
        except np.linalg.LinAlgError:
            w_hat = np.einsum("tde,te->td", np.linalg.pinv(gram), moment)
        return FitResult(w_hat, Compute(examples=len(pool), steps=0))

    def sample(self, model: np.ndarray, n: int, rng: np.random.Generator, options: Mapping[str, Any]) -> Pool:
        x = self._rows(n, rng)
        return Pool({"x": x, "y": self._label(x, model, rng)}, origin=0, replicas=self.config["trials"])

    def evaluate(self, model: np.ndarray) -> dict[str, float]:
        excess = np.sum((model - self._truth[0]) ** 2, axis=1)
        trials = len(excess)
        return {
            "loss": float(excess.mean()),
            "loss_se": float(excess.std(ddof=1) / np.sqrt(trials)) if trials > 1 else 0.0,
            "weight_norm": float(np.sum(model**2, axis=1).mean()),
        }

    def verify(self, pool: Pool, quality: float, rng: np.random.Generator) -> np.ndarray:
        """A fixed verifier weight vector per trial at distance (1 - quality) ||w*|| from w* (a random
        direction drawn once per run); an example is accepted when its residual under the verifier
        is within two noise standard deviations: score = 2 sigma - |y - x.w_v|, shape (n, trials)."""
        if not 0.0 <= quality <= 1.0:
            raise TaskError(f"task {self.name!r}: verifier quality must be in [0, 1], got {quality}")
        w_star = self._truth[0]
        direction = np.random.default_rng([self.config["data_seed"], 20240611]).standard_normal(w_star.shape)
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        w_v = w_star + (1.0 - quality) * np.linalg.norm(w_star, axis=1, keepdims=True) * direction
        residual = pool["y"] - np.einsum("ntd,td->nt", pool["x"], w_v)
        return 2.0 * np.sqrt(self.config["noise_var"]) - np.abs(residual)

    def theory(self, records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        c = self.config
        value = theory.theory_loss(records, c["dim"], c["n_samples"], c["noise_var"], c["design"])
        return {} if value is None else {"theory_loss": value}

    def save_model(self, model: np.ndarray, path: Path) -> None:
        with open(path, "wb") as handle:
            np.save(handle, model, allow_pickle=False)

    def load_model(self, path: Path) -> np.ndarray:
        return np.load(path, allow_pickle=False)
