"""Every option of every config group composes, and the composed config has the contract's keys."""

from pathlib import Path

import pytest
from conftest import CONFIG_DIR, compose
from omegaconf import OmegaConf

GROUPS = sorted(p.name for p in Path(CONFIG_DIR).iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted(Path(CONFIG_DIR, g).glob("*.yaml"))]


def test_contract_groups_exist():
    for group in ("model", "data", "optim", "sched", "reg", "trainer"):
        assert group in GROUPS


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option):
    cfg = compose(f"{group}={option}")
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves


def test_defaults_are_the_documented_experiment():
    cfg = compose()
    assert cfg.model._target_.endswith("MLP")
    assert cfg.data._target_.endswith("digits")
    for key in ("optim.lr", "trainer.epochs", "trainer.batch_size", "trainer.device",
                "trainer.seed", "model.hidden", "model.activation", "data.n_train",
                "data.label_noise", "data.test_shift"):
        assert OmegaConf.select(cfg, key, throw_on_missing=True) is not None or key in (
            "data.n_train", "data.test_shift")


def test_reg_takes_several_options_under_their_own_keys():
    cfg = compose("reg=[l2,dropout]", "reg.dropout.p=0.3", "reg.l2.strength=0.01")
    assert cfg.reg.l2.strength == 0.01
    assert cfg.model.dropout == 0.3  # the model follows reg.dropout.p


def test_full_batch_is_null_batch_size():
    assert compose("trainer.batch_size=null").trainer.batch_size is None
