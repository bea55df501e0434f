"""Models: each trains on data it fits, forward shapes, the notes' parameter and size claims,
one-line errors for shapes a model cannot take, and what each init does to the weights."""

import json
import math

import pytest
import torch
from conftest import compose, train
from torch import nn

from dlrun.data import Dataset
from dlrun.errors import UserError
from dlrun.models import (
    CNN,
    MLP,
    Linear,
    Logistic,
    Recurrent,
    Transformer,
    build_model,
    param_counts,
)
from dlrun.models.cnn import conv_output_size, plan_sizes

TINY = {
    "transformer": ["model.d_model=16", "model.heads=2", "model.layers=1", "model.feedforward=32"],
    "rnn": ["model.hidden_size=32"],
    "lstm": ["model.hidden_size=32"],
    "gru": ["model.hidden_size=32"],
    "cnn": ["model.channels=[16,32]", "model.hidden=32"],
}
DIGITS = ["data=digits", "data.n_train=500"]
QUICK = ["trainer.epochs=3", "optim.lr=0.01", "diagnose=off", "trainer.checkpoint=false"]
FITS = [  # (model, data overrides, metric, a value a working model beats after 3 epochs)
    ("linear", [*DIGITS, "data.flat=true"], "acc", 0.5),
    ("logistic", [*DIGITS, "data.flat=true"], "acc", 0.5),
    ("mlp", [*DIGITS, "data.flat=true"], "acc", 0.7),
    ("mlp", ["data=sine"], "r2", 0.5),
    ("cnn", DIGITS, "acc", 0.5),
    ("rnn", DIGITS, "acc", 0.3),  # images read row by row: 8 steps of 8 pixels
    ("lstm", DIGITS, "acc", 0.3),
    ("gru", DIGITS, "acc", 0.3),
    ("transformer", DIGITS, "acc", 0.3),
]


@pytest.mark.parametrize(
    ("model", "data", "metric", "beats"), FITS, ids=[f"{m}-{d[0][5:]}" for m, d, _, _ in FITS]
)
def test_each_model_trains_on_data_it_fits(run_dir, model, data, metric, beats):
    train(run_dir, f"model={model}", *data, *TINY.get(model, []), *QUICK)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["final"][f"val_{metric}"] > beats
    layers = summary["params_per_layer"]
    assert sum(row["params"] for row in layers) == summary["params"] > 0
    assert all({"layer", "type", "params"} <= row.keys() for row in layers)


def test_run_prints_the_parameter_table(run_dir, capsys):
    train(
        run_dir,
        "model=mlp",
        "model.hidden=[32]",
        "data.flat=true",
        "data.n_train=100",
        *QUICK,
        "trainer.epochs=1",
        "trainer.progress=lines",
    )
    out = capsys.readouterr().out
    # 64*32+32 = 2,080 and 32*10+10 = 330: 2,410 in total
    assert "parameters" in out and "2,080" in out and "330" in out and "2,410" in out


# --- forward shapes -----------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_many_to_one_and_many_to_many(cell, bidirectional):
    x = torch.randn(5, 12, 3)
    kw = dict(cell=cell, hidden_size=8, num_layers=2, bidirectional=bidirectional)
    assert Recurrent((12, 3), 4, **kw)(x).shape == (5, 4)
    assert Recurrent((12, 3), 4, readout="mean", **kw)(x).shape == (5, 4)
    assert Recurrent((12, 3), 4, per_step=True, **kw)(x).shape == (5, 12, 4)


def test_last_readout_is_the_final_hidden_state_of_both_directions():
    model = Recurrent((6, 2), 1, cell="gru", hidden_size=4, bidirectional=True).eval()
    x = torch.randn(3, 6, 2)
    steps, _ = model.rnn(x)
    # forward direction ends at the last step, backward direction at the first
    expected = torch.cat([steps[:, -1, :4], steps[:, 0, 4:]], dim=1)
    assert torch.allclose(model(x), model.head(expected), atol=1e-6)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", "none"])
def test_transformer_many_to_one_and_many_to_many(positional):
    kw = dict(d_model=16, heads=4, layers=1, feedforward=32, positional=positional)
    x = torch.randn(5, 10, 3)
    assert Transformer((10, 3), 2, **kw)(x).shape == (5, 2)
    assert Transformer((10, 3), 2, per_step=True, **kw)(x).shape == (5, 10, 2)


