"""One place per knob: the schema field's default, range and meaning drive validate, the
HParams knob list and the README's knob tables; the YAML options set only what differs."""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml
from conftest import CONFIG_DIR, REPO, compose
from omegaconf import OmegaConf

from dlrun.config import validate
from dlrun.errors import UserError
from dlrun.schema import GROUPS
from dlrun.schema.doc import TABLES, render, table
from dlrun.schema.knobs import at_least, common_keys, default, fields, knob, spec
from dlrun.schema.optim import MomentumConfig, OptimConfig, SGDConfig

README = (REPO / "README.md").read_text()

# --- validate reads the ranges from the schemas ------------------------------------------


@dataclass
class Toy:
    width: int = knob(4, "a knob with a range", at_least(1))
    free: int = knob(4, "a knob without one")


def _toy(**values):
    cfg = OmegaConf.create({"toy": OmegaConf.structured(Toy), "trainer": {"resume": None}})
    cfg.toy.merge_with(values)
    return cfg


def test_a_knob_with_a_range_says_so_in_one_line_and_one_without_says_nothing():
    validate(_toy(width=1, free=-100))
    with pytest.raises(UserError, match=r"^toy.width=0 is out of range: it must be >= 1\.$"):
        validate(_toy(width=0))


def test_a_subclass_that_changes_a_default_keeps_its_base_s_range_and_meaning():
    base = spec(OptimConfig, "lr")
    assert spec(SGDConfig, "lr") == spec(MomentumConfig, "lr") == base and base.common
    assert base.rule.text == "must be a positive number, e.g. optim.lr=0.01"
    assert [default(f) for f in fields(MomentumConfig) if f.name == "lr"] == [0.01]
    with pytest.raises(UserError, match="optim.lr=0.0 is out of range"):
        validate(compose("optim=momentum", "optim.lr=0"))


def test_a_value_taken_from_another_key_is_reported_at_that_key():
    with pytest.raises(UserError, match=r"^reg.dropout.p=1.0 is out of range"):
        validate(compose("reg=[dropout]", "reg.dropout.p=1.0"))  # model.dropout follows it


# one bad value per range that dlrun/config.py's _RANGES listed, so none got lost
BAD = [
    ("optim.lr=inf",), ("optim.weight_decay=-1",), ("trainer.epochs=0",), ("trainer.devices=0",),
    ("trainer.batch_size=0",), ("trainer.eval_batch_size=0",), ("trainer.grad_clip=0",),
    ("trainer.precision=16",), ("trainer.threads=0",), ("trainer.progress=loud",),
    ("trainer.grad_clip_mode=clamp",), ("reg=[dropout]", "reg.dropout.p=1.0"),
    ("model.dropout=1.0",), ("model.hidden=[0]",), ("model=cnn", "model.hidden=-1"),
    ("model=cnn", "model.channels=[]"), ("model=cnn", "model.kernel_size=0"),
    ("model=cnn", "model.stride=0"), ("model=cnn", "model.padding=-1"), ("model.init_std=0",),
    ("model=gru", "model.hidden_size=0"), ("model=seq2seq", "model.num_layers=0"),
    ("model=transformer", "model.d_model=0"), ("model=transformer", "model.heads=0"),
    ("model=transformer", "model.layers=0"), ("model=transformer", "model.feedforward=0"),
    ("loss=huber", "loss.delta=0"), ("loss=cross_entropy", "loss.label_smoothing=1.0"),
    ("data=copy", "data.symbols=11"), ("data=add", "data.digits=10"),
    ("data=text", "data.block=0"), ("data=text", "data.stride=0"),
    ("data=text", "data.sample_chars=-1"), ("data=text", "data.temperature=0"),
    ("reg=[l2]", "reg.l2.strength=-1"), ("data.val_fraction=0",), ("data.test_fraction=1",),
    ("data.label_noise=1",), ("data.n_train=0",), ("data=sine", "data.n=9"),
    ("data=sine", "data.noise=-1"), ("data=circles", "data.factor=1"),
    ("data=spirals", "data.arms=1"), ("data=spirals", "data.turns=0"),
    ("data=adding", "data.length=0"), ("data=csv", "data.n_classes=1"),
    ("data=npz", "data.task=ranking"), ("optim=sgd", "optim.momentum=1"),
    ("optim=sgd", "optim.dampening=1.5"), ("optim=rmsprop", "optim.alpha=1"),
    ("optim=adadelta", "optim.rho=1"), ("optim.betas=[0.9]",), ("optim.eps=0",),
    ("optim=adagrad", "optim.lr_decay=-1"), ("optim=nadam", "optim.momentum_decay=-1"),
    ("sched.interval=hour",), ("sched=step", "sched.gamma=0"), ("sched=step", "sched.step_size=0"),
    ("sched=cosine", "sched.T_max=0"), ("sched=onecycle", "sched.total_steps=0"),
    ("sched=warmup_cosine", "sched.warmup=-1"), ("sched=warmup_cosine", "sched.start_factor=0"),
    ("sched=cosine", "sched.eta_min=-1"), ("sched=plateau", "sched.factor=0"),
    ("sched=plateau", "sched.patience=-1"), ("sched=onecycle", "sched.pct_start=1"),
    ("sched=onecycle", "sched.div_factor=0"), ("sched=onecycle", "sched.final_div_factor=0"),
    ("reg=[l1]", "reg.l1.strength=-1"), ("reg=[elastic]", "reg.elastic.strength=-1"),
    ("reg=[elastic]", "reg.elastic.l1_ratio=2"),
    ("reg=[early_stopping]", "reg.early_stopping.patience=0"),
    ("reg=[early_stopping]", "reg.early_stopping.min_delta=-1"),
    ("reg=[augment]", "reg.augment.crop_pad=-1"), ("reg=[augment]", "reg.augment.rotate=181"),
    ("reg=[augment]", "reg.augment.scale=1"), ("reg=[augment]", "reg.augment.noise=-1"),
    ("reg=[augment]", "reg.augment.shift=-1"), ("cv.folds=1",), ("mode=evaluate",), ("checkpoint=first",),
    ("lr_find.start_lr=0",), ("lr_find.end_lr=0",), ("lr_find.steps=9",),
    ("lr_find.smoothing=1",), ("lr_find.diverge=1",), ("diagnose.hessian=sometimes",),
]


