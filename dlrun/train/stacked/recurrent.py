"""RNN, LSTM and GRU of K jobs: the recurrence written out with batched matmuls.

torch's recurrent kernels have no `torch.vmap` rule ("Batching rule not implemented for
aten::gru.input"), so the stacked layer computes what nn.RNN / nn.LSTM / nn.GRU compute,
with the cell equations of torch's reference implementation (aten/native/RNN.cpp): the
input projection of every step in one `baddbmm`, then one `baddbmm` per step for the
hidden state. Its outputs have the layout of the torch layer it replaces (batch first,
h_n of shape (layers * directions, batch, hidden)), so `Recurrent.forward` reads them
unchanged. The arithmetic equals the fused kernels' up to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn

from dlrun.train.stacked.layers import StackedLayer, stacked_parameter


def _gru_cell(ih: torch.Tensor, hh: torch.Tensor, h: torch.Tensor, c):
    ir, iz, inew = ih.chunk(3, -1)
    hr, hz, hnew = hh.chunk(3, -1)
    reset = (hr + ir).sigmoid()
    update = (hz + iz).sigmoid()
    new = (inew + hnew * reset).tanh()
    return (h - new) * update + new, None


def _lstm_cell(ih: torch.Tensor, hh: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    i, f, g, o = (ih + hh).chunk(4, -1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def _tanh_cell(ih, hh, h, c):
    return (ih + hh).tanh(), None


def _relu_cell(ih, hh, h, c):
    return (ih + hh).relu(), None


CELLS = {"GRU": _gru_cell, "LSTM": _lstm_cell, "RNN_TANH": _tanh_cell, "RNN_RELU": _relu_cell}


class StackedRecurrent(StackedLayer):
    """K jobs' nn.RNN / nn.LSTM / nn.GRU (batch first, with biases, no projections)."""

    def __init__(self, layers: list[nn.RNNBase], dropout: torch.Tensor):
        super().__init__()
        first = layers[0]
        if not first.batch_first or not first.bias or first.proj_size:
            raise ValueError("stacked recurrent layers are batch first, with biases, without projections")
        self.mode, self.cell = first.mode, CELLS[first.mode]
        self.hidden_size, self.num_layers = first.hidden_size, first.num_layers
        self.bidirectional = first.bidirectional
        self.names = list(first._flat_weights_names)
        for name in self.names:
            self.register_parameter(name, stacked_parameter([getattr(layer, name) for layer in layers]))
        # torch applies dropout between stacked layers (training only); per job here
        self.register_buffer("dropout", dropout)
        self.drops = first.num_layers > 1 and bool((dropout > 0).any())

    def state_tensors(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self.names]

    def _direction(self, inputs: torch.Tensor, layer: int, reverse: bool, h, c):
        """One layer in one direction over (K, N, T, F) inputs: (K, N, T, H) outputs, final h, c."""
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        w_ih, w_hh, b_ih, b_hh = (getattr(self, f"{kind}{suffix}")
                                  for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        jobs, n, steps, _ = inputs.shape
        projected = torch.baddbmm(b_ih.unsqueeze(1), inputs.reshape(jobs, n * steps, -1),
                                  w_ih.transpose(1, 2)).view(jobs, n, steps, -1)
        # unbind, not projected[:, :, t]: the backward of a slice fills a zero tensor of the
        # whole projection at every step (86% of a GRU step's time when measured); unbind's stacks once
        per_step = projected.unbind(dim=2)
        outputs = [None] * steps
        for t in (reversed(range(steps)) if reverse else range(steps)):
            hh = torch.baddbmm(b_hh.unsqueeze(1), h, w_hh.transpose(1, 2))
            h, c = self.cell(per_step[t], hh, h, c)
            outputs[t] = h
        return torch.stack(outputs, dim=2), h, c

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.drops:
            return x
        p = self.dropout.view(-1, 1, 1, 1)
        keep = torch.rand_like(x) >= p
        return x * keep * torch.where(p < 1, 1 / (1 - p), torch.zeros_like(p))

    def forward(self, x: torch.Tensor, state=None):
        jobs = self.weight_ih_l0.shape[0]
        n = x.shape[0] // jobs
        directions = 2 if self.bidirectional else 1
        lstm = self.mode == "LSTM"
        if state is None:
            zeros = x.new_zeros(self.num_layers * directions, jobs, n, self.hidden_size)
            h0 = c0 = zeros.unbind(0)
        else:
            h0, c0 = state if lstm else (state, None)
            h0 = h0.view(-1, jobs, n, self.hidden_size).unbind(0)
            c0 = c0.view(-1, jobs, n, self.hidden_size).unbind(0) if lstm else None
        inputs = x.view(jobs, n, *x.shape[1:])
        finals_h, finals_c = [], []
        for layer in range(self.num_layers):
            if layer > 0:
                inputs = self._drop(inputs)
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                out, h, c = self._direction(inputs, layer, direction == 1, h0[index],
                                            c0[index] if lstm else None)
                outputs.append(out)
                finals_h.append(h)
                finals_c.append(c)
            inputs = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)
        output = inputs.reshape(jobs * n, *inputs.shape[2:])
        h_n = torch.stack(finals_h).view(-1, jobs * n, self.hidden_size)
        if lstm:
            return output, (h_n, torch.stack(finals_c).view(-1, jobs * n, self.hidden_size))
        return output, h_n
