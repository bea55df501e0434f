"""Convolution blocks, global average pooling, then a small classifier head.

Images (C, H, W) get 2-D convolutions; sequences (T, F) get 1-D convolutions over
time with the F features as channels. Every layer's output size is planned before
anything is built, with o = floor((n + 2p - f) / s) + 1, so a stack that would shrink
its input below one step or pixel fails with a line naming the layer and the fix.
A block is conv -> (batch norm) -> (+ shortcut) -> activation -> (pool 2).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from dlrun.errors import UserError
from dlrun.models.layers import activation as make_activation
from dlrun.models.layers import initialize

POOLS = {"max": (nn.MaxPool1d, nn.MaxPool2d), "avg": (nn.AvgPool1d, nn.AvgPool2d), "none": None}


def conv_output_size(n: int, kernel: int, stride: int, padding: int) -> int:
    return (n + 2 * padding - kernel) // stride + 1


def plan_sizes(
    spatial: tuple[int, ...], channels, kernel_size: int, stride: int, padding: int, pool: str
) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Per conv layer: (size after the convolution, size after the pool). Raises on a size < 1.

    A 2x pool halves a size (floor) and is skipped once a size is below 2.
    """
    sizes, layers = tuple(spatial), []
    for i, _ in enumerate(channels, start=1):
        conv = tuple(conv_output_size(n, kernel_size, stride, padding) for n in sizes)
        if min(conv) < 1:
            shown = "x".join(map(str, sizes))
            raise UserError(
                f"model.channels: conv layer {i} would map size {shown} to "
                f"{'x'.join(map(str, conv))} (o = floor((n + 2p - f)/s) + 1 with f={kernel_size}, "
                f"s={stride}, p={padding}); use fewer model.channels, a smaller model.kernel_size "
                f"or model.stride, {'or ' if pool == 'none' else ''}more model.padding"
                f"{', or model.pool=none' if pool != 'none' else ''}."
            )
        pooled = tuple(n // 2 for n in conv) if pool != "none" and min(conv) >= 2 else conv
        layers.append((conv, pooled))
        sizes = pooled
    return layers


class ChannelsFirst(nn.Module):
    """(N, T, F) sequences -> (N, F, T), the layout Conv1d reads."""

    def forward(self, x):
        return x.transpose(1, 2)


class ConvBlock(nn.Module):
    def __init__(
        self,
        dims,
        c_in,
        c_out,
        kernel_size,
        stride,
        padding,
        pool,
        batchnorm,
        residual,
        activation,
        size_in,
        size_out,
    ):
        super().__init__()
        pooled = pool != "none" and size_out[1] != size_out[0]
        self.summary = (
            f"{c_in}->{c_out} k{kernel_size} s{stride} p{padding}, "
            f"{'x'.join(map(str, size_in))}->{'x'.join(map(str, size_out[1]))}"
        )
        conv, norm = (nn.Conv1d, nn.BatchNorm1d) if dims == 1 else (nn.Conv2d, nn.BatchNorm2d)
        self.conv = conv(c_in, c_out, kernel_size, stride, padding, bias=not batchnorm)
        self.norm = norm(c_out) if batchnorm else nn.Identity()
        self.shortcut = None
        if residual:  # identity when shapes agree, else a strided 1x1 projection
            same = c_in == c_out and stride == 1
            self.shortcut = nn.Identity() if same else conv(c_in, c_out, 1, stride)
        self.act = make_activation(activation)
        self.pool = POOLS[pool][dims - 1](2) if pooled else nn.Identity()

    def extra_repr(self) -> str:
        return self.summary

    def forward(self, x):
        out = self.norm(self.conv(x))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.pool(self.act(out))


class CNN(nn.Sequential):
    outputs = "logits"

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
        residual: bool = False,
        activation: str = "relu",
        init: str = "default",
        init_std: float = 0.01,
    ):
        if len(input_shape) not in (2, 3):
            raise UserError(
                f"model=cnn needs images (channels x height x width) or sequences (steps x "
                f"features) but the data gives flat rows of shape {tuple(input_shape)}; use "
                "model=mlp for it."
            )
        if pool not in POOLS:
            raise UserError(f"model.pool={pool} is unknown; choose from: {', '.join(POOLS)}.")
        if residual and 2 * padding != kernel_size - 1:
            raise UserError(
                f"model.residual=true adds each block's input to its output, which needs 'same' "
                f"padding: with model.kernel_size={kernel_size} use an odd kernel and "
                f"model.padding={(kernel_size - 1) // 2}, or model.residual=false."
            )
        dims = len(input_shape) - 1
        if dims == 1:  # (T, F): F channels over T steps
            c_in, spatial = input_shape[1], input_shape[:1]
        else:
            c_in, spatial = input_shape[0], input_shape[1:]
        sizes = plan_sizes(spatial, channels, kernel_size, stride, padding, pool)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if dims == 1:
            layers["channels_first"] = ChannelsFirst()
        size = tuple(spatial)
        for i, (c_out, planned) in enumerate(zip(channels, sizes), start=1):
            layers[f"block{i}"] = ConvBlock(
                dims,
                c_in,
                c_out,
                kernel_size,
                stride,
                padding,
                pool,
                batchnorm,
                residual,
                activation,
                size,
                planned,
            )
            c_in, size = c_out, planned[1]
        global_pool = nn.AdaptiveAvgPool1d(1) if dims == 1 else nn.AdaptiveAvgPool2d(1)
        head: list[nn.Module] = [global_pool, nn.Flatten()]
        if hidden:
            head += [nn.Linear(c_in, hidden), make_activation(activation), nn.Dropout(dropout)]
            c_in = hidden
        layers["head"] = nn.Sequential(*head, nn.Linear(c_in, out_features))
        super().__init__(layers)
        self.sizes = sizes
        initialize(self, init, activation, init_std)