@pytest.mark.parametrize("model_cls", [Recurrent, Transformer])
def test_sequence_models_read_tabular_rows_and_images(model_cls):
    kw = (
        {"hidden_size": 8}
        if model_cls is Recurrent
        else {"d_model": 8, "heads": 2, "feedforward": 16}
    )
    assert model_cls((7,), 3, **kw)(torch.randn(4, 7)).shape == (4, 3)  # 7 steps of 1 feature
    assert model_cls((1, 8, 8), 3, **kw)(torch.randn(4, 1, 8, 8)).shape == (4, 3)  # 8 rows


def test_causal_mask_hides_the_future():
    torch.manual_seed(0)
    x = torch.randn(2, 9, 3)
    later = x.clone()
    later[:, 5:] += 1.0  # change steps 5.. only
    for causal in (True, False):
        model = Transformer(
            (9, 3), 2, per_step=True, d_model=16, heads=2, layers=2, feedforward=32, causal=causal
        ).eval()
        same = torch.allclose(model(x)[:, :5], model(later)[:, :5], atol=1e-5)
        assert same == causal


def test_without_positions_attention_ignores_order():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3)
    order = torch.randperm(6)
    for positional, ignores in (("none", True), ("sinusoidal", False), ("learned", False)):
        model = Transformer(
            (6, 3),
            2,
            per_step=True,
            d_model=16,
            heads=2,
            layers=1,
            feedforward=32,
            positional=positional,
        ).eval()
        if positional == "learned":
            nn.init.normal_(model.position.table)
        permuted_then_run = model(x[:, order])
        run_then_permuted = model(x)[:, order]
        assert torch.allclose(permuted_then_run, run_then_permuted, atol=1e-5) == ignores


def test_cnn_uses_conv1d_over_time_for_sequences():
    model = CNN((40, 1), 10, channels=[8, 16])
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    assert convs and all(isinstance(c, nn.Conv1d) for c in convs)
    assert model(torch.randn(3, 40, 1)).shape == (3, 10)
    assert all(
        isinstance(c, nn.Conv2d)
        for c in CNN((1, 8, 8), 10).modules()
        if isinstance(c, (nn.Conv1d, nn.Conv2d))
    )


def test_residual_blocks_add_their_input():
    model = CNN((4, 8, 8), 3, channels=[4, 8], residual=True, batchnorm=False, pool="none")
    same, projected = model.block1, model.block2
    assert isinstance(same.shortcut, nn.Identity)  # 4 -> 4 channels, stride 1
    assert isinstance(projected.shortcut, nn.Conv2d)  # 4 -> 8 channels: a 1x1 projection
    x = torch.randn(2, 4, 8, 8)
    assert torch.allclose(same(x), torch.relu(same.conv(x) + x))
    with pytest.raises(UserError, match=r"model.residual=true .* model.padding=1"):
        CNN((1, 8, 8), 3, kernel_size=3, padding=0, residual=True)


# --- the notes' claims on real modules -----------------------------------------------------


@pytest.mark.parametrize(
    ("features", "hidden", "layers", "bidirectional"),
    [(8, 64, 1, False), (3, 17, 2, False), (5, 32, 3, True)],
)
def test_lstm_has_4x_and_gru_3x_the_parameters_of_a_plain_rnn(
    features, hidden, layers, bidirectional
):
    def recurrent(cell):
        model = Recurrent(
            (20, features),
            1,
            cell=cell,
            hidden_size=hidden,
            num_layers=layers,
            bidirectional=bidirectional,
        )
        return next(r["params"] for r in param_counts(model) if r["layer"] == "rnn")

    rnn = recurrent("rnn")
    assert recurrent("lstm") == 4 * rnn
    assert recurrent("gru") == 3 * rnn
    # a plain RNN layer: W_ih, W_hh and two bias vectors
    assert rnn == sum(
        d * hidden + hidden * hidden + 2 * hidden
        for d in [features] + [hidden * (1 + bidirectional)] * (layers - 1)
    ) * (1 + bidirectional)


def test_conv_size_formula_and_parameter_count_from_the_notes():
    # (32 + 2*2 - 5) / 1 + 1 = 32; each of 10 filters has 5*5*3 weights + 1 bias = 76: 760 in all
    assert conv_output_size(32, kernel=5, stride=1, padding=2) == 32
    conv = nn.Conv2d(3, 10, 5, padding=2)
    assert conv(torch.randn(1, 3, 32, 32)).shape == (1, 10, 32, 32)
    assert sum(p.numel() for p in conv.parameters()) == 760


