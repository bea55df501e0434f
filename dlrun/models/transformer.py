"""A transformer encoder: input projection, positions, self-attention blocks, a readout.

Each block is torch's TransformerEncoderLayer (pre-norm: x + attention(LayerNorm(x)),
then x + feed-forward(LayerNorm(x))), so residual connections and layer norm are in
every block. `causal` masks attention to earlier steps, which next-step prediction
needs. Many-to-one reads the mean over steps (or the last step); many-to-many
(`per_step`, from the data) reads every step. Token ids (`vocab_size`) are embedded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlrun.errors import UserError
from dlrun.models.layers import AsSequence, sequence_shape

READOUTS = ("mean", "last")


class SinusoidalPositions(nn.Module):
    """Fixed sin/cos positions (Vaswani et al. 2017), added to the inputs; no parameters."""

    def __init__(self, steps: int, d_model: int):
        super().__init__()
        position = torch.arange(steps).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = torch.zeros(steps, d_model)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
        self.register_buffer("table", table, persistent=False)

    def forward(self, x, offset: int = 0):
        return x + self.table[offset : offset + x.shape[1]]


class LearnedPositions(nn.Module):
    """One trained vector per step."""

    def __init__(self, steps: int, d_model: int):
        super().__init__()
        self.table = nn.Parameter(torch.randn(steps, d_model) * 0.02)

    def forward(self, x, offset: int = 0):
        return x + self.table[offset : offset + x.shape[1]]


class NoPositions(nn.Module):
    def __init__(self, steps: int, d_model: int):
        super().__init__()

    def forward(self, x, offset: int = 0):
        return x


POSITIONAL = {
    "sinusoidal": SinusoidalPositions,
    "learned": LearnedPositions,
    "none": NoPositions,
}


class Transformer(nn.Module):
    outputs = "logits"

    def __init__(
        self,
        input_shape: tuple[int, ...],
        out_features: int,
        per_step: bool = False,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        feedforward: int = 256,
        dropout: float = 0.0,
        positional: str = "sinusoidal",
        causal: bool = False,
        readout: str = "mean",
        vocab_size: int | None = None,
    ):
        super().__init__()
        if d_model % heads:
            fits = next(h for h in range(heads, 0, -1) if d_model % h == 0)
            raise UserError(
                f"model.d_model={d_model} must be a multiple of model.heads={heads}; "
                f"use model.heads={fits} or model.d_model={heads * max(1, d_model // heads)}."
            )
        if positional not in POSITIONAL:
            raise UserError(
                f"model.positional={positional} is unknown; choose from: {', '.join(POSITIONAL)}."
            )
        if readout not in READOUTS:
            raise UserError(
                f"model.readout={readout} is unknown; choose from: {', '.join(READOUTS)}."
            )
        steps, features = sequence_shape(input_shape, "transformer")
        self.per_step, self.readout, self.causal = per_step, readout, causal
        self.sequence = nn.Identity() if vocab_size else AsSequence(input_shape)
        self.embed = (
            nn.Embedding(vocab_size, d_model) if vocab_size else nn.Linear(features, d_model)
        )
        self.position = POSITIONAL[positional](steps, d_model)
        block = nn.TransformerEncoderLayer(
            d_model,
            heads,
            feedforward,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            block, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.head = nn.Linear(d_model, out_features)

    def forward(self, x):
        h = self._inputs(x)
        mask = None
        if self.causal:
            mask = nn.Transformer.generate_square_subsequent_mask(
                h.shape[1], device=h.device, dtype=h.dtype
            )
        h = self.encoder(h, mask=mask, is_causal=self.causal)
        if self.per_step:
            return self.head(h)
        return self.head(h[:, -1] if self.readout == "last" else h.mean(dim=1))

    def _inputs(self, x, offset: int = 0):
        """Embedded steps plus their positions, the first being step `offset`."""
        return self.position(self.embed(self.sequence(x)), offset)

    # greedy decoding one step at a time (dlrun.train.generate), for a causal per-step model:
    # each block's keys and values of earlier steps are kept, so a step costs one position's
    # work instead of the whole prefix's. Inference only: the blocks' dropout is left out.
    @property
    def incremental(self) -> bool:
        return self.causal and self.per_step

    def start(self, prefix):
        """Read the prefix; the last step's scores and the cache (each block's keys, values)."""
        return self._blocks(self._inputs(prefix), [])

    def advance(self, tokens, cache):
        """(N, 1) next tokens: their (N, 1, classes) scores and the cache grown by one step."""
        return self._blocks(self._inputs(tokens, offset=cache[0][0].shape[2]), cache)

    def _blocks(self, h, cache):
        """Each pre-norm block as TransformerEncoderLayer computes it, attending from `h`'s
        steps to the cached steps and to `h`'s own (causally)."""
        grown = []
        for i, block in enumerate(self.encoder.layers):
            attention = block.self_attn
            heads = attention.num_heads
            q, k, v = (
                t.unflatten(-1, (heads, -1)).transpose(1, 2)  # (N, heads, steps, d_head)
                for t in F.linear(block.norm1(h), attention.in_proj_weight,
                                  attention.in_proj_bias).chunk(3, dim=-1)
            )
            if cache:
                k, v = torch.cat([cache[i][0], k], dim=2), torch.cat([cache[i][1], v], dim=2)
            # one new step sees every cached one; a prefix read at once is masked causally
            mixed = F.scaled_dot_product_attention(q, k, v, is_causal=q.shape[2] > 1)
            h = h + attention.out_proj(mixed.transpose(1, 2).flatten(2))
            h = h + block.linear2(block.activation(block.linear1(block.norm2(h))))
            grown.append((k, v))
        return self.head(self.encoder.norm(h[:, -1:])), grown
