"""Training steps per second of dlrun's trainer against hand-written PyTorch loops, in one run.

For each case (model, data, batch size) every implementation trains the same model
(same initialization), with the same optimizer, on the same data, for the same number of
steps; repeats are interleaved in a shuffled order, the first epoch of each is a warm-up, and
the median rate is reported with the median of each repeat's ratio to the reference loop:

  dlrun         dlrun.train.fit, its full per-step work, diagnosis signals on
  dlrun-nodiag  the same with diagnose=off (no sampled gradient norms)
  reference     data resident on the device, randperm batches, no host sync until the epoch ends
  reference+eval  the same, with dlrun's evaluation of every split between epochs (untimed)
  textbook      DataLoader over a TensorDataset, .to(device) per batch, loss.item() every step
  lightning     lightning's Trainer on the same module, when lightning is installed
  *-compiled    with --compile (default on CUDA): dlrun with trainer.compile=true, and the
                reference loop on torch.compile(model, mode="reduce-overhead" on CUDA), both
                dropping the last partial batch so shapes stay static

dlrun and the reference build the optimizer dlrun's way (fused kernels where torch has
them), so their ratio is the loop's overhead alone; textbook and Lightning take torch's
default implementation, as such code usually does. Only the step loop is timed; evaluation
(which dlrun runs every epoch) is reported apart as its share of dlrun's wall time.

    python scripts/bench.py                      # all cases on the best device
    python scripts/bench.py --case mlp_b100 --device cpu --json
    python scripts/bench.py --case cnn_cifar --set trainer.precision=bf16   # an option's effect
    python scripts/bench.py --sweep --sweep-case mlp_digits --jobs 16   # whole sweeps: stacked,
                                                 # basic and joblib launchers (bench_sweeps.py)
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import random
import statistics
import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import DataLoader, TensorDataset

from dlrun.build import build
from dlrun.data import Dataset
from dlrun.errors import UserError
from dlrun.paths import config_dir
from dlrun.schema import register_schemas
from dlrun.train import Components, fit
from dlrun.train.accel import configure_backend, eval_batch_size
from dlrun.train.device import resolve_device
from dlrun.train.evaluate import evaluate
from dlrun.train.optimizers import build_optimizer
from dlrun.train.task import loss_fn
from dlrun.train.threads import rule_threads

CASES = {
    # name: (overrides, synthetic input shape or None, epochs per repeat)
    "default": ([], None, 8),  # the command line `dlrun`: an MLP on the 8x8 digits, batch 64
    "mlp_b100": (["data=mnist1d", "model=mlp", "model.hidden=[100,100]", "trainer.batch_size=100"], None, 8),
    "mlp_b1000": (["data=mnist1d", "model=mlp", "model.hidden=[100,100]", "trainer.batch_size=1000"], None, 60),
    "cnn_mnist1d": (["data=mnist1d", "model=cnn", "model.channels=[32,32]", "trainer.batch_size=100"], None, 2),
    "cnn_cifar": (["model=cnn", "model.channels=[32,64]", "trainer.batch_size=512"], (3, 32, 32), 2),
    "lstm": (["data=mnist1d", "model=lstm", "model.hidden_size=64", "trainer.batch_size=100"], None, 2),
}


def composed(overrides: list[str], device: str):
    register_schemas()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("config", overrides=[*overrides, f"trainer.device={device}",
                                            "trainer.progress=off", "trainer.checkpoint=false"])


def synthetic(shape: tuple[int, ...], n: int, device: torch.device) -> Dataset:
    """Random images with 10 random classes: a stand-in for CIFAR-10's shapes, not its content."""
    gen = torch.Generator().manual_seed(0)

    def split(count):
        return torch.randn(count, *shape, generator=gen), torch.randint(0, 10, (count,), generator=gen)

    (xt, yt), (xv, yv), (xs, ys) = split(n), split(512), split(512)
    return Dataset("synthetic", "multiclass", xt, yt, xv, yv, xs, ys, n_classes=10).to(device)


def setup(cfg, device, shape):
    data, model, optimizer, scheduler, interval = build(cfg, device)[:5]
    if shape is not None:
        data = synthetic(shape, 2048, device)
        torch.manual_seed(cfg.trainer.seed)
        model = instantiate(cfg.model, input_shape=data.input_shape, out_features=10).to(device)
    return data, model


