"""`diagnose_run`: after training, gather evidence, walk the map, and write the remedies.

Probes run only where the map needs them: the trivial predictor, the references and
the cheap signals always; the tiny-subset probe only when the training loss is large
and no simpler model already explains why; the critical-point analysis (Lanczos on
Hessian-vector products) only when an optimization issue is not already placed by the
history (or always with diagnose.hessian=always). Every probe's seconds are recorded.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dlrun.diagnose import hessian, probes
from dlrun.diagnose.history import analyze_history
from dlrun.diagnose.map import walk
from dlrun.diagnose.references import fit_references, tiny_subset, trivial_losses
from dlrun.diagnose.remedies import GROUPS, Context, remedies
from dlrun.models import build_model
from dlrun.models.build import model_name
from dlrun.paths import config_dir
from dlrun.records import EpochRow
from dlrun.train.losses import IGNORE
from dlrun.train.optimizers import build_optimizer


class _Clock:
    """Seconds per probe, for diagnosis.json's `cost`."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn, *args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def diagnose_run(
    cfg: DictConfig,
    model: torch.nn.Module,
    data,
    rows: list[EpochRow],
    loss,
    overrides: list[str],
    *,
    train_seconds: float | None = None,
    final_epoch: int | None = None,
) -> dict | None:
    """The diagnosis.json dict for a finished run, or None with diagnose=off.

    `loss` is the loss the run trained with; `overrides` the user's command-line overrides
    (the remedies' commands start from them); `final_epoch` the epoch whose weights the
    model holds when that is not the last (early stopping restored the best).
    """
    th = cfg.diagnose
    if not th.enabled:
        return None
    clock = _Clock()
    optimizer = cfg.optim._target_.rsplit(".", 1)[-1].lower()
    ev: dict = {
        "params": sum(p.numel() for p in model.parameters()),
        "history": analyze_history(rows, th),
        "test_shift": getattr(data, "test_shift", None),
        "lr": cfg.optim.lr,
        "optimizer": {
            "name": optimizer,
            "sgd": optimizer == "sgd",
            "lr": cfg.optim.lr,
            "momentum": OmegaConf.select(cfg, "optim.momentum", default=0.0),
        },
    }
    if rows and ev["history"].get("nonfinite_epoch") is None:
        final = next((r for r in rows if r.epoch == final_epoch), rows[-1])
        ev["loss"] = {s: final.loss(s) for s in ("train", "val", "test")}
        if final.metric("train", "exact") is not None:  # seq2seq: a small per-token loss
            # can still get whole sequences wrong
            ev["exact"] = {s: final.metric(s, "exact") for s in ("train", "val", "test")}
        # probes stop iterating at probe_budget x the run's time (half of it for the references)
        budget = th.probe_budget * train_seconds if train_seconds else None
        start = time.perf_counter()
        deadlines = (start + budget / 2, start + budget) if budget else (None, None)
        result = _probe(ev, clock, cfg, model, data, loss, deadlines)
    else:  # the history alone decides: no epochs, or the loss blew up (the weights are NaN)
        result = walk(ev, th)

    context = run_context(
        cfg, overrides, input_rank=len(data.input_shape), test_shift=ev["test_shift"]
    )
    cost = {f"{name}_s": seconds for name, seconds in clock.seconds.items()}
    cost["total_s"] = sum(clock.seconds.values())
    if train_seconds:
        cost["train_s"] = train_seconds
        cost["share_of_training"] = cost["total_s"] / train_seconds
    return {
        "verdict": result["verdict"],
        "stuck": result["stuck"],
        "findings": result["findings"],
        "remedies": [
            {"action": r["action"], "command": r["command"]}
            for r in remedies(result["verdict"], result["findings"], context)
        ],
        "path": result["path"],
        "evidence": ev,
        "cost": cost,
    }