@pytest.mark.parametrize("overrides", BAD, ids=[o[-1] for o in BAD])
def test_every_range_is_checked_with_its_one_line_message(overrides):
    key = overrides[-1].split("=")[0]
    with pytest.raises(UserError, match=rf"^{re.escape(key)}=\S+ is out of range: it must [^\n]+\.$"):
        validate(compose(*overrides))


def test_the_shipped_options_are_in_range():
    for group, option in [("model", "cnn"), ("data", "text"), ("sched", "onecycle"),
                          ("optim", "nadam"), ("reg", "[l1,l2,elastic,early_stopping,augment]")]:
        validate(compose(f"{group}={option}"))


# --- the HParams knob list --------------------------------------------------------------


def test_the_common_knobs_are_those_the_schemas_mark_common():
    assert set(common_keys(compose())) == {
        "optim.lr", "optim.weight_decay", "trainer.epochs", "trainer.batch_size", "trainer.seed",
        "model.hidden", "model.activation", "data.n_train", "data.label_noise", "data.test_shift"}
    assert "model.hidden" in common_keys(compose("model=cnn"))
    assert "model.hidden" not in common_keys(compose("model=gru"))  # it has no such knob


def test_hparams_log_the_common_knobs_and_the_overridden_keys():
    from dlrun.report.hparams import hparams_of

    values = hparams_of(compose("optim=sgd", "trainer.epochs=3"))
    assert values["optim.lr"] == 0.1 and values["trainer.epochs"] == "3"  # integers as text
    assert values["model.hidden"] == "[128, 128]" and values["data.test_shift"] == "null"


# --- YAML options set only what differs from their schema --------------------------------


LIST_GROUPS = ("reg", "logger")  # several options at once, each under its own key


def _schema_of(group: str, option: str):
    listed = group in LIST_GROUPS
    cfg = compose(f"{group}=[{option}]" if listed else f"{group}={option}")
    node = cfg[group][option] if listed else cfg[group]
    return OmegaConf.get_type(node)


YAMLS = [(p.parent.name, p.stem) for p in sorted(Path(CONFIG_DIR).glob("*/*.yaml"))
         if p.parent.name not in ("experiment", "hparams_search") and p.stem != "none"]


@pytest.mark.parametrize(("group", "option"), YAMLS, ids=[f"{g}={o}" for g, o in YAMLS])
def test_a_yaml_option_sets_only_what_differs_from_its_schema(group, option):
    text = Path(CONFIG_DIR, group, f"{option}.yaml").read_text()
    body = yaml.safe_load(text) or {}
    body.pop("defaults", None)
    if text.startswith("# @package _global_"):  # it sets keys beyond its group as well
        body = body.get(group, {})  # (optim=gd: trainer.batch_size; follow=on: the sweeper's)
    schema = _schema_of(group, option)
    defaults = {f.name: default(f) for f in fields(schema)}
    for key, value in body.items():
        assert key in defaults and value != defaults[key], f"{group}/{option}.yaml sets {key}={value}"


# --- the README's knob tables -------------------------------------------------------------


def test_the_readme_knob_reference_is_the_schemas_rendering():
    assert render(README) == README, "run: python -m dlrun.schema.doc README.md"
    for group in TABLES:
        assert table(group) in README


