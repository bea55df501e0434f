"""The diagnosis benchmark: runs nobody designed the rules for, each with the verdict it
should get and a check that the run behaved as intended, then (optionally) the first
remedy of every non-`good` scenario, run as printed.

    python scripts/diagnosis_bench.py                  # every scenario, with remedies
    python scripts/diagnosis_bench.py --no-remedies    # verdicts only
    python scripts/diagnosis_bench.py --only moons     # scenarios whose name contains "moons"
    python scripts/diagnosis_bench.py --fast           # the subset the test suite runs

A scenario whose behaviour check fails is a broken scenario (the run did not do what it
was written to show), not a diagnosis error: it is reported apart and left out of the
score. A remedy "moves the run toward good" when it lowers the quantity its branch names
(train loss for model bias and optimization, val loss for overfitting, test loss for
mismatch) by at least 10%, or makes a non-finite one finite. Results go to scripts/bench-results/diagnosis-<date>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "scripts" / "bench-results"
BRANCHES = ("good", "model_bias", "optimization", "overfitting", "mismatch")
QUANTITY = {"model_bias": "train_loss", "optimization": "train_loss",
            "overfitting": "val_loss", "mismatch": "test_loss"}
QUIET = ("trainer.progress=off", "trainer.checkpoint=false")


@dataclass(frozen=True)
class Check:
    """One condition on the final epoch's metrics: `key op value`, or `key > factor x other`."""

    key: str
    op: str  # ">=", "<=", "x>" (key exceeds factor times `other`)
    value: float
    other: str | None = None

    def holds(self, row: dict) -> bool:
        have = row.get(self.key)
        if have is None:
            return False
        if self.op == ">=":
            return have >= self.value
        if self.op == "<=":
            return have <= self.value
        base = row.get(self.other)
        return base is not None and have > self.value * base

    def __str__(self) -> str:
        if self.op == "x>":
            return f"{self.key} > {self.value:g} x {self.other}"
        return f"{self.key} {self.op} {self.value:g}"


def at_least(key, value):
    return Check(key, ">=", value)


def at_most(key, value):
    return Check(key, "<=", value)


def times(key, factor, other):
    return Check(key, "x>", factor, other)


@dataclass(frozen=True)
class Scenario:
    name: str
    family: str  # the dataset family
    verdict: str  # what the diagnosis should say
    overrides: tuple[str, ...]
    checks: tuple[Check, ...]  # the run behaved as intended
    fast: bool = False  # part of the test suite's subset


def S(name, family, verdict, overrides, *checks, fast=False):
    return Scenario(name, family, verdict, tuple(overrides.split()), checks, fast)


