"""A small causal transformer (GPT-style) over a codec's tokens, as a Lightning module.

The architecture is GPT-2's (Radford et al. 2019): learned token and position embeddings,
pre-LayerNorm blocks of causal multi-head self-attention and a 4x GELU MLP, a final
LayerNorm and a linear read-out. Inputs use ``vocab + 1`` ids (the codec's tokens, bytes or
BPE tokens, and a beginning-of-sequence id, ``vocab``); outputs are the ``vocab`` tokens. An
item is ``context`` tokens ``x``; the model reads ``[BOS, x_0 .. x_{L-2}]`` and predicts ``x``,
so every token of an item is scored exactly once.

Training minimises the (optionally weighted) mean per-token cross-entropy with AdamW and a
linear-warmup cosine learning-rate schedule (as in nanoGPT and Hoffmann et al. 2022).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from collapselab.toolkit.training import warmup_cosine


@dataclass(frozen=True)
class GPTConfig:
    """Model and optimiser settings (all taken from the task configuration)."""

    context: int
    vocab: int
    n_layer: int
    n_head: int
    d_model: int
    dropout: float = 0.0
    lr: float = 1e-2
    weight_decay: float = 0.0
    total_steps: int = 1
    warmup_fraction: float = 0.05


KVCache = list[tuple[torch.Tensor, torch.Tensor]]


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        d = config.d_model
        self.n_head = config.n_head
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.dropout = nn.Dropout(config.dropout)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        shape = (b, t, self.n_head, d // self.n_head)
        return q.view(shape).transpose(1, 2), k.view(shape).transpose(1, 2), v.view(shape).transpose(1, 2)

    def _finish(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = attended.shape
        x = x + self.dropout(self.proj(attended.transpose(1, 2).reshape(b, t, -1)))
        return x + self.dropout(self.mlp(self.ln2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.ln1(x))
        p = self.dropout.p if self.training else 0.0
        return self._finish(x, F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True))

    def step(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor], position: int) -> torch.Tensor:
        """One new position per sequence: write its key/value at ``position`` and attend to 0..position."""
        q, k, v = self._heads(self.ln1(x))
        keys, values = cache
        keys[:, :, position] = k[:, :, 0]
        values[:, :, position] = v[:, :, 0]
        end = position + 1
        return self._finish(x, F.scaled_dot_product_attention(q, keys[:, :, :end], values[:, :, :end]))


class GPT(pl.LightningModule):
    """GPT-style language model; ``forward`` gives next-token logits for every position."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.token = nn.Embedding(config.vocab + 1, config.d_model)
        self.position = nn.Embedding(config.context, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        """GPT-2 initialisation: N(0, 0.02) weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    # ----------------------------------------------------------------- forward
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, time, vocab)`` for input ids ``(batch, time)``, time <= context."""
        positions = torch.arange(inputs.shape[1], device=inputs.device)
        x = self.token(inputs) + self.position(positions)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))

    def new_cache(self, batch: int) -> KVCache:
        """Empty key/value buffers for ``batch`` sequences of up to ``context`` positions."""
        c = self.config
        shape = (batch, c.n_head, c.context, c.d_model // c.n_head)
        p = self.head.weight
        return [(p.new_zeros(shape), p.new_zeros(shape)) for _ in self.blocks]

    def step(self, tokens: torch.Tensor, cache: KVCache, position: int) -> torch.Tensor:
        """Next-token logits ``(batch, vocab)`` after feeding ``tokens`` ``(batch,)`` at ``position``."""
        x = self.token(tokens[:, None]) + self.position.weight[position]
        for block, layer_cache in zip(self.blocks, cache):
            x = cast(Block, block).step(x, layer_cache, position)
        return self.head(self.ln(x))[:, 0]

    @property
    def bos(self) -> int:
        """The beginning-of-sequence input id."""
        return self.config.vocab

    def token_nll(self, items: torch.Tensor) -> torch.Tensor:
        """Per-token negative log-likelihood in nats, ``(batch, context)``, of items ``(batch, context)``."""
        targets = items.long()
        bos = torch.full_like(targets[:, :1], self.bos)
        logits = self(torch.cat([bos, targets[:, :-1]], dim=1))
        return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")

    # ---------------------------------------------------------------- training
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        items, weights = batch
        per_item = self.token_nll(items).mean(dim=1)
        return (per_item * weights).mean()

    def configure_optimizers(self) -> Any:
        c = self.config
        decay = [p for p in self.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": c.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=c.lr,
            betas=(0.9, 0.99),
        )
        return warmup_cosine(optimizer, c.total_steps, round(c.warmup_fraction * c.total_steps), floor=0.1)