def _tables(text: str):
    """(group, header cells, rows of cells) of each table whose first column names a group
    option (`model=`), or that sits under a heading naming one (### Optimizers (`optim=`))."""
    group, lines = None, text.splitlines()
    for i, line in enumerate(lines):
        heading = re.match(r"#+ .*`(\w+)=`", line)
        if line.startswith("#"):
            group = heading.group(1) if heading else None
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = _cells(line)
            first = re.fullmatch(r"`(\w+)=`", header[0])
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            if first or (group and header[0] == "option"):
                yield (first.group(1) if first else group), header, rows


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


@cache
def _option_schema(group: str, option: str):
    return _schema_of(group, option)


NOT_A_VALUE = object()
MENTION = re.compile(r"`([\w.]+)`(?:=([\d,.]+)| \(([^()]*)\)| (\[[^\]]*\]|-?\d[\d.]*(?:e-?\d+)?)\b)?")


def _literal(text: str):
    """A default stated in the README: `3`, `1,000`, `[0.9, 0.999]`, `(1 px)`, `(10°)`, `(true)`."""
    text = text.strip().removesuffix(" px").removesuffix("°")
    if text in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[text]
    if text.startswith("["):
        return yaml.safe_load(text)
    try:
        return float(text.replace(",", "")) if re.fullmatch(r"-?[\d,]+(\.\d*)?(e-?\d+)?", text) else NOT_A_VALUE
    except ValueError:
        return NOT_A_VALUE


def _stated(eq, paren, bare):
    if eq:
        return _literal(eq)
    if bare:
        return _literal(bare)
    if paren:  # "(0.5)", or "(squared-gradient decay, 0.99)": the last part
        whole = _literal(paren)
        return whole if whole is not NOT_A_VALUE else _literal(paren.rsplit(", ", 1)[-1])
    return NOT_A_VALUE


def _same(stated, actual) -> bool:
    if isinstance(actual, list):
        return stated == actual
    if isinstance(actual, bool) or actual is None:
        return stated is actual
    return isinstance(actual, (int, float)) and float(actual) == stated


KNOB_TABLES = list(_tables(README))


def test_the_readme_has_the_knob_tables_this_test_reads():
    assert sorted({g for g, _, _ in KNOB_TABLES}) == ["data", "logger", "model", "optim", "reg", "sched"]


@pytest.mark.parametrize(("group", "header", "rows"), KNOB_TABLES, ids=[g for g, _, _ in KNOB_TABLES])
def test_every_knob_a_readme_table_documents_exists_with_the_default_it_states(group, header, rows):
    for row in rows:
        for option in re.findall(r"`(\w+)`", row[0]):
            schema = _option_schema(group, option)
            names = {f.name: f for f in fields(schema)}
            for column, cell in zip(header[1:], row[1:]):
                listed = "knobs" in column or column.startswith("definition")
                said = re.match(r"default (\w+)$", column)  # a column of one knob's defaults
                if said:
                    assert _same(_literal(cell), default(names[said.group(1)])), (option, cell)
                for name, eq, paren, bare in MENTION.findall(cell):
                    name = name.removeprefix(f"{group}.{option}.").removeprefix(f"{group}.")
                    if "." in name:
                        continue  # a key of another group (`reg.dropout.p`)
                    if listed:
                        assert name in names, f"{group}={option} has no knob {name} ({cell})"
                    stated = _stated(eq, paren, bare)
                    if name in names and stated is not NOT_A_VALUE:
                        actual = default(names[name])
                        assert _same(stated, actual), f"{group}={option}: {name} is {actual}, not {stated}"


def _documented(group: str, name: str) -> bool:
    return (f"`{name}`" in README or f"`{name}=" in README
            or re.search(rf"\b{group}\.(\w+\.)?{name}\b", README) is not None)


GROUP_OF = {"tokens": "data"}  # the token datasets' schemas are options of `data` too
SCHEMA_KNOBS = sorted({(GROUP_OF.get(group, group), f.name)
                       for module in GROUPS for node in module.SCHEMAS.values()
                       if isinstance(node, type) and (group := module.__name__.rsplit(".", 1)[-1])
                       for f in fields(node)})


def test_every_schema_knob_is_documented_in_the_readme():
    missing = [f"{g}.{n}" for g, n in SCHEMA_KNOBS if not _documented(g, n)]
    assert not missing, f"knobs the README never mentions: {missing}"
    assert _documented("", "mode")


def test_an_option_s_values_are_its_schema_s_defaults_under_its_own():
    from dlrun.schema.options import option_values

    adam = option_values(CONFIG_DIR, "optim", "adam")
    assert adam["lr"] == 1e-3 and adam["betas"] == [0.9, 0.999]  # the schema's, not in adam.yaml
    assert option_values(CONFIG_DIR, "model", "gru")["cell"] == "gru"  # gru.yaml's own
    assert option_values(CONFIG_DIR, "optim", "gd")["lr"] == 0.1  # a `_global_` package too
    assert option_values(CONFIG_DIR, "optim", "nope") is None