def _probe(ev: dict, clock: _Clock, cfg: DictConfig, model, data, loss, deadlines) -> dict:
    """Fill `ev` probe by probe, walking the map after each to see whether the next is needed."""
    th, seed = cfg.diagnose, cfg.trainer.seed
    references_deadline, deadline = deadlines
    ev["trivial"] = clock.run("trivial", trivial_losses, data, loss)
    ev["references"] = clock.run(
        "references",
        fit_references,
        data,
        loss,
        hidden=th.reference_hidden,
        iterations=th.reference_steps,
        max_examples=th.reference_max_examples,
        seed=seed,
        deadline=references_deadline,
    )
    x, y = probes.sample(data.x_train, data.y_train, th.hessian_max_examples, seed)
    ev["gradients"] = clock.run("signals", probes.layer_gradients, model, loss, x, y)
    ev["dead_relu"] = clock.run("signals", probes.dead_relus, model, x)
    ev["inputs"] = clock.run("signals", probes.input_scale, data.x_train)
    result = walk(ev, th)

    # the tiny subset decides only a large training loss that no simpler model explains,
    # and only for a model with enough parameters to memorize it
    large = result["verdict"] == "model_bias" or result["stuck"] is not None
    if large and not _has(result, "simpler_model_better") and th.tiny_subset_steps > 0:
        ev["tiny"] = _tiny_targets(data, th.tiny_subset_size, ev["params"])
        if ev["tiny"]["params"] >= th.memorize_ratio * ev["tiny"]["targets"]:
            make_optimizer = _optimizer(cfg, data.x_train.device)
            ev["tiny"] = clock.run(
                "tiny_subset",
                tiny_subset,
                lambda: _fresh_model(cfg, data),
                make_optimizer,
                loss,
                data,
                size=th.tiny_subset_size,
                steps=th.tiny_subset_steps,
                seed=seed,
                deadline=deadline,
            )
        result = walk(ev, th)

    # the Hessian decides an optimization issue the history could not place
    undecided = result["verdict"] == "optimization" and result["stuck"] == "stalled"
    if th.hessian == "always" or (th.hessian == "auto" and undecided):
        was_training = model.training
        full = clock.run("hessian", probes.full_gradient, model, loss, data.x_train, data.y_train)
        f = hessian.loss_of_params(_eval(model), loss, x, y)  # curvature from a sample
        params = dict(model.named_parameters())
        cp = clock.run(
            "hessian",
            hessian.critical_point,
            f,
            params,
            th.hessian_iterations,
            seed,
            deadline,
            gradient=full,
        )
        direction, gradient = cp.pop("_vector_min"), cp.pop("_gradient")
        ev["critical_point"] = cp
        if th.escape_saddle and cp["lambda_min"] < -th.negative_curvature * abs(cp["lambda_max"]):
            # the step is judged on the whole training split, not the sample it was found on
            whole = hessian.loss_of_params(model, loss, data.x_train, data.y_train)
            ev["escape"] = clock.run("escape", hessian.escape, whole, params, direction, gradient)
        model.train(was_training)
        result = walk(ev, th)
    return result


def _tiny_targets(data, size: int, params: int) -> dict:
    """What the tiny-subset probe would have to memorize, without running it."""
    y = data.y_train[:size]
    targets = y.numel() if data.task == "regression" else int((y != IGNORE).sum())
    return {
        "n": len(y),
        "targets": int(targets),
        "params": params,
        "steps": 0,
        "loss": None,
        "trivial": None,
    }


def _has(result: dict, code: str) -> bool:
    return any(f["code"] == code for f in result["findings"])


def _eval(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()  # dropout off, batch-norm running statistics: a deterministic loss surface
    return model


def _fresh_model(cfg: DictConfig, data) -> torch.nn.Module:
    return build_model(cfg.model, data).to(data.x_train.device)


def _optimizer(cfg: DictConfig, device: torch.device):
    return lambda params: build_optimizer(instantiate(cfg.optim), params, device)


def _keys(node, prefix: str = "") -> set[str]:
    keys = set()
    for key in node:
        name = f"{prefix}{key}"
        keys.add(name)
        value = node._get_node(key)
        if OmegaConf.is_dict(value):
            keys |= _keys(value, name + ".")
    return keys


def run_context(
    cfg: DictConfig, overrides: list[str], *, input_rank: int, test_shift: str | None
) -> Context:
    """What the remedies need from the config: current values, existing keys and options."""
    conf = Path(config_dir())
    reg = OmegaConf.select(cfg, "reg", default=None)

    def get(key, default=None):
        return OmegaConf.select(cfg, key, default=default, throw_on_missing=False)

    hidden = get("model.hidden")
    return Context(
        overrides=list(overrides),
        model=model_name(cfg.model),
        input_rank=input_rank,
        optim=cfg.optim._target_.rsplit(".", 1)[-1].lower(),
        lr=float(cfg.optim.lr),
        epochs=int(cfg.trainer.epochs),
        batch_size=cfg.trainer.batch_size,
        seed=int(cfg.trainer.seed),
        hidden=list(hidden) if OmegaConf.is_list(hidden) else hidden,
        activation=get("model.activation"),
        batchnorm=get("model.batchnorm"),
        momentum=get("optim.momentum"),
        n_train=get("data.n_train"),
        reg=list(reg.keys()) if reg else [],
        test_shift=test_shift,
        escape_saddle=bool(cfg.diagnose.escape_saddle),
        keys=_keys(cfg),
        options={g: {p.stem for p in (conf / g).glob("*.yaml")} for g in GROUPS},
        pinned=_experiment_body(conf, overrides),
        conf_dir=conf,
    )


def _experiment_body(conf: Path, overrides: list[str]) -> dict:
    """The keys an `experiment=NAME` preset sets (grouped by top-level key), if one was used."""
    name = next(
        (o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("experiment=")), None
    )
    path = conf / "experiment" / f"{name}.yaml"
    if name is None or not path.is_file():
        return {}
    body = OmegaConf.to_container(OmegaConf.load(path))
    body.pop("defaults", None)
    return {k: v for k, v in body.items() if isinstance(v, dict)}
