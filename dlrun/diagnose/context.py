"""What the remedies need to know about a run, read once from its composed config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dlrun.models.build import model_name
from dlrun.overrides import parse_all, run_flags, value_of
from dlrun.paths import config_dir

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
    run_dir: Path | None = None  # the run's directory: checks re-test its weights (mode=eval)
    values: dict = field(default_factory=dict)  # every leaf of the composed config, by key
    choices: dict[str, object] = field(default_factory=dict)  # group -> the option it runs
    flags: list[str] = field(default_factory=list)  # Hydra flags that chose the configs (-cd DIR)



def _keys(node, prefix: str = "") -> set[str]:
    keys = set()
    for key in node:
        name = f"{prefix}{key}"
        keys.add(name)
        value = node._get_node(key)
        if OmegaConf.is_dict(value):
            keys |= _keys(value, name + ".")
    return keys


def _values(node, prefix: str = "") -> dict:
    """The composed config's leaves as {dotted key: value} (what a remedy would change)."""
    out = {}
    for key in node:
        name = f"{prefix}{key}"
        try:
            value = node[key]
        except Exception:  # an interpolation only Hydra's runtime resolves
            continue
        if OmegaConf.is_dict(value):
            out.update(_values(value, name + "."))
        else:
            out[name] = OmegaConf.to_container(value) if OmegaConf.is_list(value) else value
    return out


def _choices(overrides: list[str]) -> dict:
    """Which option each config group runs: Hydra's record, else the groups the user typed."""
    if HydraConfig.initialized():
        return {k: v for k, v in HydraConfig.get().runtime.choices.items()
                if not k.startswith("hydra")}
    return {o.key: o.value for o in parse_all(overrides) if o.key in GROUPS}


def run_context(
    cfg: DictConfig, overrides: list[str], *, input_rank: int, test_shift: str | None,
    run_dir: Path | None = None,
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
        run_dir=run_dir,
        values=_values(cfg),
        choices=_choices(overrides),
        flags=run_flags(),
    )


def _experiment_body(conf: Path, overrides: list[str]) -> dict:
    """The keys an `experiment=NAME` preset sets (grouped by top-level key), if one was used."""
    name = value_of(overrides, "experiment")
    path = conf / "experiment" / f"{name}.yaml"
    if name is None or not path.is_file():
        return {}
    body = OmegaConf.to_container(OmegaConf.load(path))
    body.pop("defaults", None)
    return {k: v for k, v in body.items() if isinstance(v, dict)}