SCENARIOS = [
    # --- good ---------------------------------------------------------------------------
    S("digits-mlp", "digits", "good", "experiment=good", at_least("val_acc", 0.95), fast=True),
    S("moons-mlp-noisy-sgd", "synthetic 2-D", "good",
      "model=mlp data=moons optim=sgd optim.lr=0.25 trainer.epochs=15 trainer.seed=6",
      at_least("val_acc", 0.9), at_least("train_acc", 0.9)),
    S("iris-logistic", "tables", "good",
      "model=logistic data=iris optim.lr=0.05 trainer.epochs=60", at_least("val_acc", 0.9)),
    S("sine-mlp", "sine", "good", "data=sine model.hidden=[64,64] optim.lr=0.01 trainer.epochs=60",
      at_least("val_r2", 0.95)),
    S("parity-lstm-per-step", "sequences", "good",
      "model=lstm data=parity data.per_step=true data.length=16 optim.lr=0.01 trainer.epochs=20",
      at_least("val_acc", 0.97)),
    S("breast-cancer-mlp", "tables", "good", "data=breast_cancer model.hidden=[64] trainer.epochs=30",
      at_least("val_acc", 0.93)),
    S("circles-mlp", "synthetic 2-D", "good", "data=circles model.hidden=[64,64] trainer.epochs=40",
      at_least("val_acc", 0.95)),
    S("reverse-transformer", "seq2seq", "good",
      "data=reverse data.length=5 data.n=1500 model=transformer optim.lr=0.003 trainer.epochs=15",
      at_least("val_exact", 0.9)),
    S("mnist1d-cnn", "mnist1d", "good",
      "experiment=mnist1d_cnn trainer.epochs=40", at_least("val_acc", 0.85)),
    # --- model bias ---------------------------------------------------------------------
    S("sine-linear", "sine", "model_bias", "experiment=model_bias", at_most("train_r2", 0.8),
      fast=True),
    S("sine-linear-seed3", "sine", "model_bias", "model=linear data=sine trainer.seed=3",
      at_most("train_r2", 0.8)),
    S("circles-logistic", "synthetic 2-D", "model_bias",
      "model=logistic data=circles optim.lr=0.05 trainer.epochs=30", at_most("train_acc", 0.75)),
    S("spirals-linear", "synthetic 2-D", "model_bias",
      "model=linear data=spirals optim.lr=0.05 trainer.epochs=30", at_most("train_acc", 0.7)),
    S("spirals-bottleneck", "synthetic 2-D", "model_bias",
      "data=spirals model.hidden=[1,256] optim.lr=0.01 trainer.epochs=60",
      at_most("train_acc", 0.75)),
    S("mnist1d-logistic", "mnist1d", "model_bias", "experiment=mnist1d_logistic trainer.epochs=40",
      at_most("train_acc", 0.5)),
    S("digits-width2", "digits", "model_bias", "model.hidden=[2] optim.lr=0.01 trainer.epochs=40",
      at_most("train_acc", 0.8)),
    S("add-seq2seq-small", "seq2seq", "model_bias",
      "data=add data.digits=2 data.n=2000 model=seq2seq model.hidden_size=8 optim.lr=0.01 "
      "trainer.epochs=15", at_most("train_exact", 0.5)),
    # --- optimization -------------------------------------------------------------------
    S("digits-deep-sigmoid-sgd", "digits", "optimization", "experiment=optimization",
      at_most("train_acc", 0.3), fast=True),
    S("moons-narrow-tiny-lr", "synthetic 2-D", "optimization",
      "data=moons model.hidden=[8] optim=sgd optim.lr=0.001 trainer.epochs=20",
      at_most("train_acc", 0.85)),
    S("parity-gru-tiny-lr", "sequences", "optimization",
      "model=gru data=parity model.hidden_size=4 optim=sgd optim.lr=0.001 trainer.epochs=10",
      at_most("train_acc", 0.7)),
    S("digits-exploding", "digits", "optimization",
      "optim=sgd optim.lr=1e6 model.hidden=[16] trainer.epochs=5", at_most("train_acc", 1.0)),
    S("digits-init-std2", "digits", "optimization",
      "model.init=normal model.init_std=2 optim=sgd optim.lr=0.1 trainer.epochs=10",
      at_most("train_acc", 0.85)),
    S("wine-gd-tiny-lr", "tables", "optimization",
      "data=wine optim=gd optim.lr=0.001 trainer.epochs=30", at_most("train_acc", 0.8)),
    S("adding-rnn-long", "sequences", "optimization",
      "model=rnn data=adding data.length=80 optim=sgd optim.lr=0.01 trainer.epochs=10",
      at_most("train_r2", 0.5)),
    S("sine-mlp-lr-too-large", "sine", "optimization",
      "data=sine model.hidden=[64,64] optim=sgd optim.lr=0.5 trainer.epochs=30",
      at_most("train_r2", 0.8)),
    # --- overfitting --------------------------------------------------------------------
    S("digits-noisy-small", "digits", "overfitting", "experiment=overfitting",
      times("val_loss", 3, "train_loss"), fast=True),
    S("digits-1024-noisy", "digits", "overfitting",
      "data.n_train=200 data.label_noise=0.1 model.hidden=[1024] trainer.epochs=40",
      times("val_loss", 3, "train_loss")),
    S("mnist1d-mlp-small", "mnist1d", "overfitting",
      "data=mnist1d data.n_train=300 model.hidden=[256,256] trainer.epochs=60",
      times("val_loss", 3, "train_loss")),
    S("diabetes-mlp-few", "tables", "overfitting",
      "data=diabetes data.n_train=60 model.hidden=[512,512] trainer.epochs=200",
      times("val_loss", 3, "train_loss")),
    S("reverse-seq2seq", "seq2seq", "overfitting",
      "data=reverse data.length=6 data.n=2000 model=seq2seq model.hidden_size=64 optim.lr=0.005 "
      "trainer.epochs=20", at_least("train_exact", 0.6), times("val_loss", 1.5, "train_loss")),
    S("wine-mlp-tiny-noisy", "tables", "overfitting",
      "data=wine data.n_train=30 data.label_noise=0.3 model.hidden=[512,512] trainer.epochs=100",
      times("val_loss", 3, "train_loss")),
    S("digits-cnn-small-noisy", "digits", "overfitting",
      "model=cnn data.n_train=100 data.label_noise=0.3 trainer.epochs=60",
      times("val_loss", 3, "train_loss")),
    # --- mismatch -----------------------------------------------------------------------
    S("digits-noise", "digits", "mismatch", "experiment=mismatch", times("test_loss", 3, "val_loss"),
      fast=True),
    S("moons-rotate", "synthetic 2-D", "mismatch",
      "data=moons data.test_shift=rotate model.hidden=[64,64] trainer.epochs=40",
      times("test_loss", 3, "val_loss")),
    S("moons-offset", "synthetic 2-D", "mismatch",
      "data=moons data.test_shift=offset model.hidden=[64,64] trainer.epochs=40",
      times("test_loss", 3, "val_loss")),
    S("iris-offset", "tables", "mismatch", "data=iris data.test_shift=offset trainer.epochs=40",
      times("test_loss", 3, "val_loss")),
    S("sine-extrapolate", "sine", "mismatch",
      "data=sine data.test_shift=extrapolate model.hidden=[64,64] optim.lr=0.01 trainer.epochs=60",
      times("test_loss", 3, "val_loss")),
    S("adding-lstm-scale", "sequences", "mismatch",
      "model=lstm data=adding data.test_shift=scale optim.lr=0.01 trainer.epochs=30",
      times("test_loss", 3, "val_loss")),
    S("parity-mlp-noise", "sequences", "mismatch", "data=parity data.test_shift=noise",
      times("test_loss", 3, "val_loss")),
    S("spirals-rotate", "synthetic 2-D", "mismatch",
      "data=spirals data.test_shift=rotate model.hidden=[128,128] trainer.epochs=60",
      times("test_loss", 3, "val_loss")),
]


