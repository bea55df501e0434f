"""From verdict and findings to remedies the user can paste: `dlrun <your overrides> <remedy's>`.

Each finding maps to the lecture notes' remedies, ordered by expected value. A remedy
is offered only when every override it needs exists in the shipped configs (a group
option with its YAML file, or a key of the composed config), so every command runs.
No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dlrun import overrides as ov
from dlrun.schema.options import option_values

# groups whose option replaces the whole subtree (a user's `model.hidden=...` does not
# survive `model=cnn`); `reg` is a list that remedies extend instead
GROUPS = ("model", "data", "loss", "optim", "sched", "reg", "trainer", "diagnose", "experiment")
ADAPTIVE = ("adam", "adamw", "nadam", "rmsprop", "adagrad", "adadelta")
RELU_LIKE = ("relu", "leaky_relu", "elu", "selu", "gelu")


@dataclass
class Context:
    """What the remedies need to know about the run, extracted from its config."""

    overrides: list[str]
    model: str
    input_rank: int  # 1 tabular, 2 sequence (T, F), 3 image (C, H, W)
    optim: str  # torch class name, lower case (sgd, adam, ...)
    lr: float
    epochs: int
    batch_size: int | None
    seed: int = 0
    hidden: list[int] | int | None = None
    activation: str | None = None
    batchnorm: bool | None = None
    momentum: float | None = None
    n_train: int | None = None
    reg: list[str] = field(default_factory=list)
    test_shift: str | None = None
    escape_saddle: bool = False
    keys: set[str] = field(default_factory=set)
    options: dict[str, set[str]] = field(default_factory=dict)
    pinned: dict = field(default_factory=dict)  # what an experiment preset sets, by group
    conf_dir: Path | None = None


def _num(x: float) -> str:
    """3 significant digits, exponents without padding: 0.01, 3e-05 -> 3e-5, 1e+05 -> 1e5."""
    text = f"{x:.3g}"
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if e else text


def _list(values: Iterable) -> str:
    return ov.format_value(list(values))


def merge(user: list[str], remedy: list[str]) -> list[str]:
    """The user's overrides with the remedy's applied: same key replaced, switched groups
    reset, `reg` extended; a remedy is a fresh run, never a resume."""
    return ov.merge(user, remedy, drop=("trainer.resume",))


def _same_kind(a, b) -> bool:
    """Could a value like `a` stand where the option has `b` (list for list, number for number)?"""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or type(a) is type(b)


def _leaves(node: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def command(user: list[str], remedy: list[str]) -> str:
    return ov.command(merge(user, remedy))


class _Catalog:
    """Builds candidate remedies for one run; drops those that need a missing option or key."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.items: list[tuple[str, list[str]]] = []

    def has(self, group: str, option: str) -> bool:
        return option in self.ctx.options.get(group, set())

    def exists(self, changes: list[str]) -> bool:
        parsed = ov.parse_all(changes)
        switched = [o.key for o in parsed if o.is_group]
        for o in parsed:
            if o.is_group:
                if not all(self.has(o.key, name) for name in o.options()):
                    return False
            elif not any(o.under(g) for g in switched) and o.key not in self.ctx.keys:
                return False
        return True

    def add(self, action: str, overrides: list[str]) -> None:
        overrides = self.unpin(overrides)
        if overrides and self.exists(overrides) and all(overrides != o for _, o in self.items):
            self.items.append((action, overrides))

    def unpin(self, overrides: list[str]) -> list[str] | None:
        """A group switch under an experiment preset that sets keys of that group: give those
        keys the new option's own values (as Hydra composes it), or drop the remedy if it lacks them."""
        out = list(overrides)
        for o in ov.parse_all(overrides):
            group, option = o.key, o.value
            if group == "reg" or group not in self.ctx.pinned or self.ctx.conf_dir is None:
                continue
            values = option_values(self.ctx.conf_dir, group, option)
            if values is None:
                return None
            own = _leaves(values)
            for key, pinned in _leaves(self.ctx.pinned[group]).items():
                if f"{group}.{key}" in ov.keys(out):
                    continue
                if key not in own or not _same_kind(pinned, own[key]):
                    return None  # the preset's value would not even compose with the new option
                out.append(ov.format(f"{group}.{key}", own[key]))
        return out

    def reg(self, *options: str) -> str:
        current = [r for r in self.ctx.reg if r not in options]
        return "reg=" + _list([*current, *options])

    # --- optimization ------------------------------------------------------------------
    def lower_lr(self, factor: float = 10) -> None:
        self.add(f"lower the learning rate {factor:g}x", [f"optim.lr={_num(self.ctx.lr / factor)}"])

    def adam(self) -> None:
        if self.ctx.optim not in ADAPTIVE:
            self.add("Adam: per-parameter step sizes plus momentum", ["optim=adam"])

    def momentum(self) -> None:
        c = self.ctx
        if c.optim == "sgd" and not c.momentum:
            if self.has("optim", "momentum"):
                self.add(
                    "momentum carries the update through flat regions and saddles "
                    "(10x lower lr: the same step size)",
                    ["optim=momentum", f"optim.lr={_num(c.lr / 10)}"],
                )

    def smaller_batch(self) -> None:
        b = self.ctx.batch_size
        if b is None or b > 16:
            smaller = 32 if b is None else max(8, b // 4)
            self.add(
                "smaller batches: noisier gradients move off critical points",
                [f"trainer.batch_size={smaller}"],
            )

    def relu(self) -> None:
        if self.ctx.activation is not None and self.ctx.activation not in RELU_LIKE:
            init = ["model.init=kaiming"] if "model.init" in self.ctx.keys else []
            self.add(
                "ReLU activations (with He init): gradients do not shrink through saturated units",
                ["model.activation=relu", *init],
            )

    def batchnorm(self) -> None:
        if self.ctx.batchnorm is False:
            self.add(
                "batch normalization: every layer sees standardized inputs",
                ["model.batchnorm=true"],
            )

    def gated_cell(self) -> None:
        if self.ctx.model == "rnn":
            self.add("a gated cell (GRU) keeps gradients alive over many steps", ["model=gru"])

    def grad_clip(self) -> None:
        self.add("clip the gradient norm", ["trainer.grad_clip=1.0"])

    def longer(self) -> None:
        self.add("train longer", [f"trainer.epochs={self.ctx.epochs * 3}"])

    def decay(self) -> None:
        if self.has("sched", "cosine"):
            self.add("decay the learning rate over the run", ["sched=cosine"])

    # --- model bias --------------------------------------------------------------------
    def architecture(self) -> None:
        c = self.ctx
        if c.input_rank == 3 and c.model in ("linear", "logistic", "mlp"):
            self.add("a CNN: built for images (local patterns, shared weights)", ["model=cnn"])
        if c.input_rank == 2 and c.model in ("linear", "logistic", "mlp"):
            self.add("a recurrent network (GRU): built for sequences", ["model=gru"])
        if c.model in ("linear", "logistic"):
            self.add("a more flexible model: an MLP with hidden layers", ["model=mlp"])

    def capacity(self) -> None:
        h = self.ctx.hidden
        if isinstance(h, list) and h:
            self.add("a wider network", [f"model.hidden={_list(2 * x for x in h)}"])
            self.add("a deeper network", [f"model.hidden={_list([*h, h[-1]])}"])
        elif isinstance(h, int):
            self.add("a wider network", [f"model.hidden={2 * h}"])
        if "model.hidden_size" in self.ctx.keys:
            self.add("a wider recurrent state", ["model.hidden_size=128"])

    # --- overfitting -------------------------------------------------------------------
    def more_data(self) -> None:
        if self.ctx.n_train is not None:
            self.add("more training data: all of it instead of a subsample", ["data.n_train=null"])

    def early_stopping(self, patience: int) -> None:
        if self.has("reg", "early_stopping"):
            self.add(
                "early stopping at the validation minimum",
                [self.reg("early_stopping"), f"reg.early_stopping.patience={patience}"],
            )

    def regularize(self) -> None:
        c = self.ctx
        if "model.dropout" in c.keys:
            self.add("dropout", [self.reg("dropout"), "reg.dropout.p=0.3"])
        self.add("L2 weight penalty", [self.reg("l2"), "reg.l2.strength=1e-3"])
        if c.input_rank in (2, 3):
            self.add("data augmentation", [self.reg("augment")])

    def fewer_params(self) -> None:
        h = self.ctx.hidden
        if isinstance(h, list) and h and max(h) >= 8:
            self.add(
                "fewer parameters: a narrower network",
                [f"model.hidden={_list(max(4, x // 4) for x in h)}"],
            )


def remedies(verdict: str, findings: list[dict], ctx: Context) -> list[dict]:
    """Ordered remedies, each `{"action", "command", "overrides"}`."""
    c = _Catalog(ctx)
    codes = [f["code"] for f in findings]
    found = set(codes)
    evidence = {f["code"]: f["evidence"] for f in findings}
    if verdict == "model_bias":
        c.architecture()
        c.capacity()
    elif verdict == "optimization":
        if "exploding_gradients" in found:
            if ctx.model in ("rnn", "lstm", "gru"):
                c.grad_clip()
            c.lower_lr(10)
            c.grad_clip()
            c.adam()
        if "vanishing_gradients" in found:
            c.batchnorm()
            c.relu()
            c.gated_cell()
            c.adam()
        if "dead_relus" in found:
            c.add("leaky ReLU: units keep a gradient below zero", ["model.activation=leaky_relu"])
            c.lower_lr(3)
        if "badly_scaled_inputs" in found:
            c.batchnorm()
            c.adam()
        if "lr_too_large" in found:
            c.lower_lr(10)
            c.adam()
            c.decay()
        if "not_converged" in found:
            crawling = evidence["not_converged"].get("step_ratio") is not None
            if crawling:  # the step is a tiny fraction of what the curvature allows
                c.add("a 10x larger learning rate", [f"optim.lr={_num(ctx.lr * 10)}"])
            c.longer()
            c.add("a larger learning rate", [f"optim.lr={_num(ctx.lr * 3)}"])
            c.adam()
        if "saddle_point" in found or "local_minimum" in found or "stalled" in found:
            c.momentum()
            c.adam()
            c.smaller_batch()
            if "local_minimum" in found:
                c.add("another random start", [f"trainer.seed={ctx.seed + 1}"])
            if "saddle_point" in found and not ctx.escape_saddle:
                c.add(
                    "measure the escape along the negative-curvature direction",
                    ["diagnose.escape_saddle=true"],
                )
        c.adam()
    elif verdict == "overfitting":
        c.more_data()
        ot = evidence.get("overtraining")
        if ot is not None:
            c.early_stopping(max(2, min(10, ctx.epochs // 10)))
        c.regularize()
        c.fewer_params()
        if ot is None:
            c.early_stopping(max(2, min(10, ctx.epochs // 10)))
    elif verdict == "mismatch":
        if ctx.test_shift == "rotate" and ctx.input_rank == 3:
            c.add(
                "train on rotated images too (augmentation that covers the shift)",
                [c.reg("augment"), "reg.augment.rotate=90"],
            )
        if ctx.test_shift == "noise" and ctx.input_rank != 3:
            c.add(
                "train on noisy inputs too (augmentation that covers the shift)",
                [c.reg("augment"), "reg.augment.noise=1.0"],
            )
        c.add("confirm: the same run tested on its own distribution", ["data.test_shift=null"])
    elif "overtraining" in found:  # good, but it went on past its best epoch
        c.early_stopping(max(2, min(10, ctx.epochs // 10)))
    if "no_history" in found:
        c.add("train for a few epochs", ["trainer.epochs=10"])
    return [
        {"action": action, "command": command(ctx.overrides, o), "overrides": o}
        for action, o in c.items
    ]
