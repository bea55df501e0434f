"""The remedies the lecture notes offer, as overrides of a run: `dlrun <yours> <the remedy's>`.

`Catalog` knows what each remedy changes for this run (its `Context`: the config's values,
keys and options) and keeps only remedies whose every override exists (a group option
with its YAML file, or a key of the composed config), so every command runs. Which
finding calls for which remedy is the table in `dlrun.diagnose.remedies`. No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dlrun import overrides as ov
from dlrun.diagnose.context import ADAPTIVE, GROUPS, RELU_LIKE, Context
from dlrun.schema.options import option_values


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


def command(user: list[str], remedy: list[str], flags: list[str] = ()) -> str:
    """The remedy as a command line: the flags that chose the run's configs (`-cd DIR`), then
    the user's overrides with the remedy's applied."""
    return ov.command(merge(user, remedy), flags)


@dataclass
class Candidate:
    action: str
    overrides: list[str]
    reaches: float | None = None  # the branch's loss the evidence says it can reach at best
    large_above: float | None = None  # that loss's bar, to say whether it would still be large


class Catalog:
    """Builds candidate remedies for one run; drops those that need a missing option or key,
    and those that would change nothing (a width doubled from 0, a value already set)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.items: list[Candidate] = []

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

    def add(self, action: str, overrides: list[str], reaches: float | None = None,
            large_above: float | None = None) -> None:
        overrides = self.unpin(overrides)
        if (overrides and self.exists(overrides) and self.changes(overrides)
                and all(overrides != c.overrides for c in self.items)):
            self.items.append(Candidate(action, overrides, reaches, large_above))

    def changes(self, overrides: list[str]) -> bool:
        """Does any override set something other than what the run already had?"""
        for override in ov.parse_all(overrides):
            key, value = override.key, override.value
            if key == "reg":
                if sorted(value if isinstance(value, list) else [value]) != sorted(self.ctx.reg):
                    return True
            elif key in GROUPS:
                if self.ctx.choices.get(key) != value:
                    return True
            elif key not in self.ctx.values or self.ctx.values[key] != value:
                return True
        return False

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
        elif self.ctx.model == "seq2seq" and self.ctx.values.get("model.cell") == "rnn":
            self.add("a gated cell (GRU) keeps gradients alive over many steps", ["model.cell=gru"])

    def grad_clip(self) -> None:
        self.add("clip the gradient norm", ["trainer.grad_clip=1.0"])

    def longer(self) -> None:
        self.add("train longer", [f"trainer.epochs={self.ctx.epochs * 3}"])

    def decay(self) -> None:
        if self.has("sched", "cosine"):
            self.add("decay the learning rate over the run", ["sched=cosine"])

    # --- model bias --------------------------------------------------------------------
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


    def leaky_relu(self) -> None:
        self.add("leaky ReLU: units keep a gradient below zero", ["model.activation=leaky_relu"])

    def another_start(self) -> None:
        self.add("another random start", [f"trainer.seed={self.ctx.seed + 1}"])

    def measure_escape(self) -> None:
        if not self.ctx.escape_saddle:
            self.add("measure the escape along the negative-curvature direction",
                     ["diagnose.escape_saddle=true"])

    def augment_toward_shift(self) -> None:
        c = self.ctx
        if c.test_shift == "rotate" and c.input_rank == 3:
            self.add("train on rotated images too (augmentation that covers the shift)",
                     [self.reg("augment"), "reg.augment.rotate=90"])
        if c.test_shift == "noise":
            self.add("train on noisy inputs too (augmentation that covers the shift)",
                     [self.reg("augment"), "reg.augment.noise=1.0"])

    def shifted_training_data(self) -> None:
        """The notes' remedy for a mismatch: training data from the test's distribution."""
        if self.ctx.test_shift is not None:
            self.add("train on data from the test's distribution too: 30% of the training "
                     "examples drawn the way the test split is", ["data.train_shift_fraction=0.3"])

    def confirm_unshifted(self) -> None:
        if self.ctx.run_dir is not None:  # the trained weights, re-tested: no training again
            self.add("check (changes the measurement, not the model): this run's weights "
                     "re-tested on the unshifted test split",
                     ["mode=eval", ov.format("trainer.resume", str(self.ctx.run_dir)),
                      "data.test_shift=null"])
            return
        self.add("check (changes the measurement, not the model): the same run tested on its "
                 "own distribution", ["data.test_shift=null"])

    def default_init(self) -> None:
        """torch's default init draws weights with std 1/sqrt(3 fan_in) <= 0.58, so a normal
        init wider than that is wider than the default for every layer."""
        v = self.ctx.values
        if v.get("model.init") == "normal" and (v.get("model.init_std") or 0) > 3 ** -0.5:
            self.add("the default initialization: weights this large blow the signal up layer "
                     "by layer", ["model.init=default"])

    def shorter_sequences(self) -> None:
        length = self.ctx.values.get("data.length")
        if isinstance(length, int) and length >= 8:
            self.add("shorter sequences: fewer steps for the gradient to pass through",
                     [f"data.length={length // 2}"])

    def decay_less(self) -> None:
        if self.has("sched", "constant"):
            self.add("keep the learning rate up: the schedule decayed it far below optim.lr",
                     ["sched=constant"])

    def train_a_few_epochs(self) -> None:
        self.add("train for a few epochs", ["trainer.epochs=10"])
