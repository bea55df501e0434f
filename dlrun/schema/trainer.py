"""Schema of the `trainer` group: the loop's own knobs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainerConfig:
    epochs: int = 30
    batch_size: int | None = 64  # null: full-batch gradient descent
    eval_batch_size: int | None = None  # null: by activation size on a CPU, 8192 on a GPU
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    devices: int = 1  # > 1: data-parallel on this many processes (DDP: gloo on cpu, NCCL on cuda)
    seed: int = 0
    resume: str | None = None  # a run directory to continue from its last checkpoint
    grad_clip: float | None = None  # clip gradients to this value (see grad_clip_mode)
    grad_clip_mode: str = "norm"  # norm: rescale the global gradient norm | value: clamp each element
    progress: str = "auto"  # auto | bar | lines | off
    checkpoint: bool = True
    deterministic: bool = False  # torch.use_deterministic_algorithms (bitwise-stable on GPU too)
    precision: str = "32"  # 32 | bf16 | fp16: autocast the forward pass
    compile: bool = False  # torch.compile the model (reduce-overhead / CUDA graphs on CUDA)
    drop_last: bool | None = None  # drop the last partial batch; null: only when compiling
    channels_last: bool = False  # NHWC memory format for image models on CUDA
    tf32: bool = False  # TF32 matmuls and convolutions on CUDA (PyTorch's default: off)
    threads: int | None = None  # torch CPU threads; null: the cores, split among parallel jobs


SCHEMAS = {
    "_schema_trainer": TrainerConfig,
}
