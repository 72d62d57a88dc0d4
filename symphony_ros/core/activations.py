"""ReSine, the only nonlinearity of Symphony's networks (docs/algorithm.md#feedforward)."""
from __future__ import annotations

import math

import torch
from torch import nn


def resine(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """ReSine: F(x) = f(x)·sigmoid(1.5·f(x)/σ), with f(x) = σ·sin(x/σ) and σ = sigmoid(s).

    ``s`` broadcasts against the last dimension of ``x`` (one learnable period/amplitude per unit).
    """
    sigma = torch.sigmoid(s)
    sine = torch.sin(x / sigma)  # f(x)/σ
    return sigma * sine * torch.sigmoid(1.5 * sine)


class ReSine(nn.Module):
    """Learnable-period sine with a SiLU-like gate; ``s_j ~ U(-1/√h, 1/√h)`` so σ_j starts near 0.5."""

    def __init__(self, h: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(h)
        self.s = nn.Parameter(torch.empty(h).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., h) -> (..., h)
        return resine(x, self.s)
