"""`dlrun cv.folds=N`: N-fold cross-validation, one ordinary training run per fold.

The train+val pool is re-split into N folds (stratified for classification, by
scikit-learn); fold k trains on the other N-1 folds and validates on fold k, in its own
run directory `fold_k/` (metrics.jsonl, summary.json, TensorBoard under fold_k/tb, so
`tensorboard --logdir <run dir>` overlays the folds). The test split is never used to
choose anything. The job returns the mean validation loss, which Hydra's sweepers minimize.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from dlrun.data.folds import cross_validation_folds
from dlrun.errors import UserError
from dlrun.records import EpochRow, Summary, read_rows, read_summary
from dlrun.report.files import write_json

console = Console()


def kept_row(fold_dir: Path) -> EpochRow:
    """The metrics of the weights a fold's run ended with: the last epoch, or early stopping's best."""
    summary = read_summary(fold_dir)
    stopping = summary.early_stopping or {}
    if stopping.get("restored_best"):
        rows = read_rows(fold_dir / "metrics.jsonl")
        return next(r for r in rows if r.epoch == stopping["best_epoch"])
    return summary.final


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population standard deviation over the folds."""
    return statistics.fmean(values), statistics.pstdev(values)


def cross_validate(
    cfg: DictConfig, run_dir: Path, data, train: Callable[..., float], overrides: list[str]
) -> float:
    """Train one model per fold with `train(cfg, fold_dir, data=fold, overrides=...)`; return the mean val loss."""
    if cfg.trainer.resume is not None:
        raise UserError(
            "trainer.resume cannot continue a cross-validation (cv.folds); rerun it without "
            "trainer.resume, or resume a single fold's run directory without cv.folds."
        )
    started = time.perf_counter()
    folds = cfg.cv.folds
    rows = []
    splits = cross_validation_folds(data, folds, seed=cfg.trainer.seed, stratify=cfg.cv.stratified)
    for k, fold in enumerate(splits):
        if cfg.trainer.progress != "off":
            console.print(
                f"[bold]cross-validation fold {k + 1}/{folds}[/]: "
                f"{len(fold.x_train)} train, {len(fold.x_val)} val examples"
            )
        fold_dir = run_dir / f"fold_{k}"
        train(cfg, fold_dir, data=fold, overrides=overrides)
        row = kept_row(fold_dir)
        rows.append(
            {
                "fold": k,
                "n_train": len(fold.x_train),
                "n_val": len(fold.x_val),
                "epochs": row.epoch,
                **{f"val_{name}": value for name, value in row.splits["val"].items()},
            }
        )
    metrics = [key for key in rows[0] if key.startswith("val_")]
    mean, std = {}, {}
    for key in metrics:
        mean[key], std[key] = mean_std([r[key] for r in rows])
    result = {
        "folds": folds,
        "stratified": bool(cfg.cv.stratified and data.task != "regression"),
        "per_fold": rows,
        "mean": mean,
        "std": std,
        "std_kind": "population (ddof=0)",
    }
    write_json(run_dir / "cv.json", result)
    # summary.json of a CV run: `final` holds the fold means, which is what the job returns
    summary = Summary(status="ok", mode="cv", run_dir=str(run_dir), final=EpochRow.from_json(mean),
                      objective=mean["val_loss"], cv=result,
                      wall_time_s=time.perf_counter() - started)
    write_json(run_dir / "summary.json", summary.to_json())
    if cfg.trainer.progress != "off":
        console.print(cv_table(result, run_dir))
    return mean["val_loss"]


def cv_table(result: dict, run_dir: Path) -> Table:
    metrics = list(result["mean"])
    table = Table(title=f"dlrun {result['folds']}-fold cross-validation: {run_dir}")
    for column in ("fold", "train", "val", "epoch", *metrics):
        table.add_column(column, justify="right")
    for row in result["per_fold"]:
        table.add_row(
            str(row["fold"]),
            str(row["n_train"]),
            str(row["n_val"]),
            str(row["epochs"]),
            *(f"{row[m]:.4f}" for m in metrics),
        )
    table.add_row(
        "mean ± std",
        "",
        "",
        "",
        *(f"{result['mean'][m]:.4f} ± {result['std'][m]:.4f}" for m in metrics),
        style="bold",
    )
    table.caption = (
        "stratified folds" if result["stratified"] else "folds"
    ) + " of the train+val pool; the test split is untouched"
    return table
