"""Fast paths that run on the CPU: autocast, loss scaling, torch.compile, static batch shapes, threads."""

import json

import pytest
import torch
from conftest import compose, train

from dlrun.data.batches import shuffled_batches
from dlrun.errors import UserError
from dlrun.records import read_rows
from dlrun.train import accel

CPU = torch.device("cpu")


def test_autocast_selects_the_requested_dtype():
    x, w = torch.randn(4, 8), torch.randn(8, 3)
    with accel.autocast(CPU, "bf16")():
        assert (x @ w).dtype == torch.bfloat16
    with accel.autocast(CPU, "32")():
        assert (x @ w).dtype == torch.float32


def test_loss_scaling_only_for_fp16():
    assert accel.grad_scaler(CPU, "fp16").is_enabled()
    assert not accel.grad_scaler(CPU, "bf16").is_enabled()
    assert not accel.grad_scaler(CPU, "32").is_enabled()


def test_bf16_training_tracks_fp32(tmp_path):
    rows = {}
    for precision in ("32", "bf16"):
        run = train(tmp_path / precision, f"trainer.precision={precision}", "data.n_train=400",
                    "trainer.epochs=3", "diagnose=off")
        rows[precision] = read_rows(run / "metrics.jsonl")[-1]
    assert rows["bf16"].loss("train") == pytest.approx(rows["32"].loss("train"), rel=0.1)


def test_unknown_precision_is_a_range_error():
    from dlrun.config import validate

    with pytest.raises(UserError, match="trainer.precision=16 is out of range"):
        validate(compose("trainer.precision=16"))


def test_drop_last_keeps_every_batch_the_same_shape():
    x, y = torch.arange(103.0).unsqueeze(1), torch.arange(103)
    gen = torch.Generator().manual_seed(0)
    sizes = [len(xb) for xb, _ in shuffled_batches(x, y, 10, gen, drop_last=True)]
    assert sizes == [10] * 10
    sizes = [len(xb) for xb, _ in shuffled_batches(x, y, 10, gen, drop_last=False)]
    assert sizes == [10] * 10 + [3]


@pytest.mark.parametrize("gather_bytes", [1, 8 * 30, 2**30])  # a batch, 3 batches, all at once
@pytest.mark.parametrize("drop_last", [False, True])
def test_batches_gathered_in_blocks_are_the_permutations_batches(monkeypatch, gather_bytes, drop_last):
    """However many batches one gather copies, the batches are those of one randperm, in order."""
    monkeypatch.setattr("dlrun.data.batches.GATHER_BYTES", gather_bytes)
    x, y = torch.arange(103.0).unsqueeze(1), torch.arange(103)  # 8 bytes a row
    order = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    batches = list(shuffled_batches(x, y, 10, torch.Generator().manual_seed(0), drop_last))
    assert len(batches) == (10 if drop_last else 11)
    for i, (xb, yb) in enumerate(batches):
        expected = order[10 * i : 10 * i + 10]
        assert torch.equal(yb, expected) and torch.equal(xb.squeeze(1), expected.float())


def test_compiled_and_eager_training_give_the_same_losses(tmp_path):
    common = ["data=sine", "data.n=300", "model.hidden=[16]", "trainer.epochs=2",
              "trainer.drop_last=true", "diagnose=off"]
    eager = read_rows(train(tmp_path / "eager", *common) / "metrics.jsonl")
    compiled = read_rows(train(tmp_path / "compiled", *common, "trainer.compile=true") / "metrics.jsonl")
    for a, b in zip(eager, compiled):
        assert b.loss("train") == pytest.approx(a.loss("train"), rel=1e-4, abs=1e-6)
        assert b.loss("val") == pytest.approx(a.loss("val"), rel=1e-4, abs=1e-6)


def test_threads_split_among_parallel_jobs():
    from dlrun.train.threads import THREADED_STEP_FLOPS, cores_available, default_threads

    cores = default_threads(THREADED_STEP_FLOPS, cores_available(), 1)  # a large step
    assert default_threads(THREADED_STEP_FLOPS, cores_available(), 2) == max(1, cores // 2)
    assert default_threads(THREADED_STEP_FLOPS, cores_available(), 10 * cores) == 1


def test_summary_records_threads_and_peak_memory(run_dir):
    train(run_dir, "trainer.threads=1", "diagnose=off", "data.n_train=200")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["threads"] == 1
    assert summary["host_peak_mb"] > 50


def test_evaluation_never_recompiles_the_training_step(tmp_path):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    train(tmp_path, "data=sine", "data.n=300", "model.hidden=[16]", "trainer.epochs=2",
          "trainer.compile=true", "diagnose=off")
    assert counters["stats"]["unique_graphs"] == 1  # the training forward, at one batch shape


def test_diagnosis_off_skips_gradient_norms_unless_clipping_needs_them(tmp_path):
    common = ["data.n_train=200", "trainer.epochs=2"]
    off = read_rows(train(tmp_path / "off", *common, "diagnose=off") / "metrics.jsonl")
    assert all("grad_norm" not in row.to_json() for row in off)
    clipped = read_rows(train(tmp_path / "clip", *common, "diagnose=off", "trainer.grad_clip=1.0")
                        / "metrics.jsonl")
    assert all(row.grad_norm > 0 for row in clipped)
    on = read_rows(train(tmp_path / "on", *common) / "metrics.jsonl")
    assert on[0].grad_norm > 0


@pytest.mark.parametrize("batch", ["64", "null"])  # 4 steps an epoch; 1 (full batch)
def test_gradient_norms_are_sampled_every_16_steps_and_at_least_every_4_epochs(tmp_path, batch):
    rows = read_rows(train(tmp_path, "data.n_train=200", f"trainer.batch_size={batch}",
                              "trainer.epochs=9") / "metrics.jsonl")
    assert [row.epoch for row in rows if row.grad_norm is not None] == [1, 5, 9]
    assert all(row.grad_norm > 0 for row in rows if row.grad_norm is not None)


def test_activation_bytes_count_every_leaf_output_of_one_example():
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).train()
    assert accel.activation_bytes(mlp, torch.zeros(50, 4)) == (8 + 8 + 2) * 4
    assert mlp.training  # left as it was found
    lstm = torch.nn.LSTM(3, 5, batch_first=True)  # outputs (1, 7, 5), state h and c (1, 1, 5)
    assert accel.activation_bytes(lstm, torch.zeros(50, 7, 3)) == (7 * 5 + 5 + 5) * 4


def test_evaluation_chunk_follows_the_device_and_the_activations_unless_set():
    trainer = compose().trainer
    mlp, rows = torch.nn.Sequential(torch.nn.Linear(40, 100), torch.nn.ReLU()), torch.zeros(9, 40)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU())
    images = torch.zeros(9, 3, 32, 32)  # 2 x 128 KiB of activations a row
    assert accel.eval_batch_size(trainer, CPU, mlp, rows) == 512  # the cap
    assert accel.eval_batch_size(trainer, CPU, conv, images) == 32  # 8 MiB / 256 KiB
    assert accel.eval_batch_size(trainer, torch.device("cuda"), conv, images) == 8192
    chosen = compose("trainer.eval_batch_size=100").trainer
    assert accel.eval_batch_size(chosen, CPU, conv, images) == 100


def test_global_gradient_norm_matches_torch():
    from dlrun.train.bookkeeping import global_norm

    tensors = [torch.randn(40, 100), torch.randn(100), torch.randn(10, 100, dtype=torch.bfloat16)]
    expected = torch.nn.utils.get_total_norm(tensors)
    assert global_norm(tensors).item() == pytest.approx(expected.item(), rel=1e-3)
