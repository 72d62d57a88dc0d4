"""The terms of Symphony's single loss (docs/algorithm.md#loss). Each function is one equation of the paper."""
from __future__ import annotations

import torch


def rehse(x: torch.Tensor) -> torch.Tensor:
    """ReHSE(x) = x·tanh(x/2): a smooth Huber, ≈ x²/2 near 0 and ≈ |x| far out."""
    return x * torch.tanh(x / 2)


def rehae(x: torch.Tensor) -> torch.Tensor:
    """ReHAE(x) = |x|·tanh(x/2): odd, monotone; the actor maximises it."""
    return x.abs() * torch.tanh(x / 2)


def omega(x: torch.Tensor) -> torch.Tensor:
    """Ω(x) = ln((1+x)/(1−x)) = 2·atanh(x)."""
    return 2 * torch.atanh(x)


def swaddling_sigma_terms(sigma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """W(σ, β) = Ω(σ^{1/β*}) + β·σ·ln σ: the terms of Swaddling that involve σ (the barrier and the 1/e well)."""
    return omega(sigma ** (1.0 / beta.detach())) + beta * sigma * torch.log(sigma)


def swaddling(sigma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Swaddle(σ, β) = Ω(σ^{1/β*}) + β·σ·ln σ + Ω(β²), β* = stop_grad(β); elementwise (holds σ near 1/e)."""
    return swaddling_sigma_terms(sigma, beta) + omega(beta ** 2)


def temporal_advantage(q_next: torch.Tensor, m_prev: torch.Tensor | float, alpha: float, eps: float, *,
                       scalar_denominator: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """TA = (Q' − m_t)/max(|m_t|, eps), m_t = α·m_{t−1} + (1−α)·stop_grad(Q').

    q_next: (B, 1) target-critic value of (s', a'), differentiable w.r.t. a'. m_prev: scalar EMA carried from the
    previous update. Returns (TA (B, 1), m_t (B, 1) detached); the caller keeps mean(m_t) for the next update.
    ``scalar_denominator`` (opt-in, docs/algorithm.md#opt-ta-scalar-denominator): the denominator is the scalar
    EMA of batch means, max(|mean_B(m_t)|, eps), instead of the per-sample |m_t|.
    """
    m_t = alpha * m_prev + (1 - alpha) * q_next.detach()
    denom = m_t.mean() if scalar_denominator else m_t
    return (q_next - m_t) / denom.abs().clamp_min(eps), m_t
