"""N-fold cross-validation: disjoint folds that cover the pool, one run per fold, the mean returned."""

import json

import numpy as np
import pytest
import torch
from conftest import FAST, compose

from dlrun.config import validate
from dlrun.data import Dataset
from dlrun.data.folds import cross_validation_folds, fold_indices
from dlrun.errors import UserError
from dlrun.runner import run_job

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("stratify", [True, False])
def test_fold_indices_are_disjoint_and_cover_the_pool(stratify):
    y = np.random.default_rng(0).integers(0, 3, size=101)
    folds = fold_indices(y, 5, seed=0, stratify=stratify)
    assert len(folds) == 5
    vals = [val for _, val in folds]
    assert sorted(np.concatenate(vals).tolist()) == list(range(101))  # cover, each index once
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == 101
    if stratify:  # every fold keeps the class shares within one example
        for val in vals:
            assert np.allclose(
                np.bincount(y[val], minlength=3) / len(val), np.bincount(y) / 101, atol=0.05
            )


def test_rare_classes_fall_back_to_plain_folds():
    y = np.array([0] * 20 + [1] * 2)  # class 1 cannot appear in all 5 folds
    folds = fold_indices(y, 5, seed=0, stratify=True)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(22))


def test_folds_of_a_dataset_partition_train_and_val_and_leave_test_alone():
    # each example's input is its id, so folds can be checked by id
    ids = torch.arange(60, dtype=torch.float32).unsqueeze(1)
    labels = torch.arange(60) % 3
    data = Dataset(
        name="ids",
        task="multiclass",
        x_train=ids[:45],
        y_train=labels[:45],
        x_val=ids[45:],
        y_val=labels[45:],
        x_test=-ids[:10],
        y_test=labels[:10],
        n_classes=3,
    )
    val_ids = []
    for fold in cross_validation_folds(data, 4, seed=0):
        train, val = set(fold.x_train[:, 0].tolist()), set(fold.x_val[:, 0].tolist())
        assert not train & val and train | val == set(range(60))
        assert torch.equal(fold.y_val, fold.x_val[:, 0].long() % 3)  # labels stay with inputs
        assert torch.bincount(fold.y_val).tolist() == [5, 5, 5]  # stratified
        assert fold.x_test is data.x_test and fold.y_test is data.y_test
        val_ids += fold.x_val[:, 0].tolist()
    assert sorted(val_ids) == list(range(60))


def test_cv_trains_one_run_per_fold_and_returns_the_mean(run_dir):
    cfg = compose(
        *FAST,
        "cv.folds=3",
        "data.n_train=150",
        "model.hidden=[16]",
        "diagnose=off",
        "trainer.threads=1",
        "trainer.checkpoint=false",
    )
    returned = run_job(cfg, run_dir=run_dir)
    result = json.loads((run_dir / "cv.json").read_text())
    assert result["folds"] == 3 and result["stratified"] is True
    per_fold = result["per_fold"]
    assert [f["fold"] for f in per_fold] == [0, 1, 2]
    size = per_fold[0]["n_train"] + per_fold[0]["n_val"]  # the train+val pool
    assert size > 150 and sum(f["n_val"] for f in per_fold) == size
    losses = [f["val_loss"] for f in per_fold]
    assert returned == pytest.approx(np.mean(losses))
    assert result["std"]["val_loss"] == pytest.approx(np.std(losses))
    assert result["mean"]["val_acc"] == pytest.approx(np.mean([f["val_acc"] for f in per_fold]))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["final"]["val_loss"] == summary["objective"] == pytest.approx(returned)
    for k in range(3):  # every fold is a complete run with its own TensorBoard log
        fold_summary = json.loads((run_dir / f"fold_{k}" / "summary.json").read_text())
        assert fold_summary["final"]["val_loss"] == pytest.approx(losses[k])
        assert list((run_dir / f"fold_{k}" / "tb").rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("override", ["cv.folds=1", "cv.folds=0"])
def test_fewer_than_two_folds_is_a_user_error(override):
    with pytest.raises(UserError, match="cv.folds"):
        validate(compose(override))