@pytest.mark.parametrize(
    ("shape", "kernel", "stride", "padding", "pool"),
    [
        ((1, 28, 28), 3, 1, 1, "max"),
        ((3, 32, 30), 5, 2, 2, "avg"),
        ((1, 8, 8), 3, 1, 0, "none"),
        ((2, 17, 9), 4, 3, 2, "max"),
        ((50, 3), 7, 2, 3, "max"),
        ((33, 2), 2, 1, 0, "none"),
    ],
)
def test_planned_cnn_sizes_match_real_forward_shapes(shape, kernel, stride, padding, pool):
    channels = [4, 6, 8]
    model = CNN(
        shape, 2, channels=channels, kernel_size=kernel, stride=stride, padding=padding, pool=pool
    )
    seen = {}
    for name, block in model.named_children():
        if name.startswith("block"):
            block.conv.register_forward_hook(
                lambda m, i, o, n=name: seen.update({n + ".conv": o.shape[2:]})
            )
            block.register_forward_hook(lambda m, i, o, n=name: seen.update({n: o.shape[2:]}))
    model.eval()(torch.randn(2, *shape))
    spatial = shape[1:] if len(shape) == 3 else shape[:1]
    for i, (conv, pooled) in enumerate(
        plan_sizes(spatial, channels, kernel, stride, padding, pool), 1
    ):
        assert tuple(seen[f"block{i}.conv"]) == conv
        assert tuple(seen[f"block{i}"]) == pooled


def test_a_layer_that_would_shrink_below_one_fails_with_the_sizes_and_the_fix():
    with pytest.raises(UserError) as error:
        CNN((1, 8, 8), 10, channels=[8, 8, 8, 8], kernel_size=3, padding=0, pool="none")
    message = str(error.value)
    assert "conv layer 4" in message and "2x2 to 0x0" in message and "model.padding" in message
    assert "\n" not in message


# --- model / data mismatches ---------------------------------------------------------------


def _data(x_shape, y, task, n_classes=None):
    x = torch.randn(6, *x_shape)
    return Dataset("toy", task, x, y, x, y, x, y, n_classes=n_classes)


def test_cnn_on_flat_rows_names_a_model_that_can(run_dir):
    for data in ("data=sine", "data=diabetes"):
        with pytest.raises(UserError, match="model=cnn needs images .* use model=mlp"):
            train(run_dir, "model=cnn", data)


def test_one_output_per_example_on_per_step_labels_names_sequence_models():
    data = _data((10, 1), torch.randint(0, 2, (6, 10)), "binary")
    with pytest.raises(UserError, match="label per step .* model=gru, lstm, rnn or transformer"):
        build_model(compose("model=mlp").model, data)
    model = build_model(compose("model=gru").model, data)  # takes per_step from the data
    assert model(data.x_train).shape == (6, 10, 1)


def test_logistic_has_an_explicit_probability_head():
    x = torch.randn(4, 5)
    probs = Logistic((5,), 3)(x)
    assert torch.allclose(probs.sum(dim=1), torch.ones(4)) and (probs >= 0).all()
    p = Logistic((5,), 1)(x)
    assert ((p > 0) & (p < 1)).all()
    assert Logistic.outputs == "probabilities" and Linear.outputs == "logits"


# --- initialization ------------------------------------------------------------------------


def _first_weight(model):
    return next(m.weight for m in model.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize(
    ("init", "activation", "std"),
    [
        ("xavier", "tanh", math.sqrt(2 / (400 + 300))),
        ("kaiming", "relu", math.sqrt(2 / 400)),
        ("kaiming", "tanh", (5 / 3) / math.sqrt(400)),
        ("normal", "relu", 0.05),
        ("default", "relu", 1 / math.sqrt(3 * 400)),  # torch's U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    ],
)
def test_init_sets_the_weight_spread(init, activation, std):
    torch.manual_seed(0)
    model = MLP((400,), 2, hidden=[300], activation=activation, init=init, init_std=0.05)
    weight = _first_weight(model)
    assert weight.std().item() == pytest.approx(std, rel=0.03)
    assert abs(weight.mean().item()) < 0.1 * std
    if init != "default":
        assert (model[1].bias == 0).all()


def test_unknown_init_is_a_one_line_error():
    with pytest.raises(
        UserError, match="model.init=orthogonal is unknown; choose from: default, xavier"
    ):
        MLP((4,), 2, init="orthogonal")
