"""`dlrun mode=eval trainer.resume=RUN` re-tests RUN's weights, and only writes eval-<time>.json."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import compose, dlrun_command, train

from dlrun.runner import run_job

QUICK = ["trainer.epochs=3", "diagnose=off"]


def _files(run) -> dict[str, str]:
    return {str(p.relative_to(run)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file()}


def _retest(run, trained: list[str], *overrides: str) -> dict:
    """In-process, as the CLI composes it: the run's own overrides (`trained`), then what
    this command types (the same key typed wins)."""
    typed = ["mode=eval", f"trainer.resume={run}", *overrides]
    keys = {t.split("=")[0] for t in typed}
    saved = [o for o in trained if o.split("=")[0] not in keys]
    before = set(run.glob("eval-*.json"))
    run_job(compose(*saved, *typed), run_dir=run, overrides=[*saved, *typed])
    (new,) = set(run.glob("eval-*.json")) - before
    return json.loads(new.read_text())


def test_eval_on_the_same_shift_matches_training_and_touches_nothing(tmp_path, one_thread):
    trained = [*QUICK, "data.test_shift=noise"]
    run = train(tmp_path / "run", *trained)
    final = json.loads((run / "summary.json").read_text())["final"]
    before = _files(run)
    record = _retest(run, trained, "checkpoint=last", "data.test_shift=noise")
    for key in ("train_loss", "val_loss", "test_loss", "train_acc", "test_acc"):
        assert record["metrics"][key] == pytest.approx(final[key], rel=1e-6)
    assert record["checkpoint"] == "last" and record["epoch"] == 3
    after = _files(run)
    assert {k: v for k, v in after.items() if not k.startswith("eval-")} == before

    # the unshifted test split: train and val are the same data, the test loss falls
    clean = _retest(run, trained, "checkpoint=last", "data.test_shift=null")
    assert clean["metrics"]["val_loss"] == pytest.approx(final["val_loss"], rel=1e-6)
    assert clean["metrics"]["test_loss"] < final["test_loss"] / 2
    assert "data.test_shift=null" in clean["changed"]


def test_eval_loads_the_best_weights_by_default(tmp_path, one_thread):
    trained = [*QUICK, "trainer.epochs=6", "optim.lr=0.05"]  # val loss wanders at this lr
    run = train(tmp_path / "run", *trained)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = min(rows, key=lambda r: r["val_loss"])
    record = _retest(run, trained)
    assert record["checkpoint"] == "best" and record["epoch"] == best["epoch"]
    assert record["metrics"]["val_loss"] == pytest.approx(best["val_loss"], rel=1e-6)


def test_eval_from_the_command_line_leaves_no_new_run(tmp_path):
    """The exact command form; a model that does not fit the data is one line, exit 2."""
    run = tmp_path / "run"
    trained = dlrun_command("trainer.epochs=1", "diagnose=off", "trainer.progress=off",
                            f"hydra.run.dir={run}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    before = _files(run)
    shown = dlrun_command("mode=eval", f"trainer.resume={run}", "data.test_shift=noise",
                          cwd=tmp_path, env={"COLUMNS": "120"})
    assert shown.returncode == 0, shown.stderr
    assert "dlrun eval" in shown.stdout and "data.test_shift=noise" in shown.stdout
    assert not (tmp_path / "outputs").exists()  # no new run directory
    (record,) = run.glob("eval-*.json")
    assert json.loads(record.read_text())["changed"] == ["data.test_shift=noise"]
    assert {k: v for k, v in _files(run).items() if not k.startswith("eval-")} == before

    wrong = dlrun_command("mode=eval", f"trainer.resume={run}", "data=iris", cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.startswith("dlrun: error: mode=eval")
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert len(list(run.glob("eval-*.json"))) == 1


def test_a_mismatch_check_re_tests_the_runs_own_weights(tmp_path):
    """The diagnosis's check for a mismatch is the mode=eval command on the run itself."""
    import shlex

    from dlrun.diagnose.context import run_context
    from dlrun.diagnose.map import Outcome
    from dlrun.diagnose.remedies import remedies
    from dlrun.records import Code, Finding, Verdict

    typed = ["data=moons", "data.test_shift=rotate"]
    ctx = run_context(compose(*typed), typed, input_rank=1, test_shift="rotate",
                      run_dir=tmp_path / "run")
    outcome = Outcome(Verdict.MISMATCH, None, [], [Finding(Code.MISMATCH, "", {})])
    _, (check,) = remedies(outcome, ctx)
    args = shlex.split(check.command)
    assert args[0] == "dlrun" and {
        "mode=eval", f"trainer.resume={tmp_path / 'run'}", "data.test_shift=null"} <= set(args)
    cfg = compose(*args[1:])
    assert cfg.mode == "eval" and cfg.data.test_shift is None
