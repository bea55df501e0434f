"""`dlrun mode=eval trainer.resume=RUN`: re-test a trained model without training it again.

The CLI re-composes RUN's own overrides (dlrun.overrides.with_resumed_overrides), so the
data is rebuilt exactly as RUN saw it, except for what the command changes: another
`data.test_shift`, `data.root`, or another CSV/NPZ file with the same shapes. The
weights come from RUN's `checkpoints/best.pt` (or `checkpoint=last`), loaded with
`weights_only=True`. Every split is evaluated as the training loop evaluates it; the
result is printed and written to `RUN/eval-<time>.json`. RUN's metrics, checkpoints,
summary and TensorBoard events are never touched.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import yaml

from dlrun.build import build_loss, load_data
from dlrun.errors import UserError
from dlrun.models import build_model
from dlrun.overrides import parse_all
from dlrun.recipe import Job
from dlrun.records import SPLITS, EpochRow, Summary
from dlrun.report.files import write_json
from dlrun.report.terminal import print_result
from dlrun.train.accel import eval_batch_size
from dlrun.train.checkpoint import load_checkpoint
from dlrun.train.evaluate import evaluate

IGNORED = ("mode", "checkpoint", "trainer.resume", "trainer.progress")  # not what was tested


def changed(run: Path, overrides: list[str]) -> list[str]:
    """The overrides of this evaluation that RUN itself was not trained with."""
    try:
        saved = {str(o) for o in yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())}
    except (OSError, yaml.YAMLError, TypeError):
        saved = set()
    return [o.text for o in parse_all(overrides, strict=False)
            if o.text not in saved and o.key not in IGNORED]


def retest(job: Job) -> float:
    """Evaluate RUN's weights on every split; returns the val loss."""
    cfg, device = job.cfg, job.world.device
    if cfg.trainer.resume is None:
        raise UserError("mode=eval needs the run to test: dlrun mode=eval trainer.resume=<run dir>.")
    run = Path(cfg.trainer.resume)
    which = cfg.get("checkpoint", "best")
    state = load_checkpoint(run / "checkpoints" / f"{which}.pt", device)
    data = load_data(cfg, device)
    model = build_model(cfg.model, data).to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise UserError(
            f"mode=eval: {run}'s weights do not fit the model this data builds (input or output "
            "shapes differ); test on data with the shapes the run was trained on."
        ) from None
    loss = build_loss(cfg, data, model)
    chunk = eval_batch_size(cfg.trainer, device, model, data.x_train)
    metrics = {split: evaluate(model, *data.split(split), data.task, chunk, loss)
               for split in SPLITS}
    row = EpochRow(epoch=state.get("epoch"),
                   splits={s: {k: float(v) for k, v in m.items()} for s, m in metrics.items()})
    seconds = time.perf_counter() - job.started
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    record = {
        "run_dir": str(run),
        "checkpoint": which,
        "epoch": state.get("epoch"),
        "changed": changed(run, job.overrides),
        "metrics": row.to_json(),
        "time": stamp,
        "wall_time_s": seconds,
    }
    path = run / f"eval-{stamp}.json"
    write_json(path, record)
    # printed even when the run was trained with trainer.progress=off: it is the answer
    title = (f"dlrun eval: {run} ({which}.pt, epoch {row.epoch}"
             + (f"; {' '.join(record['changed'])}" if record["changed"] else "") + ")")
    caption = (f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}; "
               f"evaluated in {seconds:.1f} s")
    print_result(Summary(run_dir=str(run), final=row), title=title, caption=caption)
    print(f"written to {path}")
    return row.loss("val")
