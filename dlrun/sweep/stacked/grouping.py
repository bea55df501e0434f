"""Which jobs of a multirun can train as one stack, and why a job runs alone.

Jobs stack when their composed configs agree on everything but the per-job knobs below:
then they have the same architecture and shapes, the same dataset and splits, batch
size, epochs and kind of schedule. The per-job knobs are what the stacked trainer gives
each job for itself (dlrun.train.stacked): optimizer scalars, the seed (initial weights,
batch order, the data's splits), dropout, weight penalties, gradient clipping, label
noise, the schedule's own numbers, early stopping, and what only the job's files see.
`data.n_train` is not among them: it sets the number of batches, so each value gets
its own stack. No torch here: the launcher plans before anything is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

PER_JOB = (
    "optim.lr", "optim.weight_decay", "optim.momentum", "optim.dampening", "optim.betas",
    "optim.eps", "optim.alpha", "optim.rho", "optim.lr_decay", "optim.initial_accumulator_value",
    "optim.momentum_decay",
    "trainer.seed", "trainer.grad_clip", "trainer.progress", "trainer.checkpoint",
    "model.dropout", "reg.dropout", "reg.l1", "reg.l2", "reg.elastic", "reg.early_stopping",
    "data.label_noise",
    "diagnose",
)
SHARED_SCHEDULE = ("sched._target_", "sched.interval")  # the kind of schedule; its numbers are per job
STACKABLE_MODELS = ("MLP", "CNN", "Linear", "Logistic", "Recurrent")
TOKEN_DATA = ("dlrun.data.text.", "dlrun.data.seq2seq.")


@dataclass
class Plan:
    """Stacks (lists of job positions, in job order) and the jobs that run alone, with why."""

    stacks: list[list[int]] = field(default_factory=list)
    alone: dict[int, str] = field(default_factory=dict)
    varied: list[list[str]] = field(default_factory=list)  # per stack: the keys its jobs differ in


def flat(node, prefix: str = "") -> dict[str, object]:
    """A resolved config as {dotted key: value}; an empty group (reg=none) has no keys."""
    out = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, name + "."))
        else:
            out[name] = value
    return out


def _per_job(key: str) -> bool:
    if key.startswith("sched.") and key not in SHARED_SCHEDULE:
        return True
    return any(key == k or key.startswith(k + ".") for k in PER_JOB)


def stack_key(cfg: DictConfig) -> str:
    """What must be equal for jobs to stack: the config without its per-job knobs."""
    values = flat(OmegaConf.to_container(cfg, resolve=True))
    return json.dumps({k: v for k, v in sorted(values.items()) if not _per_job(k)}, default=str)


def why_alone(cfg: DictConfig) -> str | None:
    """Why this job cannot join any stack, or None when it can."""
    def get(key, default=None):
        return OmegaConf.select(cfg, key, default=default, throw_on_missing=False)

    model = str(get("model._target_", "")).rsplit(".", 1)[-1]
    reasons = [
        (get("mode", "train") != "train", f"mode={get('mode')} runs alone"),
        (get("cv.folds") is not None, "cross-validation (cv.folds) runs alone"),
        (get("trainer.resume") is not None, "a resumed run (trainer.resume) runs alone"),
        ((get("trainer.devices", 1) or 1) > 1, "a data-parallel job (trainer.devices > 1) runs alone"),
        (model not in STACKABLE_MODELS,
         f"model {model} is not stackable (stackable: linear, logistic, mlp, cnn, rnn, lstm, gru)"),
        (str(get("data._target_", "")).startswith(TOKEN_DATA), "token data (text, seq2seq) runs alone"),
        (get("reg.augment") is not None, "reg=augment runs alone"),
        ((get("diagnose.hessian_every", 0) or 0) > 0,
         "diagnose.hessian_every needs the job's own model every few epochs"),
        (get("trainer.precision") == "fp16",
         "trainer.precision=fp16 scales the loss for all jobs at once; use bf16 or 32"),
        (bool(get("sched.cycle_momentum", False)), "sched.cycle_momentum=true runs alone"),
    ]
    return next((reason for failed, reason in reasons if failed), None)


def plan(configs: list[DictConfig], max_stack: int, workers: int = 1) -> Plan:
    """Group jobs (by their position in `configs`) into stacks of at most `max_stack`; with
    several `workers` (processes that train stacks at once) a group is split so that each
    worker gets a stack of it, when it has two jobs for each."""
    result = Plan()
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        reason = why_alone(cfg)
        if reason is not None:
            result.alone[i] = reason
        else:
            groups.setdefault(stack_key(cfg), []).append(i)
    singles = []
    for members in groups.values():
        for part in _split(members, max_stack, workers):
            if len(part) == 1:
                singles.append(part[0])
                continue
            result.stacks.append(part)
            result.varied.append(_varied([configs[i] for i in part]))
    for i in singles:
        other = next((s[0] for s in result.stacks), None)
        differs = "" if other is None else " (differs from stack 1 in " + ", ".join(
            _differing(configs[i], configs[other])[:4]) + ")"
        result.alone[i] = "no other job shares its model, data, batch size, epochs and schedule" + differs
    return result


def _split(members: list[int], max_stack: int, workers: int) -> list[list[int]]:
    """Near-equal parts: as few as max_stack allows, or one per worker (each of two or more jobs)."""
    parts = max(-(-len(members) // max_stack), min(workers, len(members) // 2), 1)
    size, extra = divmod(len(members), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        out.append(members[start:end])
        start = end
    return out


def _varied(configs: list[DictConfig]) -> list[str]:
    values = [flat(OmegaConf.to_container(c, resolve=True)) for c in configs]
    keys = sorted({k for v in values for k in v})
    return [k for k in keys if len({json.dumps(v.get(k), default=str) for v in values}) > 1]


def _differing(a: DictConfig, b: DictConfig) -> list[str]:
    fa, fb = (flat(OmegaConf.to_container(c, resolve=True)) for c in (a, b))
    return [k for k in sorted(set(fa) | set(fb)) if not _per_job(k) and fa.get(k) != fb.get(k)]
