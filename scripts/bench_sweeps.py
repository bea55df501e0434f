"""Whole sweeps, timed as a user runs them: `dlrun -m` with the stacked launcher (one
process; `stacked-2`: two stacks in 2 joblib workers) against the basic launcher (jobs one
after another in one process) and joblib (2 worker processes).

For each case and sweep size K (an lr x weight-decay grid of K jobs) every launcher runs
the same command line in a fresh process, in turn; the table gives the wall time of the
whole command, model-steps per second (every job's optimizer steps over that wall time)
and the speed-up over the basic launcher, plus how far each job's final validation loss
is from the same job's under the basic launcher (relative: how many jobs within 1e-4, the
median and the largest). Used by `python scripts/bench.py --sweep`.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

SWEEP_CASES = {
    # name: (overrides, epochs)
    "mlp_digits": (["model=mlp", "data=digits"], 20),  # the default MLP, 64-128-128-10
    "mlp_moons": (["data=moons", "model.hidden=[64,64]"], 20),
    "cnn_mnist1d": (["experiment=mnist1d_cnn"], 10),  # MNIST-1D CNN (25 channels, batch 100)
}
LAUNCHERS = {
    "stacked": ["hydra/launcher=stacked"],
    "stacked-2": ["hydra/launcher=stacked", "hydra.launcher.n_jobs=2"],  # 2 stacks, 2 workers
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}
SIZES = (4, 16, 64)


def grid(jobs: int) -> list[str]:
    """An lr x weight-decay grid of `jobs` jobs (a square number): Adam's useful range."""
    side = math.isqrt(jobs)
    lrs = [3e-4 * (30 ** (i / max(1, side - 1))) for i in range(side)]  # 3e-4 .. 1e-2
    decays = [0.0] + [1e-4 * 10 ** (i * 2 / max(1, side - 2)) for i in range(side - 1)]
    return ["optim.lr=" + ",".join(f"{v:.3g}" for v in lrs),
            "optim.weight_decay=" + ",".join(f"{v:.3g}" for v in decays)]


def run_sweep(case: str, jobs: int, launcher: str, root: Path, extra: list[str]) -> dict:
    overrides, epochs = SWEEP_CASES[case]
    sweep_dir = root / f"{case}-{jobs}-{launcher}"
    command = [sys.executable, "-m", "dlrun", "-m", *overrides, f"trainer.epochs={epochs}",
               *grid(jobs), *LAUNCHERS[launcher], "trainer.progress=off",
               f"hydra.sweep.dir={sweep_dir}", *extra]
    started, before = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, cwd=root)
    wall, cpu = time.perf_counter() - started, _children_cpu() - before
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    finals, steps = {}, 0
    for summary_path in sweep_dir.glob("*/summary.json"):
        summary = json.loads(summary_path.read_text())
        overrides_done = yaml.safe_load((summary_path.parent / ".hydra" / "overrides.yaml").read_text())
        finals[tuple(sorted(overrides_done))] = summary.get("final", {}).get("val_loss")
        steps += summary.get("steps") or 0
    return {"wall_s": wall, "cpu_s": cpu, "model_steps": steps, "model_steps_per_s": steps / wall,
            "finals": finals}


def _children_cpu() -> float:
    """CPU seconds of finished child processes (their own children included): beside the wall
    time, what a command cost whatever else the machine was doing."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def differences(ours: dict, theirs: dict) -> dict | None:
    """How far each job's final val loss is from the same job's in another sweep (relative):
    the largest, the median, and how many jobs are within 1e-4."""
    diffs = [abs(ours[key] - theirs[key]) / abs(theirs[key]) for key in ours
             if key in theirs and ours[key] is not None and theirs[key] is not None]
    if not diffs:
        return None
    return {"max": max(diffs), "median": statistics.median(diffs),
            "within_1e-4": f"{sum(d <= 1e-4 for d in diffs)}/{len(diffs)}"}


def bench_sweeps(cases: list[str], sizes: list[int], launchers: list[str], repeats: int,
                 extra: list[str]) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="dlrun-sweep-bench-") as tmp:
        for case in cases:
            for jobs in sizes:
                runs = {name: [] for name in launchers}
                for repeat in range(repeats):
                    for name in launchers:  # in turn, so a drift in load hits every launcher
                        root = Path(tmp, f"r{repeat}")
                        root.mkdir(exist_ok=True)
                        runs[name].append(run_sweep(case, jobs, name, root, extra))
                entry = {}
                for name, done in runs.items():
                    wall = statistics.median(r["wall_s"] for r in done)
                    cpu = statistics.median(r["cpu_s"] for r in done)
                    entry[name] = {"wall_s": wall, "cpu_s": cpu,
                                   "model_steps_per_s": done[0]["model_steps"] / wall}
                    if "basic" in runs:
                        base = statistics.median(r["wall_s"] for r in runs["basic"])
                        entry[name]["speedup_over_basic"] = base / wall
                        base_cpu = statistics.median(r["cpu_s"] for r in runs["basic"])
                        entry[name]["cpu_ratio_to_basic"] = base_cpu / cpu
                        entry[name]["val_loss_vs_basic"] = differences(
                            done[0]["finals"], runs["basic"][0]["finals"])
                results.setdefault(case, {})[jobs] = entry
                print(format_rows(case, jobs, entry), flush=True)
    return results


def format_rows(case: str, jobs: int, entry: dict) -> str:
    lines = []
    for name, r in entry.items():
        speed = r.get("speedup_over_basic")
        diff = r.get("val_loss_vs_basic")
        lines.append(f"{case:12s} K={jobs:<3d} {name:9s} {r['wall_s']:7.1f} s "
                     f"(cpu {r['cpu_s']:6.1f} s)  "
                     f"{r['model_steps_per_s']:8.0f} model-steps/s"
                     + (f"  {speed:5.2f}x basic (cpu {r['cpu_ratio_to_basic']:4.2f}x)" if speed else "")
                     + (f"  final val loss vs basic: {diff['within_1e-4']} within 1e-4, "
                        f"max {diff['max']:.1e}" if diff is not None and name != "basic" else ""))
    return "\n".join(lines)


def environment_note() -> dict:
    """How busy the machine was when the sweeps started (1-minute load average, cores)."""
    return {"load_average": os.getloadavg()[0], "cores": os.cpu_count()}
