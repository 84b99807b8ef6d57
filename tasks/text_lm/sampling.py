"""Ancestral sampling from a token model, with and without a key/value cache.

Both samplers draw token ``t`` of every sequence by inverting the cumulative distribution
of ``softmax(logits / temperature)`` at a uniform number ``u[:, t]`` supplied by the caller
(from the run's NumPy stream), so a seed fixes the tokens and the two samplers can be
compared token for token. The cached sampler feeds one position per step and keeps every
layer's keys and values (the standard incremental decoding of transformers, Vaswani et al.
2017; Pope et al. 2023); the uncached one recomputes the whole prefix at every step.
"""

from __future__ import annotations

import numpy as np
import torch

from collapselab.tasks.text_lm.model import GPT


def draw(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float) -> torch.Tensor:
    """Inverse-CDF draw of one token per row of ``logits`` ``(batch, vocab)`` at ``uniforms`` ``(batch,)``."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    cdf = probs.cumsum(dim=-1)
    index = torch.searchsorted(cdf, (uniforms * cdf[:, -1])[:, None], right=True)[:, 0]
    return index.clamp_(max=probs.shape[-1] - 1)


@torch.no_grad()
def sample_cached(model: GPT, uniforms: np.ndarray, temperature: float, device: torch.device) -> np.ndarray:
    """Token ids ``(batch, length)`` (int64) drawn with a key/value cache; ``uniforms`` has that shape."""
    u = torch.as_tensor(uniforms, dtype=torch.float64, device=device)
    batch, length = u.shape
    cache = model.new_cache(batch)
    token = torch.full((batch,), model.bos, dtype=torch.long, device=device)
    out = torch.empty((batch, length), dtype=torch.long, device=device)
    for t in range(length):
        token = draw(model.step(token, cache, t), u[:, t], temperature)
        out[:, t] = token
    return out.cpu().numpy()


@torch.no_grad()
def sample_uncached(model: GPT, uniforms: np.ndarray, temperature: float, device: torch.device) -> np.ndarray:
    """The same draws as :func:`sample_cached`, recomputing the full prefix at every step (reference)."""
    u = torch.as_tensor(uniforms, dtype=torch.float64, device=device)
    batch, length = u.shape
    seq = torch.full((batch, 1), model.bos, dtype=torch.long, device=device)
    for t in range(length):
        token = draw(model(seq)[:, -1], u[:, t], temperature)
        seq = torch.cat([seq, token[:, None]], dim=1)
    return seq[:, 1:].cpu().numpy()


def sample_tokens(
    model: GPT,
    n: int,
    length: int,
    rng: np.random.Generator,
    temperature: float,
    device: torch.device,
    batch_size: int,
    cached: bool = True,
) -> np.ndarray:
    """``n`` independent token sequences of ``length`` (int64) from ``model``, in batches of ``batch_size``."""
    uniforms = rng.random((n, length))
    sampler = sample_cached if cached else sample_uncached
    model = model.to(device).eval()
    parts = [sampler(model, uniforms[i : i + batch_size], temperature, device) for i in range(0, n, batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, length), dtype=np.int64)
