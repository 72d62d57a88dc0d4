"""Can this machine hold the robot's control rate? Measured once at start-up, told in one line.

:func:`command_path_ms` times what the actor does per env step (the policy's forward pass, the action mapping and the
safety pipeline) on a neutral input. :func:`rate_verdict` compares its p99 with a share of the control period: the
rest of the period belongs to transport (DDS, both ways), the task node and the driver, so the actor's own share is
:data:`ACTOR_BUDGET` of it. The verdict names the rate this actor can hold.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

ACTOR_BUDGET = 0.5        # share of the control period the actor's own work may take (p99)


def command_path_ms(act: Callable[[np.ndarray], Any], obs_dim: int, *, calls: int = 200,
                    warmup: int = 20) -> tuple[float, float]:
    """(p50, p99) in milliseconds of ``act(x)`` on zeros (obs_dim,) float32 after ``warmup`` calls."""
    x = np.zeros(obs_dim, np.float32)
    for _ in range(warmup):
        act(x)
    t = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter()
        act(x)
        t[i] = time.perf_counter() - t0
    return float(np.percentile(t, 50) * 1e3), float(np.percentile(t, 99) * 1e3)


def rate_verdict(rate_hz: float, p50_ms: float, p99_ms: float) -> tuple[bool, str]:
    """(holds, one line) for a control rate and the measured command path."""
    period_ms = 1e3 / rate_hz
    budget = ACTOR_BUDGET * period_ms
    holdable = 1e3 * ACTOR_BUDGET / p99_ms if p99_ms > 0 else float("inf")
    if p99_ms <= budget:
        return True, (f"holds {rate_hz:g} Hz: a command takes p50 {p50_ms:.2f} / p99 {p99_ms:.2f} ms of its "
                      f"{budget:.1f} ms budget ({ACTOR_BUDGET:.0%} of the period); up to ~{holdable:.0f} Hz")
    return False, (f"CANNOT HOLD {rate_hz:g} Hz: a command takes p99 {p99_ms:.2f} ms, over its {budget:.1f} ms budget "
                   f"({ACTOR_BUDGET:.0%} of the {period_ms:.1f} ms period); this actor holds ~{holdable:.0f} Hz: lower "
                   "control_rate_hz, use a smaller preset or an ONNX export, or free the CPU")
