"""The records keep the run-directory files key for key (DESIGN.md section 3)."""

from __future__ import annotations

import json

import pytest
from conftest import train
from run_shapes import EXAMPLES, RUNS, UNCUT, run_shapes

from dlrun.records import Code, Diagnosis, EpochRow, Summary, Verdict, best_row


def _same(stored, now, where="") -> list[str]:
    """Differences between two shapes; null stands for any kind (an optional field)."""
    if isinstance(stored, dict) and isinstance(now, dict):
        diffs = [f"{where}.{k}: missing" for k in stored if k not in now]
        diffs += [f"{where}.{k}: new" for k in now if k not in stored]
        for k in stored.keys() & now.keys():
            diffs += _same(stored[k], now[k], f"{where}.{k}")
        return diffs
    if isinstance(stored, list) and isinstance(now, list):
        return [d for a, b in zip(stored, now) for d in _same(a, b, where + "[0]")]
    kinds = {stored, now} if isinstance(stored, str) and isinstance(now, str) else None
    if stored == now or "any" in (kinds or ()) or "null" in (kinds or ()):
        return []
    return [f"{where}: {stored} -> {now}"]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_run_files_keep_their_keys(name, tmp_path, one_thread):
    stored = json.loads((EXAMPLES / f"{name}.json").read_text())
    now = run_shapes(train(tmp_path / "run", *RUNS[name], *UNCUT))
    assert _same(stored, now) == []


def test_an_epoch_row_round_trips_its_flat_keys_in_order():
    flat = {"epoch": 3, "train_loss": 0.5, "train_acc": 0.9, "val_loss": 0.7, "val_acc": 0.8,
            "test_loss": 0.75, "test_acc": 0.8, "lr": 0.01, "batch_loss": 0.55,
            "grad_norm": 1.5, "steps": 18, "best_epoch": 2, "hessian_max": 3.0,
            "hessian_min": -0.1, "from_another_tool": "kept"}
    row = EpochRow.from_json(flat)
    assert row.loss("val") == 0.7 and row.metric("train", "acc") == 0.9
    assert row.metric_names() == ["acc"]
    assert list(row.to_json().items()) == list(flat.items())


def test_a_non_finite_row_is_written_with_nulls_and_its_flag():
    row = EpochRow(epoch=1, splits={s: {"loss": float("nan")} for s in ("train", "val", "test")},
                   lr=1.0, batch_loss=float("inf"), steps=2, best_epoch=0, non_finite=True)
    data = row.to_json()
    assert data["train_loss"] is None and data["batch_loss"] is None and data["non_finite"] is True
    assert not EpochRow.from_json(data).finite


def test_the_best_epoch_is_the_lowest_finite_validation_loss():
    rows = [EpochRow(epoch=e, splits={"val": {"loss": v}}) for e, v in [(1, 0.5), (2, None), (3, 0.4)]]
    rows.append(EpochRow(epoch=4, splits={"val": {"loss": 0.1}}, non_finite=True))
    assert best_row(rows).epoch == 3
    assert best_row([]) is None


def test_a_summary_writes_only_the_fields_its_kind_of_run_has():
    cv = Summary(status="ok", mode="cv", run_dir="r", final=EpochRow(splits={"val": {"loss": 0.2}}),
                 objective=0.2, cv={"folds": 2}, wall_time_s=1.0)
    data = cv.to_json()
    assert list(data) == ["status", "run_dir", "final", "best", "wall_time_s", "mode", "cv",
                          "objective"]
    assert data["final"] == {"val_loss": 0.2} and data["best"] == {}
    back = Summary.from_json({**data, "added_by_a_tool": 1})
    assert back.final.loss("val") == 0.2 and back.best is None
    assert back.to_json()["added_by_a_tool"] == 1


def test_a_diagnosis_round_trips_with_its_codes_typed():
    data = {"verdict": "optimization", "stuck": "saddle_point",
            "findings": [{"code": "saddle_point", "message": "m", "evidence": {"x": 1}}],
            "remedies": [{"action": "a", "command": "dlrun optim=adam"}],
            "checks": [],
            "path": [{"node": "train_large", "answer": "yes", "because": "b", "evidence": {}}],
            "evidence": {"params": 3, "history": {"epochs": 2, "nonfinite_epoch": None, **{
                k: None for k in ("window", "fall_rate", "rise_fraction", "still_falling",
                                  "oscillating", "stalled")}},
                         "test_shift": None},
            "cost": {"total_s": 0.1}}
    d = Diagnosis.from_json(data)
    assert d.verdict is Verdict.OPTIMIZATION and d.stuck is Code.SADDLE_POINT
    assert d.has(Code.SADDLE_POINT) and not d.has(Code.GOOD)
    assert d.to_json() == data