@dataclass
class Result:
    scenario: str
    family: str
    intended: str
    verdict: str | None = None
    stuck: str | None = None
    behaved: bool = False  # every check held
    failed_checks: list[str] = field(default_factory=list)
    first_remedy: str | None = None
    remedy_moved: bool | None = None  # None: not run (good, no remedy, or --no-remedies)
    before: float | None = None
    after: float | None = None
    wall_s: float = 0.0
    probes_s: float | None = None
    budget_s: float | None = None  # probe_budget x the run's time
    error: str | None = None

    @property
    def right(self) -> bool:
        return self.verdict == self.intended


def run(overrides: list[str], run_dir: Path) -> tuple[dict, dict, dict]:
    """`dlrun <overrides>` in-process: the row of the weights it ends with, summary, diagnosis."""
    from hydra import compose, initialize_config_dir

    import dlrun.cli  # noqa: F401  registers the schemas and resolvers, as `dlrun` does
    from dlrun.errors import RunFailed
    from dlrun.paths import config_dir
    from dlrun.runner import run_job

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=[*QUIET, *overrides])
    with contextlib.suppress(RunFailed), contextlib.redirect_stdout(io.StringIO()):
        run_job(cfg, run_dir=run_dir, overrides=list(overrides))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    read = lambda name: json.loads((run_dir / name).read_text())  # noqa: E731
    summary = read("summary.json")
    # the metrics of the weights the run ends with: early stopping restores its best epoch
    stopping = summary.get("early_stopping") or {}
    kept = next((r for r in rows if stopping.get("restored_best")
                 and r["epoch"] == stopping.get("best_epoch")), rows[-1] if rows else {})
    return kept, summary, read("diagnosis.json")


