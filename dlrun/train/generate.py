"""Autoregressive use of a trained next-token model: greedy decoding and sampling.

`greedy_decode` fills in the target steps of token sequences one at a time, feeding
each prediction back as the next input; it reads the device once per call (where the
targets start), never per step. `samples` shows what a token model does at the end of a run:
a generated continuation for text, decoded examples for seq2seq tasks.
"""

from __future__ import annotations

import torch
from torch import nn

from dlrun.train.losses import IGNORE


@torch.inference_mode()
def greedy_decode(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Predicted tokens (N, T): steps whose target is IGNORE keep the given input after them;
    at every other step the model's argmax becomes the next input (not the true token).

    Each step feeds only the inputs up to that step (a causal model reads no further), so
    no model can read the answer; a model that looks ahead (not causal) finds nothing there
    and fails here.
    """
    target = y != IGNORE
    tokens = x.clone()  # each step's input is written (prediction or given) before it is read
    predicted = torch.full_like(y, IGNORE)
    # steps before the first target need no model call; finding it is this function's one
    # host read (once per call, not per step)
    first = int(target.any(dim=0).int().argmax()) if target.any() else x.shape[1]
    # `incremental` models (the RNNs, the causal transformer) carry a state from step to step
    # through `start`/`advance`; others are called on the prefix up to each step
    incremental = getattr(model, "incremental", False)
    if incremental and first < x.shape[1]:
        scores, state = model.start(tokens[:, : first + 1])
    for t in range(first, x.shape[1]):
        if not incremental:
            scores = model(tokens[:, : t + 1])
        step = scores[:, -1].argmax(dim=-1)
        predicted[:, t] = step
        if t + 1 < x.shape[1]:
            tokens[:, t + 1] = torch.where(target[:, t], step, x[:, t + 1])
            if incremental:
                scores, state = model.advance(tokens[:, t + 1 : t + 2], state)
    return predicted


def exact_matches(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """How many sequences have every target step right under greedy decoding (a device tensor)."""
    predicted = greedy_decode(model, x, y)
    return ((predicted == y) | (y == IGNORE)).all(dim=1).sum()


@torch.inference_mode()
def sample_text(
    model: nn.Module,
    prompt: torch.Tensor,
    length: int,
    window: int,
    temperature: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Continue `prompt` (token ids) by `length` tokens drawn from the model's softmax / temperature,
    reading at most the last `window` tokens (the length the model was trained on)."""
    tokens = prompt.clone()
    for _ in range(length):
        context = tokens[-window:].unsqueeze(0)
        scores = model(context)[0, -1].float() / max(temperature, 1e-6)
        probs = scores.softmax(dim=-1)
        following = torch.multinomial(probs.cpu(), 1, generator=generator).to(tokens.device)
        tokens = torch.cat([tokens, following])
    return tokens


def samples(model: nn.Module, data, seed: int = 0, examples: int = 5) -> dict[str, str]:
    """What a token model produces after training; {} for other data."""
    vocab = getattr(data, "vocab", None)
    if not vocab:
        return {}
    was_training = model.training
    model.eval()
    if data.task == "seq2seq":
        x, y = data.x_test[:examples], data.y_test[:examples]
        predicted = greedy_decode(model, x, y)
        lines = []
        for xs, ys, ps in zip(x.tolist(), y.tolist(), predicted.tolist()):
            start = next(i for i, v in enumerate(ys) if v != IGNORE)
            truth = data.decode(ys[start:])
            guess = data.decode(ps[start:])
            lines.append(
                f"{data.decode(xs[: start + 1])}{guess}   "
                f"{'right' if guess == truth else 'wrong, expected ' + truth}"
            )
        model.train(was_training)
        return {"samples/test": "\n".join(lines)}
    if data.sample_chars <= 0:
        model.train(was_training)
        return {}
    window = data.x_train.shape[1]
    prompt = data.x_val[0, : max(1, window // 4)]
    generator = torch.Generator().manual_seed(seed)
    tokens = sample_text(model, prompt, data.sample_chars, window, data.temperature, generator)
    model.train(was_training)
    return {"samples/text": data.decode(tokens.tolist())}
