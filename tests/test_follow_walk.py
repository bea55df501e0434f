"""The walk over stub runs: prepared diagnoses and summaries stand in for training, so every
stopping rule, the choice of the next base and the never-followed remedies are checked
exactly (the real walk is tests/test_follow.py)."""

from __future__ import annotations

import math

import pytest

from dlrun import overrides as ov
from dlrun.follow.commands import canonical, remedy_overrides
from dlrun.follow.measurement import MEASUREMENT_KNOBS, measured_keys
from dlrun.follow.outcome import outcome_of
from dlrun.follow.path import Run, Stop
from dlrun.follow.walk import Settings, walk
from dlrun.records import Diagnosis, EpochRow, Remedy, Summary, Verdict

START = ["experiment=overfitting"]


def remedy(base: list[str], *changes: str) -> Remedy:
    return Remedy(f"set {' '.join(changes)}", ov.command(ov.merge(base, list(changes))))


class World:
    """Runs by their overrides: what each one's summary and diagnosis say. Unknown runs fail."""

    def __init__(self):
        self.runs: dict[tuple, tuple[Summary, Diagnosis | None]] = {}
        self.batches: list[list[list[str]]] = []

    def add(self, overrides: list[str], verdict: Verdict | None, train=0.1, val=0.1, test=0.1,
            remedies: list[list[str]] = (), objective=None, status="ok", error=None) -> list[str]:
        row = EpochRow(epoch=5, splits={"train": {"loss": train}, "val": {"loss": val},
                                        "test": {"loss": test}})
        summary = Summary(status=status, final=row, objective=val if objective is None else objective,
                          error=error, wall_time_s=1.0)
        diagnosis = None if verdict is None else Diagnosis(
            verdict, remedies=[remedy(overrides, *changes) for changes in remedies])
        self.runs[canonical(overrides)] = (summary, diagnosis)
        return overrides

    def launch(self, batch: list[list[str]]) -> list[Run]:
        self.batches.append(batch)
        first = sum(len(b) for b in self.batches[:-1])
        runs = []
        for i, overrides in enumerate(batch):
            summary, diagnosis = self.runs.get(
                canonical(overrides), (Summary(status="failed", error="unexpected run"), None))
            runs.append(Run(first + i, list(overrides), outcome_of(summary, diagnosis)))
        return runs

    @property
    def launched(self) -> list[list[str]]:
        return [o for batch in self.batches for o in batch]


def test_a_good_run_needs_no_walk():
    world = World()
    world.add(START, Verdict.GOOD)
    path = walk(START, world.launch, Settings())
    assert path.stop == Stop.GOOD and path.rounds == [] and len(world.launched) == 1
    assert path.best is path.start


def test_the_walk_follows_the_best_of_each_batch_until_good():
    world = World()
    world.add(START, Verdict.OVERFITTING, train=0.01, val=1.0,
              remedies=[["data.n_train=null"], ["reg=[l2]"], ["model.hidden=[32,32]"], ["reg=[dropout]"]])
    a = world.add([*START, "data.n_train=null"], Verdict.OVERFITTING, val=0.5, remedies=[["reg=[l2]"]])
    world.add([*START, "reg=[l2]"], Verdict.OVERFITTING, val=0.7)
    world.add([*START, "model.hidden=[32,32]"], Verdict.OVERFITTING, val=1.2)  # worse
    world.add([*a, "reg=[l2]"], Verdict.GOOD, val=0.2)
    path = walk(START, world.launch, Settings(width=3))
    assert path.stop == Stop.GOOD and len(path.rounds) == 2
    assert [len(b) for b in world.batches] == [1, 3, 1]  # the width: 3 of the 4 remedies
    assert path.rounds[0].chosen.overrides == a  # the lowest val loss of the overfitting branch
    assert path.best.overrides == [*a, "reg=[l2]"] and path.best.changes == ["reg=[l2]"]
    assert path.to_json()["reached_good"] and path.to_json()["best_job"] == 4