def bench(scenario: Scenario, scratch: Path, remedies: bool) -> Result:
    result = Result(scenario.name, scenario.family, scenario.verdict)
    started = time.perf_counter()
    try:
        final, summary, diagnosis = run(list(scenario.overrides), scratch / scenario.name)
    except Exception as error:  # a crash is a result too: the benchmark must say so
        result.error = f"{type(error).__name__}: {' '.join(str(error).split())}"[:200]
        return result
    result.wall_s = time.perf_counter() - started
    result.verdict, result.stuck = diagnosis["verdict"], diagnosis.get("stuck")
    result.failed_checks = [str(c) for c in scenario.checks if not c.holds(final)]
    result.behaved = not result.failed_checks
    cost = diagnosis.get("cost", {})
    result.probes_s = cost.get("total_s")
    budget = summary.get("wall_time_s")
    result.budget_s = budget
    if diagnosis["remedies"]:
        result.first_remedy = diagnosis["remedies"][0]["command"]
    quantity = QUANTITY.get(scenario.verdict)
    if remedies and quantity and result.first_remedy and result.behaved:
        args = shlex.split(result.first_remedy)[1:]
        after, _, _ = run(args, scratch / f"{scenario.name}-remedy")
        result.before, result.after = final.get(quantity), after.get(quantity)
        # a non-finite loss (null) is worse than any finite one
        result.remedy_moved = result.after is not None and (
            result.before is None or result.after < 0.9 * result.before)
    return result


def score(results: list[Result]) -> dict:
    judged = [r for r in results if r.behaved and r.error is None]
    per_branch = {}
    for branch in BRANCHES:
        mine = [r for r in judged if r.intended == branch]
        per_branch[branch] = {"right": sum(r.right for r in mine), "of": len(mine)}
    moved = [r for r in judged if r.remedy_moved is not None]
    return {
        "right": sum(r.right for r in judged),
        "of": len(judged),
        "broken": [r.scenario for r in results if not r.behaved and r.error is None],
        "crashed": [r.scenario for r in results if r.error is not None],
        "per_branch": per_branch,
        "remedies_moved": sum(r.remedy_moved for r in moved),
        "remedies_run": len(moved),
        "over_budget": [r.scenario for r in results if r.probes_s is not None and r.budget_s
                        and r.probes_s > 1.1 * r.budget_s],
    }


def table(results: list[Result]) -> str:
    lines = ["| scenario | data | intended | verdict | behaved | first remedy | moved |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        verdict = r.error or (r.verdict or "-") + (f" ({r.stuck})" if r.stuck else "")
        mark = "" if r.right else " ✗"
        behaved = "yes" if r.behaved else "broken: " + ", ".join(r.failed_checks)
        remedy = (r.first_remedy or "-").replace("|", "\\|")
        moved = {None: "-", True: "yes", False: "no"}[r.remedy_moved]
        if r.remedy_moved is not None:
            moved += f" ({_num(r.before)} -> {_num(r.after)})"
        lines.append(f"| {r.scenario} | {r.family} | {r.intended} | {verdict}{mark} | {behaved} "
                     f"| `{remedy}` | {moved} |")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def summary_lines(s: dict) -> list[str]:
    lines = [f"verdicts right: {s['right']}/{s['of']} behaving scenarios"]
    lines += [f"  {b}: {v['right']}/{v['of']}" for b, v in s["per_branch"].items()]
    lines.append(f"first remedies that moved the run toward good: {s['remedies_moved']}/"
                 f"{s['remedies_run']}")
    for key in ("broken", "crashed", "over_budget"):
        if s[key]:
            lines.append(f"{key.replace('_', ' ')}: {', '.join(s[key])}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    parser.add_argument("--fast", action="store_true", help="the test suite's subset")
    parser.add_argument("--no-remedies", action="store_true", help="verdicts only")
    parser.add_argument("--out", type=Path, help="JSON results (default: bench-results/)")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if (not args.fast or s.fast)
              and (args.only is None or args.only in s.name)]
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for scenario in chosen:
            result = bench(scenario, Path(scratch), remedies=not args.no_remedies)
            results.append(result)
            moved = ("" if result.remedy_moved is None else
                     f"; first remedy moved {_num(result.before)} -> {_num(result.after)}")
            print(f"{result.scenario}: {result.verdict} (intended {result.intended})"
                  f"{'' if result.behaved else ' BROKEN'}{' ERROR ' + result.error if result.error else ''}"
                  f"{moved}", file=sys.stderr, flush=True)
    s = score(results)
    out = args.out or RESULTS / f"diagnosis-{datetime.date.today()}.json"
    if args.out or not (args.only or args.fast):  # written first: a long run is never lost
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"score": s, "results": [asdict(r) for r in results]},
                                  indent=1) + "\n")
    print(table(results))
    print()
    print("\n".join(summary_lines(s)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
