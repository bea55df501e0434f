"""An RNN encoder-decoder (Sutskever et al. 2014) for the sequence-to-sequence datasets.

The encoder reads the source tokens; its final state starts the decoder, which reads
"=" and the target so far and predicts the next target token. Teacher forcing in
training, greedy decoding at evaluation (both through the same forward: the decoder
is causal). The steps of the source get zero scores: their targets are -100 and count
in no loss or metric.
"""

from __future__ import annotations

import torch
from torch import nn

from dlrun.errors import UserError
from dlrun.models.recurrent import CELLS


class Seq2Seq(nn.Module):
    outputs = "logits"
    causal = True  # a target step sees the whole source and the target before it
    incremental = True  # greedy decoding carries the decoder's state (start/advance)

    def __init__(
        self,
        input_shape: tuple[int, ...],
        out_features: int,
        vocab_size: int | None = None,
        source_length: int | None = None,
        cell: str = "gru",
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        if vocab_size is None or source_length is None:
            raise UserError(
                "model=seq2seq needs a sequence-to-sequence dataset; use data=copy, reverse, sort "
                "or add, or a sequence model (model=gru, lstm, rnn, transformer) for this data."
            )
        if cell not in CELLS:
            raise UserError(f"model.cell={cell} is unknown; choose from: {', '.join(CELLS)}.")
        self.source_length = source_length
        between = dropout if num_layers > 1 else 0.0
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.encoder = CELLS[cell](
            hidden_size, hidden_size, num_layers, batch_first=True, dropout=between
        )
        self.decoder = CELLS[cell](
            hidden_size, hidden_size, num_layers, batch_first=True, dropout=between
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, out_features)

    def forward(self, x):
        embedded = self.embed(x)
        source, target = embedded[:, : self.source_length], embedded[:, self.source_length :]
        _, state = self.encoder(source)
        steps, _ = self.decoder(target, state)
        scores = self.head(self.dropout(steps))
        blank = scores.new_zeros(len(x), self.source_length, scores.shape[-1])
        return torch.cat([blank, scores], dim=1)

    # greedy decoding, one step at a time (dlrun.train.generate): the source is encoded once
    def start(self, prefix):
        """Encode the source, read the target prefix; the last step's scores and the state."""
        embedded = self.embed(prefix)
        _, state = self.encoder(embedded[:, : self.source_length])
        steps, state = self.decoder(embedded[:, self.source_length :], state)
        return self.head(self.dropout(steps[:, -1:])), state

    def advance(self, tokens, state):
        """(N, 1) next tokens from `state`: their (N, 1, classes) scores and the new state."""
        steps, state = self.decoder(self.embed(tokens), state)
        return self.head(self.dropout(steps)), state
