"""Bounded exploration noise ε = clamp(N(0, I), −k, k)/k ∈ [−1, 1] (docs/algorithm.md#actor-head): k = e (std 0.366)
or π (SE, std 0.318).

One formula, two random sources: :func:`bounded_noise` (torch, the learner and the torch actors) and
:func:`bounded_noise_numpy` (numpy, the ONNX runtime on a robot without torch). torch is imported inside the torch
function, so this module imports without it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def bounded_noise(shape: torch.Size | tuple[int, ...], clip: float, *, device: torch.device | str = "cpu",
                  dtype: torch.dtype | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """ε = clamp(N(0, I), −clip, clip) / clip, elementwise in [−1, 1] (``dtype`` None = float32)."""
    import torch
    z = torch.randn(shape, device=device, dtype=torch.float32 if dtype is None else dtype, generator=generator)
    return z.clamp_(-clip, clip).div_(clip)


def bounded_noise_numpy(shape: tuple[int, ...], clip: float, rng: np.random.Generator) -> np.ndarray:
    """The same ε with numpy: float32 array of ``shape``, elementwise in [−1, 1], drawn from ``rng``."""
    z = rng.standard_normal(shape, dtype=np.float32)
    np.clip(z, -clip, clip, out=z)
    z /= np.float32(clip)
    return z
