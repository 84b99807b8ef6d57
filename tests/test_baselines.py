"""Each published baseline's defining property, on the smoke presets.

The curation hooks are called as the loop calls them: a context over the task's real pool and
hooks bound to the task, on samples made of real conformers with a known amount of noise, so
the right answer is known.
"""

from __future__ import annotations

import numpy as np
import pytest

from collapselab import Pool
from collapselab.baselines.density_ratio_filter import log_density_ratio
from collapselab.contracts import registry
from collapselab.contracts.strategy import Budget, StrategyContext, TaskHooks
from collapselab.tasks.conformer_diffusion import chemistry

CONFORMERS = "conformer_diffusion"


@pytest.fixture(scope="module")
def conformers():
    return registry.make_task(CONFORMERS, "smoke")


def _context(task, samples: Pool) -> StrategyContext:
    rng = np.random.default_rng(0)
    hooks = TaskHooks(verify=lambda pool, q: task.verify(pool, q, rng), correct=lambda pool, s: task.correct(pool, s, rng),
                      reward=task.reward, features=task.features)
    real = task.real_pool()
    return StrategyContext(1, real, (samples,), task.describe(), np.random.default_rng(1),
                           Budget(len(real), len(real), task.step_budget), hooks)


def _noisy(task, scales: list[float], seed: int = 0) -> tuple[Pool, np.ndarray]:
    """Copies of the real conformers with Gaussian noise of each scale (A), and each item's scale."""
    real, rng = task.real_pool(), np.random.default_rng(seed)
    pos, mols, scale = [], [], []
    for s in scales:
        pos.append(np.asarray(real["pos"]) + rng.normal(0.0, s, real["pos"].shape).astype(np.float32))
        mols.append(np.asarray(real["mol"]))
        scale += [s] * len(real)
    return Pool({"mol": np.concatenate(mols), "pos": np.concatenate(pos)}, origin=1), np.array(scale)


def _bond_error(task, pool: Pool) -> float:
    errors = []
    for m, pos in task._items(pool):
        geometry = task._reference_geometry(m)
        errors.append(chemistry.deviations(geometry, pos)[geometry.kind == 0].mean())
    return float(np.mean(errors))


def test_verifier_rejection_rate_moves_with_its_quality_and_kept_samples_pass(conformers):
    samples, _ = _noisy(conformers, [0.1])
    accepted = [float((conformers.verify(samples, q, None) >= 0).mean()) for q in (1.0, 0.5, 0.0)]
    assert accepted[0] < accepted[1] < accepted[2]
    strategy = registry.make_strategy("verifier-filter[quality=0.5]")
    kept = strategy.curate(_context(conformers, samples), samples)
    assert len(kept) < len(samples) and (conformers.verify(kept, 0.5, None) >= 0).all()


def test_self_correction_lowers_the_bond_length_error(conformers):
    samples, _ = _noisy(conformers, [0.1])
    corrected = registry.make_strategy("self-correct[gamma=1.0]").curate(_context(conformers, samples), samples)
    half = registry.make_strategy("self-correct[gamma=0.1]").curate(_context(conformers, samples), samples)
    assert _bond_error(conformers, corrected) < _bond_error(conformers, half) < _bond_error(conformers, samples)
    untouched = registry.make_strategy("self-correct[gamma=0.0]").curate(_context(conformers, samples), samples)
    assert untouched.equals(samples)


def test_reward_curation_keeps_one_of_k_and_raises_the_mean_reward(conformers):
    samples, _ = _noisy(conformers, [0.02, 0.3, 0.02, 0.3])
    rng = np.random.default_rng(2)
    samples = samples.subset(rng.permutation(len(samples)))  # groups of 4 mix both noise levels
    kept = registry.make_strategy("reward-curate[k=4]").curate(_context(conformers, samples), samples)
    assert len(kept) == len(samples) // 4
    assert conformers.reward(kept).mean() > conformers.reward(samples).mean() + 0.1


def test_density_ratio_filter_keeps_samples_its_discriminator_finds_more_real(conformers):
    samples, scale = _noisy(conformers, [0.02, 0.3])
    ctx = _context(conformers, samples)
    kept = registry.make_strategy("density-ratio-filter").curate(ctx, samples)
    ratio = log_density_ratio(conformers.features(conformers.real_pool()), conformers.features(samples),
                              np.random.default_rng(0))
    key = np.arange(1, 1 << 12, dtype=np.uint64) * np.uint64(2654435761)
    index = {d: i for i, d in enumerate(samples.row_digests(key))}
    chosen = np.array([index[d] for d in kept.row_digests(key)])
    assert ratio[chosen].mean() > ratio.mean() + 0.5  # the kept samples look more real to the discriminator
    assert _bond_error(conformers, kept) < _bond_error(conformers, samples)
    weighted = registry.make_strategy("density-ratio-filter[mode=weight]").curate(ctx, samples)
    assert weighted.weight is not None
    assert weighted.weight[scale == 0.02].mean() > weighted.weight[scale == 0.3].mean()


def test_text_verifier_quality_decides_whether_noise_passes():
    text = registry.make_task("text_lm", "smoke")
    noise = Pool({"tokens": np.random.default_rng(0).integers(0, 256, (40, text.config["context"])).astype(np.uint8)},
                 origin=1)
    real = text.real_pool()
    # the untrained verifier cannot tell: it accepts noise about as often as real text (95%)
    assert (text.verify(noise, 0.0, None) >= 0).mean() > 0.9
    assert (text.verify(noise, 1.0, None) >= 0).mean() < 0.1  # the trained one rejects random bytes
    assert (text.verify(real, 1.0, None) >= 0).mean() > 0.5


def test_strategies_refuse_tasks_without_the_hooks_they_need():
    regression = registry.make_task("linear_regression", "smoke").describe()
    text = registry.make_task("text_lm", "smoke").describe()
    with pytest.raises(Exception, match=r"needs the task hook\(s\) \['correct'\]"):
        registry.make_strategy("self-correct").check_task(text)
    assert "correct" not in registry.make_task("mnist_vae", "smoke").describe().hooks
    registry.make_strategy("verifier-filter").check_task(regression)  # offered: no refusal
