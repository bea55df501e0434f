"""How many CPU threads pay: dlrun's steps per second by thread count, and beside a busy process.

Two measurements behind `trainer.threads=null` (dlrun.train.threads), each interleaving its
thread counts in one process (repeats in a shuffled order, paired ratios), on bench.py's cases:

  --scan   per case, dlrun on 1 thread and on every core this process may use, with the
           case's work per step (forward FLOPs of a batch): where a second thread starts to pay
  --busy   the default command line's run beside one busy process (a spinning Python), on
           dlrun's default threads, on 1 thread and on every core (the default before the rule)

    python scripts/bench_threads.py --scan --device cpu --repeats 3
    python scripts/bench_threads.py --busy --device cpu --repeats 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys

import torch
from bench import CASES, composed, paired_ratio, run_dlrun, setup

from dlrun.errors import UserError
from dlrun.train.accel import configure_backend
from dlrun.train.device import resolve_device
from dlrun.train.threads import cores_available, rule_threads, step_flops


def by_threads(name: str, device: str, repeats: int, extra: list[str], counts: dict[str, int]) -> dict:
    """dlrun's steps/s on a case at each thread count of `counts`, interleaved, with the case's
    forward FLOPs per step and each count's ratio to the first."""
    overrides, shape, epochs = CASES[name]
    cfg = composed([*overrides, *extra], device)
    torch_device = resolve_device(device)
    configure_backend(cfg.trainer, torch_device)
    data, model = setup(cfg, torch_device, shape)
    rows = min(cfg.trainer.batch_size or len(data.x_train), len(data.x_train))
    rates: dict[str, list[float]] = {key: [] for key in counts}
    order = random.Random(0)
    for _ in range(repeats):
        for key in order.sample(list(counts), len(counts)):
            torch.set_num_threads(counts[key])
            rates[key].append(run_dlrun(cfg, data, model, epochs)[0])
    first = next(iter(counts))
    return {
        "step_flops": step_flops(model, data.x_train, rows),
        "threads": counts,
        "steps_per_s": {key: statistics.median(values) for key, values in rates.items()},
        "ratio": {key: paired_ratio(values, rates[first]) for key, values in rates.items()},
    }


def busy_neighbour(device: str, repeats: int, extra: list[str]) -> dict:
    """The default run beside a spinning process on 1 thread, dlrun's default threads and every
    core; ratios to 1 thread (done when the default keeps at least 0.8 of it)."""
    overrides, shape, _ = CASES["default"]
    cfg = composed([*overrides, *extra], device)
    data, model = setup(cfg, resolve_device(device), shape)
    counts = {"1": 1, "default": rule_threads(cfg.trainer, model, data), "cores": cores_available()}
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        return by_threads("default", device, repeats, extra, counts)
    finally:
        spinner.kill()
        spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--scan", action="store_true", help="1 thread against every core, per case")
    mode.add_argument("--busy", action="store_true", help="the default run beside a busy process")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="--scan: default all")
    parser.add_argument("--device", default="cpu", help="cpu (threads matter there)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a dlrun override for every case, e.g. model.hidden=[512,512]")
    parser.add_argument("--json", action="store_true", help="also print one JSON object")
    args = parser.parse_args()
    device = str(resolve_device(args.device))
    if args.busy:
        results = {"default, busy": busy_neighbour(device, args.repeats, args.set)}
    else:
        counts = {"1": 1, "cores": cores_available()}
        results = {name: by_threads(name, device, args.repeats, args.set, counts)
                   for name in args.case or list(CASES)}
    for name, case in results.items():
        cells = "  ".join(f"{key} ({case['threads'][key]}) {rate:7.1f}/s {case['ratio'][key]:.2f}x"
                          for key, rate in case["steps_per_s"].items())
        print(f"{name:14s} {case['step_flops'] / 1e6:8.2f} MFLOP/step  {cells}", flush=True)
    if args.json:
        print(json.dumps({"overrides": args.set, "cases": results}, indent=2))


if __name__ == "__main__":
    try:
        main()
    except UserError as error:
        raise SystemExit(f"bench_threads: error: {error}") from None
