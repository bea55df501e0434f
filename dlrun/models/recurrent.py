"""Recurrent networks: torch's RNN, LSTM and GRU, batch-first, with a linear readout.

Many-to-one (one label per sequence) reads the last hidden state (both directions'
final states when bidirectional) or the mean over steps; many-to-many (a label per
step, `per_step`, which the runner takes from the data) reads every step. Token ids
(`vocab_size`, from token datasets) are embedded into `hidden_size` features. For equal
sizes an LSTM has 4x and a GRU 3x the recurrent parameters of a plain RNN: 4 and 3
gated copies of the same input and hidden maps.
"""

from __future__ import annotations

from torch import nn

from dlrun.errors import UserError
from dlrun.models.layers import AsSequence, sequence_shape

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
READOUTS = ("last", "mean")


class Recurrent(nn.Module):
    outputs = "logits"

    def __init__(
        self,
        input_shape: tuple[int, ...],
        out_features: int,
        per_step: bool = False,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        readout: str = "last",
        vocab_size: int | None = None,
    ):
        super().__init__()
        if cell not in CELLS:
            raise UserError(f"model.cell={cell} is unknown; choose from: {', '.join(CELLS)}.")
        if readout not in READOUTS:
            raise UserError(
                f"model.readout={readout} is unknown; choose from: {', '.join(READOUTS)}."
            )
        _, features = sequence_shape(input_shape, cell)
        self.per_step, self.readout = per_step, readout
        self.causal = not bidirectional  # step t's output depends on steps <= t only
        self.incremental = self.causal  # greedy decoding may carry the state (start/advance)
        if vocab_size:
            self.inputs, features = nn.Embedding(vocab_size, hidden_size), hidden_size
        else:
            self.inputs = AsSequence(input_shape)
        # torch applies `dropout` between stacked layers only; the readout gets it too
        self.rnn = CELLS[cell](
            features,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), out_features)

    def forward(self, x):
        steps, state = self.rnn(self.inputs(x))
        if self.per_step:
            return self.head(self.dropout(steps))
        if self.readout == "mean":
            return self.head(self.dropout(steps.mean(dim=1)))
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        directions = 2 if self.rnn.bidirectional else 1
        last = hidden[-directions:].transpose(0, 1).flatten(1)  # the top layer, all directions
        return self.head(self.dropout(last))

    # greedy decoding of per-step token data, one step at a time (dlrun.train.generate)
    def start(self, prefix):
        """Read the prefix; the last step's scores and the state."""
        steps, state = self.rnn(self.inputs(prefix))
        return self.head(self.dropout(steps[:, -1:])), state

    def advance(self, tokens, state):
        """(N, 1) next tokens from `state`: their (N, 1, classes) scores and the new state."""
        steps, state = self.rnn(self.inputs(tokens), state)
        return self.head(self.dropout(steps)), state
