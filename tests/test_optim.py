"""Every optimizer composes, builds in torch's fast implementation, and trains."""

import pytest
import torch
from conftest import FAST, compose, train

from dlrun.build import build, build_loss
from dlrun.config import validate
from dlrun.errors import UserError
from dlrun.records import read_rows
from dlrun.train import Components, fit
from dlrun.train.optimizers import build_optimizer, fast_kwargs

pytestmark = pytest.mark.usefixtures("one_thread")


OPTIMIZERS = [
    "gd",
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "adamw",
    "nadam",
    "adadelta",
]
# a small problem: an MLP on 300 digits, no checkpoints, no diagnosis
SMALL = [
    "data=digits",
    "data.flat=true",
    "data.n_train=300",
    "model=mlp",
    "model.hidden=[32]",
    "trainer.checkpoint=false",
    "diagnose=off",
    "trainer.threads=1",
]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_trains(name):
    lr = ["optim.lr=0.5"] if name == "gd" else []  # full batch: one step per epoch
    cfg = compose(*FAST, f"optim={name}", *SMALL, *lr, "trainer.epochs=4")
    data, model, optimizer, scheduler, interval = build(cfg, torch.device("cpu"))
    parts = Components(data, model, optimizer, scheduler, interval, build_loss(cfg, data, model))
    rows = list(fit(parts, cfg.trainer))
    assert rows[-1].loss("train") < rows[0].loss("train")
    assert rows[-1].loss("train") < 2.2  # below the trivial predictor's log(10) = 2.30
    assert rows[0].steps == (1 if name == "gd" else 5)  # 300 examples, batch 64


def test_gd_runs_full_batch_from_the_command_line(run_dir):
    train(run_dir, "optim=gd", "optim.lr=0.5", *SMALL, "trainer.epochs=3")
    rows = read_rows(run_dir / "metrics.jsonl")
    assert [r.steps for r in rows] == [1, 1, 1]
    assert rows[-1].loss("train") < rows[0].loss("train")


def test_gd_is_full_batch_unless_the_user_says_otherwise():
    assert compose("optim=gd").trainer.batch_size is None
    assert compose("optim=gd", "trainer.batch_size=32").trainer.batch_size == 32
    assert compose("optim=gd", "optim.lr=0.3").optim.lr == 0.3
    assert compose("optim=sgd").trainer.batch_size == 64


@pytest.mark.parametrize(
    ("name", "knobs"),
    [
        ("momentum", {"momentum": 0.9, "nesterov": False}),
        ("nesterov", {"momentum": 0.9, "nesterov": True}),
        ("rmsprop", {"alpha": 0.99}),
        ("adam", {"betas": (0.9, 0.999)}),
        ("adamw", {"weight_decay": 0.01}),
    ],
)
def test_knobs_reach_torch(name, knobs):
    cfg = compose(f"optim={name}", *SMALL)
    _, _, optimizer, _, _ = build(cfg, torch.device("cpu"))
    group = optimizer.param_groups[0]
    for key, value in knobs.items():
        assert tuple(group[key]) == value if isinstance(value, tuple) else group[key] == value


def test_fused_where_torch_has_it_else_foreach():
    cpu = torch.device("cpu")
    assert fast_kwargs(torch.optim.Adam, cpu) == {"fused": True}
    assert fast_kwargs(torch.optim.SGD, torch.device("cuda")) == {"fused": True}
    assert fast_kwargs(torch.optim.RMSprop, cpu) == {"foreach": True}
    assert fast_kwargs(torch.optim.SGD, torch.device("mps")) == {"foreach": True}
    _, _, optimizer, _, _ = build(compose("optim=adamw", *SMALL), cpu)
    assert optimizer.param_groups[0]["fused"] is True


def test_torch_rejecting_the_knobs_is_a_user_error():
    from hydra.utils import instantiate

    cfg = compose("optim=nesterov", "optim.momentum=0.0")
    with pytest.raises(UserError, match="optim.* overrides"):
        build_optimizer(
            instantiate(cfg.optim), [torch.nn.Parameter(torch.zeros(1))], torch.device("cpu")
        )


@pytest.mark.parametrize("override", ["optim.betas=[0.9,1.5]", "optim.momentum=1.0"])
def test_out_of_range_knobs(override):
    name = "adam" if "betas" in override else "momentum"
    with pytest.raises(UserError, match=override.split("=")[0]):
        validate(compose(f"optim={name}", override))
