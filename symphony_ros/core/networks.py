"""Symphony's networks (docs/algorithm.md#networks): FeedForward blocks, gradient dropout, the actor head, the fused
critic ensemble.

Shapes use B = batch, S = observation size, d = action size, h = hidden width, n = number of critics,
k = heads per critic (N_q = n·k).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .activations import ReSine, resine
from .noise import bounded_noise


def gradient_dropout(x: torch.Tensor, keep: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """GD(x) = M⊙x + (1−M)⊙stop_grad(x), M ~ Bernoulli(keep) per element
    (docs/algorithm.md#gradient-dropout). Forward value is unchanged."""
    if not torch.is_grad_enabled() or not x.requires_grad:
        return x
    mask = torch.rand(x.shape, device=x.device, generator=generator) < keep
    return torch.where(mask, x, x.detach())


class GradientDropout(nn.Module):
    """Module form of :func:`gradient_dropout`; ``generator`` is set by the owner for reproducibility."""

    def __init__(self, keep: float) -> None:
        super().__init__()
        self.keep = float(keep)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gradient_dropout(x, self.keep, self.generator)


class FeedForward(nn.Module):
    """Linear(f_in→h) → LayerNorm(h) → Linear(h→h) → ReSine(h) → Linear(h→f_out) [→ GradientDropout]."""

    def __init__(self, f_in: int, h: int, f_out: int, grad_dropout_keep: float | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(f_in, h), nn.LayerNorm(h), nn.Linear(h, h), ReSine(h), nn.Linear(h, f_out)]
        if grad_dropout_keep is not None:
            layers.append(GradientDropout(grad_dropout_keep))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, f_in) -> (B, f_out)
        return self.net(x)


class Actor(nn.Module):
    """Actor head (docs/algorithm.md#actor-head): FeedForward(S, h, 3d) split into A, σ ("scale") and β ("temperature").

    a = a_max·tanh(act·σ⊙A + noise·ε),  A = tanh(A_raw/2),  σ = |tanh(S_raw/2)|,  β = |tanh(B_raw/2)|,
    ε = clamp(N(0, I), ±noise_clip)/noise_clip. Actions are in [−a_max, a_max] policy units.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, *, noise_clip: float = math.e,
                 grad_dropout_keep: float | None = None, sigma_beta_clamp: float = 1e-3, a_max: float = 1.0) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.hidden = obs_dim, act_dim, hidden
        self.noise_clip = float(noise_clip)
        self.clamp = float(sigma_beta_clamp)
        self.net = FeedForward(obs_dim, hidden, 3 * act_dim, grad_dropout_keep)
        self.register_buffer("a_max", torch.full((act_dim,), float(a_max)))
        self.generator: torch.Generator | None = None

    def forward(self, s: torch.Tensor, act: float | torch.Tensor = 1.0, noise: float | torch.Tensor = 1.0,
                eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """s: (B, S) → action (B, d), clamped σ (B, d), clamped β (B, d).

        ``eps`` (B, d): pre-drawn bounded noise (an exported graph's input, see :mod:`symphony_ros.core.export`);
        None draws it here with ``self.generator``. Tensor gains ((1,) or (B, 1)) are always multiplied in.
        """
        a_raw, s_raw, b_raw = self.net(s).chunk(3, dim=-1)
        amplitude = torch.tanh(a_raw / 2)
        sigma = torch.tanh(s_raw / 2).abs()
        beta = torch.tanh(b_raw / 2).abs()
        pre = act * sigma * amplitude if isinstance(act, torch.Tensor) or act else torch.zeros_like(amplitude)
        if eps is not None:
            pre = pre + noise * eps
        elif noise:
            pre = pre + noise * bounded_noise(pre.shape, self.noise_clip, device=pre.device, dtype=pre.dtype,
                                              generator=self.generator)
        a = self.a_max * torch.tanh(pre)
        c = self.clamp
        return a, sigma.clamp(c, 1 - c), beta.clamp(c, 1 - c)


def _uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
    """PyTorch's default nn.Linear init: U(−1/√fan_in, 1/√fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return torch.empty(shape).uniform_(-bound, bound)


class CriticEnsemble(nn.Module):
    """n FeedForward(S+d, h, k) critics fused into batched matmuls over stacked weights
    (docs/algorithm.md#critic-ensemble).

    Numerically equal to n separate :class:`FeedForward` blocks (see :meth:`load_blocks`), but one kernel per
    layer instead of n. Output q(s, a): (B, n·k), the critics' heads concatenated in critic order.
    """

    def __init__(self, in_dim: int, hidden: int, heads: int, n_critics: int = 3,
                 grad_dropout_keep: float | None = None) -> None:
        super().__init__()
        n, h, k = n_critics, hidden, heads
        self.in_dim, self.hidden, self.heads, self.n_critics = in_dim, h, k, n
        self.w1 = nn.Parameter(_uniform((n, in_dim, h), in_dim))
        self.b1 = nn.Parameter(_uniform((n, 1, h), in_dim))
        self.ln_w = nn.Parameter(torch.ones(n, 1, h))
        self.ln_b = nn.Parameter(torch.zeros(n, 1, h))
        self.w2 = nn.Parameter(_uniform((n, h, h), h))
        self.b2 = nn.Parameter(_uniform((n, 1, h), h))
        self.s = nn.Parameter(_uniform((n, 1, h), h))  # ReSine parameters, U(±1/√h)
        self.w3 = nn.Parameter(_uniform((n, h, k), h))
        self.b3 = nn.Parameter(_uniform((n, 1, k), h))
        self.dropout = GradientDropout(grad_dropout_keep) if grad_dropout_keep is not None else None

    @property
    def n_q(self) -> int:
        return self.n_critics * self.heads

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """s: (B, S), a: (B, d) → q: (B, n·k)."""
        x = torch.cat([s, a], dim=-1)
        z = torch.matmul(x, self.w1) + self.b1                                  # (n, B, h)
        z = F.layer_norm(z, (self.hidden,)) * self.ln_w + self.ln_b
        z = resine(torch.baddbmm(self.b2, z, self.w2), self.s)
        q = torch.baddbmm(self.b3, z, self.w3)                                  # (n, B, k)
        if self.dropout is not None:
            q = self.dropout(q)
        return q.transpose(0, 1).reshape(x.shape[0], self.n_q)

    @torch.no_grad()
    def load_blocks(self, blocks: list[FeedForward]) -> None:
        """Copy the weights of n separate FeedForward critics into the fused tensors."""
        if len(blocks) != self.n_critics:
            raise ValueError(f"expected {self.n_critics} blocks, got {len(blocks)}")
        for i, blk in enumerate(blocks):
            lin1, ln, lin2, rs, lin3 = list(blk.net)[:5]
            self.w1[i].copy_(lin1.weight.T), self.b1[i, 0].copy_(lin1.bias)
            self.ln_w[i, 0].copy_(ln.weight), self.ln_b[i, 0].copy_(ln.bias)
            self.w2[i].copy_(lin2.weight.T), self.b2[i, 0].copy_(lin2.bias)
            self.s[i, 0].copy_(rs.s)
            self.w3[i].copy_(lin3.weight.T), self.b3[i, 0].copy_(lin3.bias)


def sorted_weighted_target(q: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Q_T(s, a) = Σ_i p_i · sort_ascending(q)_i (docs/algorithm.md#sorted-target).

    q: (B, N_q), weights: (N_q,) → (B, 1)."""
    return (torch.sort(q, dim=-1).values * weights).sum(dim=-1, keepdim=True)
