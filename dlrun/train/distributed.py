"""This process's world: alone (`World`), or one rank of a data-parallel run with torch
DistributedDataParallel (`DistributedWorld`). `fit` speaks to both through the same methods.

Three ways in, one code path: `trainer.devices=N` makes the job spawn N processes
itself; `torchrun --nproc_per_node=N -m dlrun ...` starts them from outside; Slurm
tasks started by submitit (`hydra.launcher.tasks_per_node`, `nodes`) are turned into
ranks with submitit's TorchDistributedEnvironment. gloo on CPU, NCCL on CUDA.

Every rank holds the whole (device-resident) dataset and draws the same permutation
(same seed), so all ranks agree on each global batch of `trainer.batch_size`; rank r
trains on rows r, r+N, ... of it. The loss is each rank's sum over its rows times
N / (global batch size), so DDP's gradient average is exactly the gradient of the
global batch mean: N processes reproduce one process with the same global batch and
seed (up to float summation order; BatchNorm statistics and dropout masks are per rank).
Evaluation is sharded the same way, by the one `evaluate`, and its sums are all-reduced.
Only rank 0 writes: the other ranks run with progress, checkpoints and diagnosis off, into
a scratch directory that is removed when they exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from dlrun.errors import UserError
from dlrun.train.device import resolve_device
from dlrun.train.evaluate import evaluate


@dataclass
class World:
    """One process alone: rank 0 of 1, whose collectives leave everything as it is.

    `fit` speaks to every world through these methods, so the same loop trains one process
    and one rank of many (`DistributedWorld`) without asking which it is.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    rank: int = 0
    size: int = 1
    local_size: int = 1  # ranks on this machine (they share its cores)

    @property
    def is_main(self) -> bool:
        """The process that writes the run directory."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the training steps call."""
        return model

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's rows of a global batch: all of them."""
        return x, y

    def batch_loss(self, criterion, out: torch.Tensor, y: torch.Tensor, rows: int) -> torch.Tensor:
        """The loss whose gradient is the gradient of the global batch's mean: the mean itself
        (the loss's own reduction, which for cross-entropy is one fused kernel)."""
        return criterion(out, y)

    def stops_now(self, requested: bool) -> bool:
        """Whether a stop request ends the epoch at once (between steps): alone, it does."""
        return requested

    def any(self, flag: bool) -> bool:
        """True when `flag` is true in any process."""
        return flag

    def mean(self, total: torch.Tensor) -> torch.Tensor:
        """The mean of `total` over the processes."""
        return total

    def add_up(self, sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every process's evaluation sums added together."""
        return sums

    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str,
                 chunk: int, loss=None) -> dict:
        """A split's metrics: this process evaluates its rows, the sums are added up."""
        return evaluate(model, x, y, task, chunk, loss,
                        rows=slice(self.rank, None, self.size), add_up=self.add_up)

    def own_outputs(self, cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, Path]:
        """The config and run directory this process writes: the run's own, for the main one;
        for the others no output and a scratch directory removed at exit."""
        if self.is_main:
            return cfg, run_dir
        cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
        with open_dict(cfg):
            cfg.trainer.progress = "off"
            cfg.trainer.checkpoint = False
            if "diagnose" in cfg:
                cfg.diagnose.enabled = False
        scratch = tempfile.mkdtemp(prefix=f"dlrun-rank{self.rank}-")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        return cfg, Path(scratch)


