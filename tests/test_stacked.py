"""A job trained in a stack gives its solo run's epochs: the same metrics to float rounding.

Each test trains a few jobs as one stack and each job alone (dlrun.train.fit), and compares
every split's loss and metric in every epoch. The solo runs use torch's for-loop optimizer,
whose arithmetic the stack follows; one test uses the fused kernel a solo run picks on a
CPU. Measured differences are 1e-7 to 4e-7 relative (float32 rounding of sums); TOLERANCE
leaves a decade and a half above that, far below what any wrong batch, weight or update
would change.
"""

from __future__ import annotations

import pytest
import torch
from stacked_helpers import configs, largest_difference, solo_rows, stack_job, stacked_rows

from dlrun.train.stacked import Stack, fit_stack

TOLERANCE = 1e-5
SMALL = ["data.n_train=300", "trainer.epochs=3"]
OPTIMIZERS = ["gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "nadam",
              "adadelta"]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """One thread: the same kernels' rounding in the stack and in the solo runs."""


def assert_each_job_matches_its_solo_run(common, variants, loop_optimizer=True) -> list[list[dict]]:
    cfgs = configs(common, variants)
    rows, _ = stacked_rows(cfgs)
    for cfg, ours, variant in zip(cfgs, rows, variants):
        solo = solo_rows(cfg, loop_optimizer)
        assert len(ours) == len(solo), variant
        assert largest_difference(ours, solo) < TOLERANCE, variant
        assert [r["lr"] for r in ours] == pytest.approx([r["lr"] for r in solo], rel=1e-12), variant
    return rows


@pytest.mark.parametrize("optim", OPTIMIZERS)
def test_each_optimizer_with_per_job_learning_rates_and_seeds(optim):
    lr = "optim.lr=0.05" if optim in ("gd", "sgd", "adadelta") else "optim.lr=0.003"
    assert_each_job_matches_its_solo_run([*SMALL, f"optim={optim}"], [[], [lr, "trainer.seed=1"]])


def test_against_the_fused_kernel_a_solo_run_uses():
    assert_each_job_matches_its_solo_run(
        SMALL, [[], ["optim.lr=0.003", "optim.weight_decay=0.01"]], loop_optimizer=False)


def test_cnn_with_batch_norm_and_the_mnist1d_cnn():
    assert_each_job_matches_its_solo_run(["data.n_train=300", "trainer.epochs=2", "model=cnn"],
                                         [[], ["optim.lr=0.01", "trainer.seed=1"]])
    assert_each_job_matches_its_solo_run(
        ["data=mnist1d", "experiment=mnist1d_cnn", "data.n_train=500", "trainer.epochs=2"],
        [[], ["optim.lr=0.003", "trainer.seed=2"]])


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_recurrent_models(model):
    extra = ["model.num_layers=2", "model.bidirectional=true"] if model == "lstm" else []
    assert_each_job_matches_its_solo_run(
        ["data=mnist1d", f"model={model}", "model.hidden_size=16", "data.n_train=200",
         "trainer.epochs=2", "trainer.batch_size=100", *extra],
        [[], ["optim.lr=0.003", "trainer.seed=3"]])


def test_per_job_penalties_and_gradient_clipping():
    assert_each_job_matches_its_solo_run(
        [*SMALL, "optim=sgd"], [["reg=l2"], ["reg=l1", "trainer.grad_clip=0.5"], ["reg=elastic"]])
    assert_each_job_matches_its_solo_run(
        [*SMALL, "optim=sgd", "trainer.grad_clip_mode=value"],
        [["trainer.grad_clip=0.1"], ["trainer.grad_clip=0.05", "reg=l2"], []])


@pytest.mark.parametrize("sched", ["onecycle", "warmup_cosine", "plateau", "step"])
def test_schedules_step_per_job(sched):
    extra = ["sched.patience=0"] if sched == "plateau" else ["sched.step_size=1"] if sched == "step" else []
    assert_each_job_matches_its_solo_run([*SMALL, f"sched={sched}", *extra],
                                         [[], ["optim.lr=0.01", "trainer.seed=4"]])


