"""Symphony's "Adam" (docs/algorithm.md#optimizer): AdamW without bias correction, decoupled weight decay on every
parameter.

    m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²;   θ ← θ − lr·( m/(√v + ε) + λ·θ )

With no bias correction the first step is (1−β1)/√(1−β2) ≈ 5.4× a bias-corrected Adam step (β = (0.618, 0.995)).
Implemented with ``torch._foreach_*`` kernels: one launch per operation for all parameters.

``step(gate)``: with a 0-d float tensor ``gate`` (1.0 or 0.0, computed on the device, so the step can be captured in
a CUDA graph) a step with ``gate = 0`` changes nothing at all: moments and parameters stay exactly as they were
(the update guard of docs/algorithm.md#optimizer skips updates whose loss or gradients are not finite).

``anneal_eps`` (opt-in, docs/algorithm.md#opt-adam-eps-anneal): ε_t = β2·ε_{t−1} + (1−β2)·ε, ε_0 = 1 − ε, updated
before each step (a device tensor in the group, checkpointed with the optimizer): SGD-like first steps, no burst.
"""
from __future__ import annotations

from typing import Iterable

import torch


class SymphonyAdam(torch.optim.Optimizer):
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-4,
                 betas: tuple[float, float] = (0.6180339887498949, 0.995), eps: float = 1e-8,
                 weight_decay: float = 0.01, anneal_eps: bool = False) -> None:
        if lr <= 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or eps <= 0 or weight_decay < 0:
            raise ValueError(f"invalid SymphonyAdam settings lr={lr} betas={betas} eps={eps} wd={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      anneal_eps=bool(anneal_eps)))

    @staticmethod
    def _eps(group: dict, params: list, gate: torch.Tensor | None = None) -> float | torch.Tensor:
        """The ε of this step: the constant, or the annealed ε_t (advanced here, before its use; not by a step
        whose gate is 0)."""
        if not group.get("anneal_eps"):
            return group["eps"]
        if "eps_t" not in group:
            group["eps_t"] = torch.tensor(1.0 - group["eps"], device=params[0].device)
        eps_t = group["eps_t"]
        beta2 = group["betas"][1]
        step = (1 - beta2) * (group["eps"] - eps_t)          # ε_t − ε_{t−1} = (1−β2)(ε − ε_{t−1})
        eps_t.add_(step if gate is None else step * gate)
        return eps_t

    @torch.no_grad()
    def step(self, closure=None, gate: torch.Tensor | None = None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            exp_avg, exp_avg_sq = [], []
            for p in params:
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                exp_avg.append(state["exp_avg"])
                exp_avg_sq.append(state["exp_avg_sq"])
            group["step"] = group.get("step", 0) + 1   # informational: no bias correction uses it
            beta1, beta2 = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            eps = self._eps(group, params, gate)
            if gate is not None:
                self._gated_step(params, grads, exp_avg, exp_avg_sq, gate, beta1, beta2, lr, wd, eps)
                continue
            torch._foreach_lerp_(exp_avg, grads, 1 - beta1)                 # m ← β1·m + (1−β1)·g
            torch._foreach_mul_(exp_avg_sq, beta2)                           # v ← β2·v + (1−β2)·g²
            torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1 - beta2)
            denom = torch._foreach_sqrt(exp_avg_sq)
            torch._foreach_add_(denom, eps)
            if wd:
                torch._foreach_mul_(params, 1 - lr * wd)                      # decoupled: θ ← θ − lr·λ·θ
            torch._foreach_addcdiv_(params, exp_avg, denom, value=-lr)        # θ ← θ − lr·m/(√v + ε)
        return loss

    @staticmethod
    def _gated_step(params, grads, exp_avg, exp_avg_sq, gate, beta1, beta2, lr, wd, eps) -> None:
        """The same equations with every change multiplied by ``gate`` (exactly none when it is 0; non-finite
        gradients are zeroed first, so 0·NaN never reaches a moment)."""
        n = len(params)
        g = [torch.where(gate > 0, x, 0.0) for x in grads]
        torch._foreach_lerp_(exp_avg, g, [gate * (1 - beta1)] * n)        # m ← m + (1−β1)·gate·(g − m)
        g2 = torch._foreach_mul(g, g)
        torch._foreach_lerp_(exp_avg_sq, g2, [gate * (1 - beta2)] * n)    # v ← v + (1−β2)·gate·(g² − v)
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_add_(denom, eps)
        step = torch._foreach_div(exp_avg, denom)                          # m/(√v + ε)
        if wd:
            torch._foreach_add_(step, params, alpha=wd)                     # + λ·θ (decoupled)
        torch._foreach_mul_(step, gate * lr)
        torch._foreach_sub_(params, step)                                  # θ ← θ − lr·gate·(m/(√v+ε) + λθ)
