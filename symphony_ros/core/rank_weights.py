"""Fixed rank weights shared by the sorted target critic (docs/algorithm.md#sorted-target) and the Fading
Replay Buffer (docs/algorithm.md#replay-sampling).

Every family is one function ``f(u)`` of a rank position ``u ∈ [0, 1)``:

* critic targets use ``u = 1 − i/N_q`` for the i-th smallest of the N_q sorted heads (i = 0..N_q−1);
* the replay buffer uses ``u = k/N`` for the k-th oldest slot (k = 0 oldest .. N−1 newest).

Families (``power`` is the exponent p):

* ``tanh``   (S3, SE, S2, ED; p = e):     f(u) = tanh((π·u)^p)
* ``bell``   (S2~ Mar-2026; p = 2π, or 2e for "Saya"): f(u) = exp(−(|u − φ/2|·φ)^p)
* ``dimple`` (S2~ Dec-2025; p = π):       f(u) = tanh((π·u)^p) − 0.02·exp(−((1 − u)/0.02)²)
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # torch is imported by the functions: the config (and an ONNX-only robot) needs only FAMILIES
    import torch

PHI = (1.0 + math.sqrt(5.0)) / 2.0
FAMILIES = ("tanh", "bell", "dimple")


def rank_weight(u: torch.Tensor, family: str, power: float) -> torch.Tensor:
    """Unnormalised weight f(u) of a rank position u in [0, 1) (float64 for accuracy)."""
    import torch
    if family == "tanh":
        return torch.tanh((math.pi * u) ** power)
    if family == "bell":
        return torch.exp(-((u - PHI / 2).abs() * PHI) ** power)
    if family == "dimple":
        return torch.tanh((math.pi * u) ** power) - 0.02 * torch.exp(-(((1.0 - u) / 0.02) ** 2))
    raise ValueError(f"unknown rank-weight family {family!r}; choose one of {FAMILIES}")


def critic_target_weights(n_q: int, family: str, power: float) -> torch.Tensor:
    """p_i for the i-th smallest sorted head, i = 0..n_q−1; sums to 1. Shape (n_q,), float64."""
    import torch
    i = torch.arange(n_q, dtype=torch.float64)
    w = rank_weight(1.0 - i / n_q, family, power)
    return w / w.sum()


def replay_sampling_weights(n: int, family: str, power: float) -> torch.Tensor:
    """p_k for the k-th oldest of n slots (k = 0 oldest); sums to 1. Shape (n,), float64."""
    import torch
    k = torch.arange(n, dtype=torch.float64)
    w = rank_weight(k / n, family, power).clamp_min(0.0)
    return w / w.sum()


def effective_sample_size(p: torch.Tensor) -> float:
    """ESS = 1 / Σ p_i² of a normalised weight vector."""
    return float(1.0 / (p.double() ** 2).sum())
