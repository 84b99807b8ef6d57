"""The real data of one run, drawn from its data seed, and the item layout of the task's pools.

The two designs are two kinds of :class:`RealData` (:data:`KINDS`, chosen once by :func:`real_data`):
each knows its item layout, how it predicts, fits and draws new items, what it holds in memory, and
its theory.

Fixed design (``design=fixed``): ONE design matrix X (T rows) per data seed, stored here once and
shared by every trial and every generation: the design is fixed, so the trials of a run replicate
what is random given it (the label noise, and w* for the isotropic spectrum), and seeds replicate
the design (Gerstgrasser et al. 2024, arXiv 2404.01413, Sec. 2: expectations given the fixed X).
An item is a row index and a label: payload ``row`` (n, trials) int32 and ``y`` (n, trials); a
generation's sample of n items labels rows 0, 1, ..., T-1, 0, 1, ... (n mod T), so a sample of kT
items holds k independently labelled copies of the design.

Fresh design (``design=fresh``): every item carries its own row, drawn anew for every trial and
every generation: payload ``x`` (n, trials, d) and ``y`` (n, trials).

Every random quantity comes from its own stream of ``SeedSequence(data seed, spawn key)``, so the
real data, the truth and the verifier's direction never depend on what a strategy does.

Validation (model selection): an independent draw from the real data's distribution, from its
own stream: new real labels for every row of the fixed design, or ``n_samples`` new rows per
trial (fresh design). The task has no test data: its loss is the exact excess risk against w*.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import ClassVar

import numpy as np

from collapselab import REAL, Pool
from collapselab.tasks.linear_regression import fitting
from collapselab.tasks.linear_regression.fixed_theory import FixedDesign
from collapselab.tasks.linear_regression.setting import Design, Setting

_TAG = 0x4C52  # "LR": keeps these streams apart from any other use of the same seed
_SIGNAL, _DESIGN, _NOISE, _VERIFIER, _VALIDATION = range(5)


def stream(seed: int, which: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=int(seed), spawn_key=(_TAG, which))))


def gaussian_rows(setting: Setting, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Rows x ~ N(0, Sigma) of the given leading shape (last axis d)."""
    rows = rng.standard_normal((*shape, setting.dim))
    if setting.spectrum != "isotropic":
        rows *= np.sqrt(setting.eigenvalues)
    return rows


