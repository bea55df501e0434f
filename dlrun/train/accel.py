"""Speed knobs, each built on torch's own mechanism and each with a CPU fallback.

- precision: autocast to bf16 / fp16 (fp16 with a GradScaler), or plain fp32
- compile: torch.compile of the training forward (`reduce-overhead`, i.e. CUDA graphs, on CUDA)
- channels_last: NHWC memory format for image models on CUDA
- tf32 and deterministic algorithms on CUDA
"""

from __future__ import annotations

import contextlib
import os
import resource

import torch
from torch import nn

from dlrun.errors import UserError
from dlrun.train.one_row import forward_one_row
from dlrun.train.threads import core_share, cores_available

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def configure_backend(trainer, device: torch.device, parallel: int = 1) -> None:
    """TF32 and determinism for this process, and its threads until the model is built
    (trainer.threads, or its share of the cores; `threads.use_threads` then picks the run's)."""
    torch.set_num_threads(trainer.threads or core_share(cores_available(), parallel))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(trainer.tf32)
        torch.backends.cudnn.allow_tf32 = bool(trainer.tf32)
    if trainer.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError(
            f"trainer.precision=bf16 but {torch.cuda.get_device_name(device)} has no bfloat16 "
            "support; use trainer.precision=fp16 or 32."
        )
    if precision == "fp16" and device.type == "mps":
        raise UserError("trainer.precision=fp16 is not offered on MPS here; use 32 or bf16.")


# a CPU evaluates fastest in chunks whose activations stay in its caches: about 8 MiB of
# every layer's outputs together. Measured on 2 cores: the 3x32x32 CNN (626 KB a row) at 16
# rows 2.7x faster than at 512, the 1-D CNN (28 KB) at 256 rows 1.15x faster, while the MLP
# (1.8 KB) and the LSTM (10 KB) were fastest from 512 rows up.
EVAL_CHUNK_BYTES = 8 * 2**20
CPU_EVAL_ROWS = (16, 512)


def eval_batch_size(trainer, device: torch.device, model: nn.Module, example: torch.Tensor) -> int:
    """trainer.eval_batch_size, or by device: on a CPU the power of two (16-512) whose
    activations fill EVAL_CHUNK_BYTES, from one `example` row through `model`; on a GPU
    8192 (few launches). It depends on the architecture only, so runs stay reproducible."""
    if trainer.eval_batch_size is not None:
        return trainer.eval_batch_size
    if device.type != "cpu":
        return 8192
    rows = EVAL_CHUNK_BYTES // max(1, activation_bytes(model, example))
    low, high = CPU_EVAL_ROWS
    return max(low, min(high, 1 << max(0, rows.bit_length() - 1)))


def activation_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Bytes of every leaf module's outputs for one example (1, ...), in inference mode."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        stack = [output]
        while stack:  # RNNs return (outputs, state), LSTMs a nested (h, c)
            item = stack.pop()
            if isinstance(item, torch.Tensor):
                total += item.nbytes
            elif isinstance(item, (tuple, list)):
                stack.extend(item)

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    forward_one_row(model, example, [(leaf, count) for leaf in leaves])
    return total



def autocast(device: torch.device, precision: str):
    """A context-manager factory: autocast for bf16/fp16, nothing for 32."""
    if precision == "32":
        return contextlib.nullcontext
    dtype = DTYPES[precision]
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16, which underflows without it; a pass-through otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def prepare_model(model: nn.Module, trainer, device: torch.device, image_inputs: bool) -> nn.Module:
    """channels_last for image models on CUDA (NHWC is what its convolution kernels prefer)."""
    if image_inputs and device.type == "cuda" and trainer.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def drops_last(trainer) -> bool:
    """trainer.drop_last, or by default only when compiling: static shapes are what compiled
    code and CUDA graphs want, while eager training should see every example each epoch."""
    return trainer.compile if trainer.drop_last is None else trainer.drop_last


def compile_for_training(net: nn.Module, trainer, device: torch.device) -> nn.Module:
    """The training forward under torch.compile when asked (CUDA graphs on CUDA), sharing `net`'s
    parameters. Only training steps call it, always at one batch shape: evaluation's
    chunks vary in size and would make it recompile, so they run on the eager module."""
    if not trainer.compile:
        return net
    return torch.compile(net, mode="reduce-overhead" if device.type == "cuda" else None)


def peak_memory(device: torch.device) -> tuple[float, float | None]:
    """Peak resident host memory of this process and, on CUDA, peak allocated device memory (MB)."""
    host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    on_device = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return host, on_device
