"""Data-parallel training on several processes with torch DistributedDataParallel.

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
Evaluation is sharded the same way and its sums are all-reduced. Only rank 0 writes:
the other ranks run with progress, checkpoints and diagnosis off, into a scratch
directory that is removed when they exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from dlrun.data.batches import chunks
from dlrun.errors import UserError
from dlrun.train.device import resolve_device
from dlrun.train.task import finish_metrics, loss_sums


@dataclass
class World:
    """This process's place among the ranks, and the collectives the loop needs."""

    rank: int
    size: int
    local_size: int  # ranks on this machine
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP around the model (SyncBatchNorm first on CUDA, so BN sees the global batch)."""
        if self.device.type == "cuda" and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()
        ):
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """This rank's rows of a global batch, and the weight that makes its loss sum a share
        of the global mean: DDP averages gradients over ranks, so the weight is N / batch."""
        return x[self.rank :: self.size], y[self.rank :: self.size], self.size / len(x)

    def mean(self, total: torch.Tensor) -> torch.Tensor:
        """Sum over ranks divided by the number of ranks (a device tensor; no host sync)."""
        total = total.clone()
        dist.all_reduce(total)
        return total / self.size

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any (one host sync; call once per epoch)."""
        value = torch.tensor(float(flag), device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    @torch.inference_mode()
    def evaluate(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, chunk: int, loss=None
    ) -> dict:
        """Like `evaluate.evaluate`, on this rank's rows, with the sums all-reduced."""
        was_training = model.training
        model.eval()
        totals: dict[str, torch.Tensor] = {}
        for xb, yb in chunks(x[self.rank :: self.size], y[self.rank :: self.size], chunk):
            for key, value in loss_sums(task, model(xb), yb, loss).items():
                totals[key] = totals[key] + value if key in totals else value
        model.train(was_training)
        keys = sorted(totals)
        stacked = torch.stack([totals[k].double() for k in keys])
        dist.all_reduce(stacked)
        return finish_metrics(task, dict(zip(keys, stacked.unbind())), y)

    def follower(self, cfg: DictConfig) -> tuple[DictConfig, Path]:
        """The config and run directory of a rank other than 0: no output, a scratch dir."""
        cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
        with open_dict(cfg):
            cfg.trainer.progress = "off"
            cfg.trainer.checkpoint = False
            if "diagnose" in cfg:
                cfg.diagnose.enabled = False
        scratch = tempfile.mkdtemp(prefix=f"dlrun-rank{self.rank}-")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        return cfg, Path(scratch)


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


def setup(trainer: DictConfig) -> World | None:
    """Join the process group when this process is one rank of several; None otherwise."""
    _from_submitit()
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
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
    return World(rank, size, local_size, device)


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