class DistributedWorld(World):
    """One rank of several, joined in a process group: DDP gradients, sharded batches and
    evaluation, and sums all-reduced over the ranks."""

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP around the model (SyncBatchNorm first on CUDA, so BN sees the global batch)."""
        if self.device.type == "cuda" and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()
        ):
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows rank, rank + N, ... of the global batch."""
        return x[self.rank :: self.size], y[self.rank :: self.size]

    def batch_loss(self, criterion, out: torch.Tensor, y: torch.Tensor, rows: int) -> torch.Tensor:
        """This rank's loss sum times N / (global batch rows): DDP averages the gradients over
        the N ranks, which makes them exactly the gradient of the global batch's mean."""
        return criterion.per_example(out, y).sum() * (self.size / rows)

    def stops_now(self, requested: bool) -> bool:
        """Ranks stop together, at the end of an epoch (`any`), never between steps."""
        return False

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any (one host sync; call once per epoch)."""
        value = torch.tensor(float(flag), device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, total: torch.Tensor) -> torch.Tensor:
        """Sum over ranks divided by the number of ranks (a device tensor; no host sync)."""
        total = total.clone()
        dist.all_reduce(total)
        return total / self.size

    def add_up(self, sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One all-reduce of every sum (in float64, so counts stay exact)."""
        keys = sorted(sums)
        stacked = torch.stack([sums[k].double() for k in keys])
        dist.all_reduce(stacked)
        return dict(zip(keys, stacked.unbind()))


def _from_submitit() -> None:
    """Slurm (or submitit_local) tasks of one job: export RANK, WORLD_SIZE, MASTER_* for them."""
    if "RANK" in os.environ or "SUBMITIT_EXECUTOR" not in os.environ:
        return
    try:
        from submitit import JobEnvironment
        from submitit.helpers import TorchDistributedEnvironment
    except ImportError:
        return
    if JobEnvironment().num_tasks > 1:
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def setup(trainer: DictConfig) -> World:
    """This process's world: one rank of several (joined to the process group) when it was
    started as one (spawned, torchrun, Slurm tasks), else a process alone on its device."""
    _from_submitit()
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(resolve_device(trainer.device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", size))
    device = resolve_device(trainer.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UserError(
            f"trainer.devices: data-parallel training runs on cpu or cuda, not "
            f"{device.type}; use trainer.device=cpu or cuda."
        )
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=size)
    return DistributedWorld(device, rank, size, local_size)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, size: int, port: int, job, args: tuple, hydra_cfg, results) -> None:
    """One spawned rank: the environment torchrun would set, then the job itself."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_WORLD_SIZE=str(size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    if hydra_cfg is not None:  # the parent's Hydra state (choices, overrides) for the run files
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().cfg = hydra_cfg
    try:
        value = job(*args)
        if rank == 0:
            results.put(("ok", value))
    except Exception as error:
        if rank == 0:
            try:
                results.put(("error", error))
            except Exception:  # an exception that cannot be pickled
                results.put(("error", RuntimeError(f"{type(error).__name__}: {error}")))
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def spawn(job, cfg: DictConfig, *args) -> float:
    """Run `job(cfg, *args)` on `trainer.devices` local processes; rank 0's return value."""
    import torch.multiprocessing as mp
    from hydra.core.hydra_config import HydraConfig

    size = cfg.trainer.devices
    device = resolve_device(cfg.trainer.device)
    if device.type == "cuda" and torch.cuda.device_count() < size:
        raise UserError(
            f"trainer.devices={size} but this machine has {torch.cuda.device_count()} CUDA "
            f"device(s); use trainer.devices<={torch.cuda.device_count()}, or trainer.device=cpu."
        )
    if OmegaConf.select(cfg, "cv.folds") is not None or cfg.get("mode", "train") != "train":
        raise UserError(
            "trainer.devices>1 trains one model data-parallel; run cross-validation "
            "(cv.folds) and mode=lr_find with trainer.devices=1."
        )
    hydra_cfg = HydraConfig.instance().cfg if HydraConfig.initialized() else None
    results = mp.get_context("spawn").SimpleQueue()
    try:
        mp.spawn(
            _rank_main,
            args=(size, _free_port(), job, (cfg, *args), hydra_cfg, results),
            nprocs=size,
            join=True,
        )
    except (mp.ProcessRaisedException, mp.ProcessExitedException):
        if results.empty():  # a rank other than 0 failed first: its traceback is the story
            raise
    status, value = results.get()
    if status == "error":
        raise value
    return value