def test_regression_and_binary_tasks():
    assert_each_job_matches_its_solo_run(["data=diabetes", "trainer.epochs=2"], [[], ["optim.lr=0.01"]])
    assert_each_job_matches_its_solo_run(["data=moons", "model=logistic", "trainer.epochs=2"],
                                         [[], ["optim.lr=0.01"]])


def test_per_job_label_noise_and_early_stopping():
    rows = assert_each_job_matches_its_solo_run(
        ["data.n_train=300", "trainer.epochs=6", "reg=early_stopping", "reg.early_stopping.patience=1",
         "optim.lr=0.05"],
        [[], ["optim.lr=0.03", "data.label_noise=0.2"]])
    assert min(len(r) for r in rows) < 6  # a job stopped early and left the stack

def test_dropout_per_job():
    """Masks are drawn for the whole stack, so a job with dropout trains on other masks than
    alone (close in distribution only), while a job without dropout is unaffected."""
    cfgs = configs(SMALL, [[], ["reg=dropout"]])
    rows, _ = stacked_rows(cfgs)
    assert largest_difference(rows[0], solo_rows(cfgs[0])) < TOLERANCE
    alone = solo_rows(cfgs[1])
    assert largest_difference(rows[1], alone) > TOLERANCE  # other masks
    assert rows[1][-1]["val_loss"] == pytest.approx(alone[-1]["val_loss"], rel=0.1)


def test_a_non_finite_job_leaves_the_stack_and_the_others_train_on_unchanged(tmp_path):
    cfgs = configs([*SMALL, "optim=sgd"], [[], ["optim.lr=1e6"], ["optim.lr=0.05"]])
    rows, jobs = stacked_rows(cfgs, [tmp_path / str(i) for i in range(3)])
    assert rows[1][-1]["non_finite"] is True and len(rows[1]) < 3
    for i in (0, 2):
        assert len(rows[i]) == 3 and largest_difference(rows[i], solo_rows(cfgs[i])) < TOLERANCE
    # its last.pt holds the last finite state: the epoch before the loss blew up (epoch 0: initial)
    state = torch.load(tmp_path / "1" / "last.pt", weights_only=True)
    assert state["epoch"] == len(rows[1]) - 1
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_a_stop_request_ends_the_stack_at_the_epochs_end_with_every_checkpoint(tmp_path):
    """Ctrl-C (the flag StopOnSignal sets) is read at an epoch's end: every job's last.pt then
    holds that epoch, as a solo run's holds its last completed one."""
    cfgs = configs(SMALL, [[], ["optim.lr=0.01"]])
    jobs = [stack_job(cfg, tmp_path / str(i)) for i, cfg in enumerate(cfgs)]
    epochs = [rows for rows in fit_stack(Stack(jobs, cfgs[0].trainer), trainer=cfgs[0].trainer,
                                         should_stop=lambda: True)]
    assert len(epochs) == 1
    for i in range(2):
        last = torch.load(tmp_path / str(i) / "last.pt", weights_only=True)
        assert last["epoch"] == 1 and last["optimizer"]["state"][0]["step"] == 5


def test_checkpoint_every_writes_as_it_goes(tmp_path):
    cfgs = configs(SMALL, [[], ["optim.lr=0.01"]])
    jobs = [stack_job(cfg, tmp_path / str(i)) for i, cfg in enumerate(cfgs)]
    seen = []
    for _ in fit_stack(Stack(jobs, cfgs[0].trainer), trainer=cfgs[0].trainer, checkpoint_every=1):
        path = tmp_path / "1" / "last.pt"
        seen.append(torch.load(path, weights_only=True)["epoch"] if path.exists() else None)
    assert seen == [None, 1, 2]  # read before each epoch's own write
