"""Schema of the `trainer` group: the loop's own knobs."""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.knobs import above, at_least, knob, one_of


@dataclass
class TrainerConfig:
    epochs: int = knob(30, "passes over the training split", at_least(1), common=True)
    batch_size: int | None = knob(
        64, "examples per step; null: full-batch gradient descent",
        at_least(1, ", or null for full-batch gradient descent"), common=True)
    eval_batch_size: int | None = knob(
        None, "evaluation chunk (inference mode); null: 16-512 rows on a CPU (about 8 MiB of "
        "activations), 8192 on a GPU", at_least(1, ", or null for the device's default"))
    device: str = knob("auto", "auto picks cuda, then mps, then cpu; or cpu | cuda | cuda:N | mps")
    devices: int = knob(
        1, "> 1: DistributedDataParallel on this many processes (one per GPU, or CPU/gloo)",
        at_least(1, " (the number of processes to train on)"))
    seed: int = knob(0, "seeds data splits, initialization, batches and dropout", common=True)
    resume: str | None = knob(None, "a run directory: continue it from checkpoints/last.pt")
    grad_clip: float | None = knob(
        None, "clip gradients to this value (see grad_clip_mode); null: no clipping",
        above(0, ", or null for no clipping"))
    grad_clip_mode: str = knob(
        "norm", "norm: rescale the global gradient norm to <= grad_clip | value: clamp each element",
        one_of("norm", "value", text="must be norm or value"))
    progress: str = knob(
        "auto", "auto: a live bar on a terminal, plain lines otherwise; or bar | lines | off",
        one_of("auto", "bar", "lines", "off"))
    checkpoint: bool = knob(
        True, "write checkpoints/last.pt every epoch and best.pt on a new best val loss")
    deterministic: bool = knob(
        False, "torch.use_deterministic_algorithms: bitwise-repeatable runs on the GPU too")
    precision: str = knob("32", "32 | bf16 | fp16 (autocast; fp16 adds loss scaling)",
                          one_of("32", "bf16", "fp16"))
    compile: bool = knob(False, "torch.compile the model; mode reduce-overhead (CUDA graphs) on CUDA")
    drop_last: bool | None = knob(
        None, "drop the last partial batch (static shapes); null: only when compiling")
    channels_last: bool = knob(
        False, "NHWC memory format for image models on CUDA (unmeasured here: off like PyTorch)")
    tf32: bool = knob(False, "TF32 matmuls/convolutions on CUDA; off like PyTorch (unmeasured here)")
    threads: int | None = knob(
        None, "torch CPU threads; null: this machine's cores, split among parallel jobs",
        at_least(1, ", or null for automatic"))


SCHEMAS = {
    "_schema_trainer": TrainerConfig,
}
