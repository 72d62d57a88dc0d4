"""Bounded exploration noise ε = clamp(N(0, I), −k, k)/k ∈ [−1, 1] (docs/algorithm.md#actor-head): k = e (std 0.366)
or π (SE, std 0.318)."""
from __future__ import annotations

import torch


def bounded_noise(shape: torch.Size | tuple[int, ...], clip: float, *, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32, generator: torch.Generator | None = None) -> torch.Tensor:
    """ε = clamp(N(0, I), −clip, clip) / clip, elementwise in [−1, 1]."""
    z = torch.randn(shape, device=device, dtype=dtype, generator=generator)
    return z.clamp_(-clip, clip).div_(clip)