class RealData(ABC):
    """w*, the real rows and labels of one data seed (computed on first use); a kind per design (below)."""

    #: The pools' payload key of an item's row: a row index (fixed design) or the row itself (fresh).
    row_key: ClassVar[str]

    def __init__(self, setting: Setting, seed: int) -> None:
        self.setting = setting
        self.seed = int(seed)

    @staticmethod
    @abstractmethod
    def memory_bytes(setting: Setting, items: int) -> int:
        """Bytes of the real rows and of ``items`` items (labels, and rows where items carry them), float64."""

    @cached_property
    def w_star(self) -> np.ndarray:
        """The truth, shape (trials, d): per trial on the unit sphere (isotropic), or the power-law w*."""
        s = self.setting
        if s.spectrum == "power":
            return np.broadcast_to(s.power_signal, (s.trials, s.dim))
        w = stream(self.seed, _SIGNAL).standard_normal((s.trials, s.dim))
        return w / np.linalg.norm(w, axis=1, keepdims=True)

    @cached_property
    def design(self) -> np.ndarray:
        """The real rows: shape (T, d) for the fixed design, (T, trials, d) for a fresh one."""
        return gaussian_rows(self.setting, self._design_shape, stream(self.seed, _DESIGN))

    @property
    @abstractmethod
    def _design_shape(self) -> tuple[int, ...]:
        """The leading shape of :attr:`design` (its last axis is d)."""

    @property
    @abstractmethod
    def _real_rows(self) -> np.ndarray:
        """The ``rows`` of the real pool's items, as :meth:`rows_for` returns them."""

    @cached_property
    def pool(self) -> Pool:
        s = self.setting
        rows = self._real_rows
        return self.make_pool(rows, self.labels(rows, self.w_star, s.noise_var, stream(self.seed, _NOISE)), REAL).sealed()

    @cached_property
    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows (as :meth:`rows_for` returns them) and real labels of the validation draw (module doc)."""
        s = self.setting
        rng = stream(self.seed, _VALIDATION)
        rows = self.rows_for(s.n_samples, rng)
        return rows, self.labels(rows, self.w_star, s.noise_var, rng)

    @cached_property
    def verifier_direction(self) -> np.ndarray:
        """A unit direction in the Sigma-norm per trial, independent of the chain (the verifier's error)."""
        s = self.setting
        u = stream(self.seed, _VERIFIER).standard_normal((s.trials, s.dim))
        return u / np.sqrt(np.sum(s.eigenvalues * u**2, axis=1, keepdims=True))

    # ------------------------------------------------------------------ items
    @abstractmethod
    def rows_for(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The rows of n new items, shape (n, trials) of row indices or (n, trials, d) of rows."""

    @abstractmethod
    def predict(self, rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        """x.w for every item and trial, shape (n, trials); ``rows`` as :meth:`rows_for` returns them."""

    def labels(self, rows: np.ndarray, w: np.ndarray, noise_var: float, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(rows.shape[:2])
        if noise_var != 1.0:
            noise *= np.sqrt(noise_var)
        return self.predict(rows, w) + noise

    def make_pool(self, rows: np.ndarray, y: np.ndarray, origin: int) -> Pool:
        return Pool({self.row_key: rows, "y": y}, origin, replicas=self.setting.trials)

    def item_rows(self, pool: Pool) -> np.ndarray:
        """The ``rows`` argument of :meth:`predict` for the items of ``pool``."""
        return pool[self.row_key]

    @abstractmethod
    def statistics(self, pool: Pool, weights: np.ndarray | None = None) -> fitting.Statistics:
        """The least-squares statistics of ``pool`` (``weights`` as in :func:`fitting.budget_weights`)."""

    @abstractmethod
    def theory_design(self) -> FixedDesign | None:
        """What :func:`theory.theory_loss` needs to know of the real rows (None: their distribution suffices)."""


class FixedDesignData(RealData):
    """``design=fixed``: one design matrix per data seed; items are row indices and labels."""

    row_key = "row"

    @staticmethod
    def memory_bytes(setting: Setting, items: int) -> int:
        return items * 8 * setting.trials + 8 * setting.n_samples * setting.dim

    @property
    def _design_shape(self) -> tuple[int, ...]:
        return (self.setting.n_samples,)

    @property
    def _real_rows(self) -> np.ndarray:
        s = self.setting
        return np.broadcast_to(np.arange(s.n_samples, dtype=np.int32)[:, None], (s.n_samples, s.trials))

    @cached_property
    def gram_eigen(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues and eigenvectors of the fixed design's X^T X / T."""
        x = self.design
        return np.linalg.eigh(x.T @ x / len(x))

    @cached_property
    def outer_products(self) -> np.ndarray:
        """x_i x_i^T of every fixed-design row, upper triangles packed: shape (T, d(d+1)/2)."""
        upper = np.triu_indices(self.setting.dim)
        return self.design[:, upper[0]] * self.design[:, upper[1]]

    def rows_for(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Rows 0, 1, ..., T-1, 0, 1, ... (n mod T), the same in every trial."""
        return np.broadcast_to((np.arange(n) % self.setting.n_samples).astype(np.int32)[:, None], (n, self.setting.trials))

    def predict(self, rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        table = self.design @ w.T  # (T, trials): each row's prediction in each trial
        if rows.strides[1] == 0 or np.array_equal(rows, np.broadcast_to(rows[:, :1], rows.shape)):
            return table[rows[:, 0]]  # the same rows in every trial (the loop's own samples)
        return np.take_along_axis(table, rows.astype(np.intp), axis=0)

    def statistics(self, pool: Pool, weights: np.ndarray | None = None) -> fitting.Statistics:
        return fitting.fixed_design_statistics(pool, self.design, lambda: self.outer_products, weights)

    def theory_design(self) -> FixedDesign:
        eigenvalues, eigenvectors = self.gram_eigen
        w_star = self.setting.power_signal if self.setting.spectrum == "power" else None
        return FixedDesign(self.setting, eigenvalues, eigenvectors, w_star)


class FreshDesignData(RealData):
    """``design=fresh``: every item carries its own row, drawn anew."""

    row_key = "x"

    @staticmethod
    def memory_bytes(setting: Setting, items: int) -> int:
        return items * 8 * setting.trials * (1 + setting.dim)

    @property
    def _design_shape(self) -> tuple[int, ...]:
        return (self.setting.n_samples, self.setting.trials)

    @property
    def _real_rows(self) -> np.ndarray:
        return self.design

    def rows_for(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n new rows per trial."""
        return gaussian_rows(self.setting, (n, self.setting.trials), rng)

    def predict(self, rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.einsum("ntd,td->nt", rows, w)

    def statistics(self, pool: Pool, weights: np.ndarray | None = None) -> fitting.Statistics:
        return fitting.fresh_design_statistics(pool, weights)

    def theory_design(self) -> None:
        return None


#: The design kinds by their config name (``design``): the only list of them.
KINDS: dict[Design, type[RealData]] = {"fixed": FixedDesignData, "fresh": FreshDesignData}


def kind(setting: Setting) -> type[RealData]:
    """The :class:`RealData` kind of ``setting``'s design (the config's type admits no other name)."""
    return KINDS[setting.design]


def real_data(setting: Setting, seed: int) -> RealData:
    """The real data of one data seed, of the kind its design names."""
    return kind(setting)(setting, seed)
