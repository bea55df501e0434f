"""Convolution blocks, global average pooling, then a small classifier head.

Layer sizes are checked before anything is built, with o = floor((n + 2p - f) / s) + 1,
so a stack that would shrink the input below one pixel fails with a clear line.
"""

from __future__ import annotations

from torch import nn

from dlrun.errors import UserError


def conv_output_size(n: int, kernel: int, stride: int, padding: int) -> int:
    return (n + 2 * padding - kernel) // stride + 1


class CNN(nn.Module):
    def __init__(
        self,
        input_shape: tuple[int, ...],
        out_features: int,
        channels: list[int] = (32, 64),
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        pool: str = "max",
        batchnorm: bool = True,
        dropout: float = 0.0,
        hidden: int = 128,
    ):
        super().__init__()
        if len(input_shape) != 3:
            raise UserError(
                f"model=cnn needs image inputs (channels x height x width) but the data gives "
                f"shape {tuple(input_shape)}; use model=mlp for it."
            )
        if pool not in ("max", "avg", "none"):
            raise UserError(f"model.pool={pool} is unknown; choose from: max, avg, none.")
        in_channels, height, width = input_shape
        blocks: list[nn.Module] = []
        for i, out_channels in enumerate(channels, start=1):
            height, width = (conv_output_size(s, kernel_size, stride, padding) for s in (height, width))
            if height < 1 or width < 1:
                raise UserError(
                    f"model.channels: conv layer {i} (kernel {kernel_size}, stride {stride}, padding "
                    f"{padding}) shrinks its input to {height}x{width}; use fewer layers, a smaller "
                    "model.kernel_size or stride, or more model.padding."
                )
            blocks += [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)]
            if batchnorm:
                blocks.append(nn.BatchNorm2d(out_channels))
            blocks.append(nn.ReLU())
            if pool != "none" and min(height, width) >= 2:
                blocks.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
                height, width = height // 2, width // 2
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(in_channels, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x):
        return self.head(self.features(x))