def test_each_branch_is_judged_by_its_own_quantity():
    world = World()
    world.add(START, Verdict.MODEL_BIAS, train=1.0, remedies=[["model=mlp"], ["model=cnn"]])
    # lower val loss but higher train loss: model bias is judged on the training loss
    world.add([*START, "model=mlp"], Verdict.MODEL_BIAS, train=0.6, val=0.9)
    world.add([*START, "model=cnn"], Verdict.MODEL_BIAS, train=0.8, val=0.1)
    path = walk(START, world.launch, Settings(rounds=1))
    assert path.rounds[0].quantity == "train" and path.rounds[0].chosen.overrides[-1] == "model=mlp"
    assert path.stop == Stop.ROUNDS and "not good after 1 round" in path.reason


def test_ties_on_the_quantity_go_to_the_lower_objective_and_a_good_run_wins():
    world = World()
    world.add(START, Verdict.MISMATCH, test=5.0, remedies=[["a.x=1"], ["a.x=2"], ["a.x=3"]])
    world.add([*START, "a.x=1"], Verdict.MISMATCH, test=1.0, objective=0.5)
    world.add([*START, "a.x=2"], Verdict.MISMATCH, test=1.0, objective=0.3)
    world.add([*START, "a.x=3"], Verdict.GOOD, test=2.0)  # worse test loss, but good
    path = walk(START, world.launch, Settings())
    assert path.stop == Stop.GOOD and path.best.overrides[-1] == "a.x=3"
    world = World()
    world.add(START, Verdict.MISMATCH, test=5.0, remedies=[["a.x=1"], ["a.x=2"]])
    world.add([*START, "a.x=1"], Verdict.MISMATCH, test=1.0, objective=0.5)
    world.add([*START, "a.x=2"], Verdict.MISMATCH, test=1.0, objective=0.3)
    path = walk(START, world.launch, Settings(rounds=1))
    assert path.rounds[0].chosen.overrides[-1] == "a.x=2"


def test_a_held_out_remedy_that_loses_the_training_fit_ranks_after_one_that_keeps_it():
    """parity-mlp-noise: noise augmentation left every split at the constant predictor's
    loss, whose test loss beat the shifted-data remedy's; the walk must not trade the
    training fit for a held-out number."""
    world = World()
    world.add(START, Verdict.MISMATCH, train=0.01, test=0.94, remedies=[["a.x=1"], ["a.x=2"]])
    world.add([*START, "a.x=1"], Verdict.MODEL_BIAS, train=0.69, test=0.69)
    world.add([*START, "a.x=2"], Verdict.MISMATCH, train=0.02, test=0.81)
    path = walk(START, world.launch, Settings(rounds=1))
    assert path.rounds[0].chosen.overrides[-1] == "a.x=2"


def test_stuck_when_no_remedy_lowers_the_quantity_and_it_says_what_was_tried():
    world = World()
    world.add(START, Verdict.OVERFITTING, val=0.5, remedies=[["reg=[l2]"], ["reg=[dropout]"]])
    world.add([*START, "reg=[l2]"], Verdict.OVERFITTING, val=0.6)
    world.add([*START, "reg=[dropout]"], Verdict.OVERFITTING, val=0.55)
    path = walk(START, world.launch, Settings())
    assert path.stop == Stop.STUCK and path.best is path.start
    assert path.reason.startswith("stuck at overfitting: the remedies tried were set reg=[l2]")
    assert "the best reached val loss 0.55" in path.reason and "0.5 for #0" in path.reason


def test_a_failed_remedy_is_recorded_and_skipped():
    world = World()
    world.add(START, Verdict.OPTIMIZATION, train=2.0, remedies=[["optim.lr=10"], ["optim=adam"]])
    world.add([*START, "optim.lr=10"], None, status="failed", error="the loss became nan",
              train=math.nan)
    world.add([*START, "optim=adam"], Verdict.GOOD, train=0.1)
    path = walk(START, world.launch, Settings())
    failed = path.rounds[0].tried[0]
    assert not failed.outcome.ok and failed.outcome.error == "the loss became nan"
    assert path.stop == Stop.GOOD and path.best.overrides[-1] == "optim=adam"
    assert path.to_json()["rounds"][0]["tried"][0]["status"] == "failed"
    # every remedy failing is being stuck
    world = World()
    world.add(START, Verdict.OPTIMIZATION, train=2.0, remedies=[["optim.lr=10"]])
    path = walk(START, world.launch, Settings())
    assert path.stop == Stop.STUCK and "none of them finished" in path.reason


