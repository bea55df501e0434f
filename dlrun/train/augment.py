"""Data augmentation of training batches, on the device, a whole batch per call.

Images (N, C, H, W) get one random affine warp each (crop-with-padding shift, horizontal
flip, rotation, zoom), all applied by a single `affine_grid` + `grid_sample` over the
batch. Vectors (N, F) and sequences (N, T, F) of real values get Gaussian input noise and
an optional random roll along axis 1 (per-step labels roll with their inputs). The loop
calls this on training batches only; evaluation never sees it.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


class BatchAugment:
    def __init__(
        self,
        crop_pad: int = 1,
        hflip: bool = False,
        rotate: float = 10.0,
        scale: float = 0.1,
        noise: float = 0.1,
        shift: int = 0,
    ):
        self.crop_pad, self.hflip, self.rotate, self.scale = crop_pad, hflip, rotate, scale
        self.noise, self.shift = noise, shift

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim == 4:
            return self.images(x, generator), y
        if self.shift > 0:
            x, y = self.roll(x, y, generator)
        if self.noise > 0 and x.is_floating_point():
            x = x + self.noise * torch.randn(
                x.shape, device=x.device, dtype=x.dtype, generator=generator
            )
        return x, y

    def images(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One affine map per image from output to input coordinates, in grid_sample's [-1, 1] units."""
        n, _, height, width = x.shape
        u = torch.rand(n, 3, device=x.device, generator=generator)
        angle = (2 * u[:, 0] - 1) * math.radians(self.rotate)
        zoom = 1 + (2 * u[:, 1] - 1) * self.scale
        flip = torch.where(u[:, 2] < 0.5, -1.0, 1.0) if self.hflip else torch.ones_like(zoom)
        pad = self.crop_pad
        shift = torch.randint(-pad, pad + 1, (n, 2), device=x.device, generator=generator).to(
            x.dtype
        )
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        # a rotation in pixel space, expressed in normalized coordinates (non-square images)
        theta = torch.stack(
            [
                torch.stack([cos * flip, -sin * height / width, -2 * shift[:, 0] / width], dim=1),
                torch.stack([sin * width / height * flip, cos, -2 * shift[:, 1] / height], dim=1),
            ],
            dim=1,
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def roll(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        """Roll each example by its own offset in [-shift, shift] along axis 1 (time or position)."""
        n, length = x.shape[:2]
        offset = torch.randint(
            -self.shift, self.shift + 1, (n, 1), device=x.device, generator=generator
        )
        index = (torch.arange(length, device=x.device) - offset) % length
        rolled = x.gather(1, index.view(n, length, *[1] * (x.ndim - 2)).expand_as(x))
        per_step_labels = not y.is_floating_point() and y.ndim == 2 and y.shape[1] == length
        return rolled, (y.gather(1, index) if per_step_labels else y)