def fresh(model, cfg, fused=True):
    """A copy of the initial model and a new optimizer for it: every implementation starts equal.

    dlrun and the reference loop take dlrun's optimizer construction (`build_optimizer`:
    fused kernels where torch has them), so their ratio is the loop's overhead alone; the
    textbook loop and Lightning take torch's default implementation of the same algorithm."""
    model = copy.deepcopy(model)
    partial = instantiate(cfg.optim)
    if fused:
        return model, build_optimizer(partial, model.parameters(), next(model.parameters()).device)
    return model, partial(model.parameters())


def run_dlrun(cfg, data, model, epochs, diagnose=True, compiled=False):
    model, optimizer = fresh(model, cfg)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    trainer = copy.deepcopy(cfg.trainer)
    trainer.epochs = epochs + 1
    trainer.compile = compiled
    steps = seconds = 0.0
    evaluation = wall = 0.0
    for row in fit(Components(data, model, optimizer, scheduler), trainer, grad_norms=diagnose):
        if row.epoch == 1:
            continue  # warm-up
        steps += row.steps
        seconds += row.step_time_s
        wall += row.epoch_time_s
        evaluation += row.epoch_time_s - row.step_time_s
    return steps / seconds, evaluation / wall


def run_reference(cfg, data, model, epochs, compiled=False, evaluated=False):
    model, optimizer = fresh(model, cfg)
    criterion = loss_fn(data.task)
    chunk = eval_batch_size(cfg.trainer, data.x_train.device, model, data.x_train) if evaluated else 0
    x, y, n, batch = data.x_train, data.y_train, len(data.x_train), cfg.trainer.batch_size
    if compiled:  # static shapes: drop the last partial batch
        model = torch.compile(model, mode="reduce-overhead" if x.is_cuda else None)
        n -= n % batch
    generator = torch.Generator(device=x.device).manual_seed(0)
    model.train()
    steps, seconds = 0, 0.0
    for epoch in range(epochs + 1):
        started = time.perf_counter()
        order = torch.randperm(n, device=x.device, generator=generator)
        total = torch.zeros((), device=x.device)
        count = 0
        for start in range(0, n, batch):
            index = order[start : start + batch]
            loss = criterion(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            count += 1
        total.item()  # the one sync of the epoch
        if epoch > 0:
            steps += count
            seconds += time.perf_counter() - started
        if evaluated:  # dlrun's evaluation between epochs, untimed: what the pause alone costs
            for split in ("train", "val", "test"):
                evaluate(model, *data.split(split), data.task, chunk, criterion)["loss"].item()
    return steps / seconds


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def host_loader(cfg, data) -> DataLoader:
    """The textbook input pipeline: shuffled batches of host tensors, moved per batch."""
    return DataLoader(TensorDataset(data.x_train.cpu(), data.y_train.cpu()),
                      batch_size=cfg.trainer.batch_size, shuffle=True)


def run_textbook(cfg, data, model, epochs):
    model, optimizer = fresh(model, cfg, fused=False)
    criterion = loss_fn(data.task)
    device = data.x_train.device
    loader = host_loader(cfg, data)
    model.train()
    steps, seconds = 0, 0.0
    for epoch in range(epochs + 1):
        started = time.perf_counter()
        count = 0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = criterion(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
            count += 1
        if epoch > 0:
            steps += count
            seconds += time.perf_counter() - started
    return steps / seconds


def run_lightning(cfg, data, model, epochs):
    import lightning as L

    model, _ = fresh(model, cfg, fused=False)
    criterion = loss_fn(data.task)
    optim_cfg = cfg.optim

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = model

        def training_step(self, batch, _):
            xb, yb = batch
            return criterion(self.net(xb), yb)

        def configure_optimizers(self):
            return instantiate(optim_cfg)(self.parameters())

    class Timer(L.Callback):
        def __init__(self):
            self.times = []

        def on_train_epoch_start(self, *_):
            sync(data.x_train.device)
            self.started = time.perf_counter()

        def on_train_epoch_end(self, *_):
            sync(data.x_train.device)
            self.times.append(time.perf_counter() - self.started)

    timer = Timer()
    loader = host_loader(cfg, data)
    accelerator = "gpu" if data.x_train.device.type == "cuda" else "cpu"
    trainer = L.Trainer(max_epochs=epochs + 1, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[timer])
    trainer.fit(Module(), loader)
    return len(loader) * epochs / sum(timer.times[1:])


def paired_ratio(rates: list[float], bases: list[float]) -> float:
    """The median of each repeat's ratio to the base measured in the same repeat: a drift of
    the machine's speed between repeats cancels instead of widening the spread."""
    return statistics.median(rate / base for rate, base in zip(rates, bases))


def bench_case(name: str, device: str, repeats: int, compiled: bool, extra: list[str]) -> dict:
    overrides, shape, epochs = CASES[name]
    cfg = composed([*overrides, *extra], device)
    torch_device = resolve_device(device)
    configure_backend(cfg.trainer, torch_device)  # TF32: process-wide, so for every loop
    data, model = setup(cfg, torch_device, shape)
    torch.set_num_threads(rule_threads(cfg.trainer, model, data))  # dlrun's, for every loop
    eval_shares = []

    def dlrun_rate():
        rate, eval_share = run_dlrun(cfg, data, model, epochs)
        eval_shares.append(eval_share)
        return rate

    implementations = {
        "dlrun": dlrun_rate,
        "dlrun-nodiag": lambda: run_dlrun(cfg, data, model, epochs, diagnose=False)[0],
        "reference": lambda: run_reference(cfg, data, model, epochs),
        "reference+eval": lambda: run_reference(cfg, data, model, epochs, evaluated=True),
        "textbook": lambda: run_textbook(cfg, data, model, epochs),
    }
    if importlib.util.find_spec("lightning") is not None:
        implementations["lightning"] = lambda: run_lightning(cfg, data, model, epochs)
    if compiled:
        implementations["dlrun-compiled"] = lambda: run_dlrun(cfg, data, model, epochs, compiled=True)[0]
        implementations["reference-compiled"] = lambda: run_reference(cfg, data, model, epochs, compiled=True)
    rates = {key: [] for key in implementations}
    order = random.Random(0)
    for _ in range(repeats):  # interleaved in a fresh order, so drifts in load hit every loop
        for key in order.sample(list(implementations), len(implementations)):
            rates[key].append(implementations[key]())
    median = {key: statistics.median(values) for key, values in rates.items()}
    ratio = {key: paired_ratio(values, rates["reference"]) for key, values in rates.items()}
    return {
        "steps_per_s": median,
        "spread": {key: [min(values), max(values)] for key, values in rates.items()},
        "ratio_to_reference": ratio,
        "dlrun_eval_share": statistics.median(eval_shares),
        "diagnosis_overhead": 1 - paired_ratio(rates["dlrun"], rates["dlrun-nodiag"]),
        "batch_size": cfg.trainer.batch_size,
        "threads": torch.get_num_threads(),
        "train_examples": len(data.x_train),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--repeats", type=int, help="default 5 (1 with --sweep)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: dlrun's, the cores this process may use)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction,
                        help="add the torch.compile cases (default: on CUDA only)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a dlrun override for every case, e.g. trainer.precision=bf16")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sweep", action="store_true",
                        help="time whole sweeps instead: hydra/launcher=stacked against basic and joblib")
    parser.add_argument("--sweep-case", action="append", help="with --sweep; default: all")
    parser.add_argument("--jobs", action="append", type=int, help="with --sweep: K; default 4, 16, 64")
    parser.add_argument("--launcher", action="append", help="with --sweep: default stacked, stacked-2, basic, joblib")
    args = parser.parse_args()
    if args.threads:
        args.set.append(f"trainer.threads={args.threads}")
    if args.sweep:
        return sweep_main(args)

    device = resolve_device(args.device)
    results = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "overrides": args.set,
        "cases": {},
    }
    for name in args.case or list(CASES):
        compiled = args.compile if args.compile is not None else device.type == "cuda"
        results["cases"][name] = bench_case(name, str(device), args.repeats or 5, compiled, args.set)
        if not args.json:
            case = results["cases"][name]
            cells = "  ".join(f"{k} {v:8.1f} ({case['ratio_to_reference'][k]:.2f}x)"
                              for k, v in case["steps_per_s"].items())
            print(f"{name:12s} {cells}  eval share {case['dlrun_eval_share']:.0%}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


def sweep_main(args) -> None:
    import bench_sweeps  # beside this script

    note = bench_sweeps.environment_note()
    print(f"load average {note['load_average']:.1f} on {note['cores']} cores", flush=True)
    results = bench_sweeps.bench_sweeps(
        args.sweep_case or list(bench_sweeps.SWEEP_CASES), args.jobs or list(bench_sweeps.SIZES),
        args.launcher or list(bench_sweeps.LAUNCHERS), args.repeats or 1,
        [*args.set, *([f"trainer.device={args.device}"] if args.device != "auto" else [])])
    if args.json:
        print(json.dumps({"environment": note, "torch": torch.__version__, "overrides": args.set,
                          "sweeps": results}, indent=2))


if __name__ == "__main__":
    try:
        main()
    except UserError as error:  # e.g. --device cuda on a machine without one
        raise SystemExit(f"bench: error: {error}") from None