def test_measurement_remedies_are_never_launched():
    world = World()
    world.add(START, Verdict.MISMATCH, test=5.0, remedies=[
        ["data.test_shift=null"], ["diagnose.escape_saddle=true"], ["cv.folds=5"],
        ["data.test_fraction=0.05"], ["loss=mae"], ["data=iris"], ["data.train_shift_fraction=0.3"]])
    world.add([*START, "data.train_shift_fraction=0.3"], Verdict.MISMATCH, test=6.0)
    path = walk(START, world.launch, Settings(width=3))
    launched = [o for run in world.launched for o in run]
    for knob in ("data.test_shift", "diagnose", "cv", "data.test_fraction", "loss", "data="):
        assert not any(o.startswith(knob) for o in launched), knob
    assert len(path.rounds[0].skipped) == 6 and path.stop == Stop.STUCK
    assert all("changes what is measured" in s.reason for s in path.rounds[0].skipped)


def test_no_remedy_left_and_no_repeats():
    world = World()
    world.add(START, Verdict.OVERFITTING, val=1.0, remedies=[["reg=[l2]"]])
    world.add([*START, "reg=[l2]"], Verdict.OVERFITTING, val=0.5,
              remedies=[["data.test_shift=null"]])  # only a check-like remedy is left
    path = walk(START, world.launch, Settings())
    assert path.stop == Stop.NO_REMEDY and "no remedy of #1" in path.reason
    world = World()
    world.add(START, Verdict.OVERFITTING, val=1.0, remedies=[["reg=[l2]"]])
    world.add([*START, "reg=[l2]"], Verdict.OVERFITTING, val=0.5, remedies=[["reg=[l2]"]])
    path = walk(START, world.launch, Settings())  # the same run again: already run, not relaunched
    assert path.stop == Stop.NO_REMEDY and path.rounds[1].skipped[0].reason == "already run as #1"


def test_the_budget_stops_the_walk_between_rounds():
    world = World()
    world.add(START, Verdict.OVERFITTING, val=1.0, remedies=[["reg=[l2]"]])
    world.add([*START, "reg=[l2]"], Verdict.OVERFITTING, val=0.5, remedies=[["reg=[dropout]"]])
    ticks = iter(range(0, 1000, 10))  # every look at the clock: 10 s later
    path = walk(START, world.launch, Settings(budget=15), clock=lambda: next(ticks))
    assert path.stop == Stop.BUDGET and len(path.rounds) == 1
    assert path.reason.startswith("follow.budget=15 s spent") and "#1 overfitting" in path.reason


def test_a_failed_or_unplaced_start_ends_the_walk():
    world = World()
    world.add(START, None, status="failed", error="data.n_train=0 is out of range")
    path = walk(START, world.launch, Settings())
    assert path.stop == Stop.FAILED and "data.n_train=0" in path.reason
    world = World()
    world.add(START, Verdict.INCONCLUSIVE)
    assert walk(START, world.launch, Settings()).stop == Stop.UNPLACED


def test_the_measurement_knobs_live_in_one_place():
    assert "data.test_shift" in MEASUREMENT_KNOBS and "diagnose" in MEASUREMENT_KNOBS
    assert measured_keys(["data.test_shift=null", "reg=[l2]"]) == ["data.test_shift"]
    assert measured_keys(["diagnose.escape_saddle=true"]) == ["diagnose.escape_saddle"]
    assert measured_keys(["data.n_train=null", "data.train_shift_fraction=0.3", "model=cnn"]) == []


def test_a_remedy_command_becomes_overrides_without_flags_or_the_walk_s_own_keys():
    command = "dlrun -cd /my/conf follow=on follow.width=2 experiment=x 'model.hidden=[64, 64]'"
    assert remedy_overrides(command) == ["experiment=x", "model.hidden=[64, 64]"]


@pytest.mark.parametrize("width", [1, 2])
def test_the_width_caps_each_batch(width):
    world = World()
    world.add(START, Verdict.OVERFITTING, val=1.0, remedies=[["a.x=1"], ["a.x=2"], ["a.x=3"]])
    walk(START, world.launch, Settings(width=width, rounds=1))
    assert len(world.batches[1]) == width
