"""The safety pipeline: every command an actor sends passes these stages, in this order, identically in simulation,
training and deployment (pure numpy; configured from the robot description or the actor's parameters).

    desired (the policy's action mapped to command units)
      1. PositionLimits   clamp into [lower, upper]; NaN/Inf entries become the safe value
      2. RateLimit        at most ``max_delta`` change per control period (from the velocity limits)
      3. Smoothing        optional low-pass (exponential, cutoff in Hz) or one-euro filter
      4. SoftStart        after activation (or a cleared e-stop): blend from the start pose to the policy over T s
      5. PositionLimits   again: whatever happened above, the command published is inside the limits
    = executed

The executed command, mapped back into policy units, is what goes into the replay buffer as the transition's action:
the critic must learn Q of what the robot did, not of what the policy wished (a clamped or filtered command is a
different action with different consequences). Each stage counts the commands it changed; the actor publishes the
shares in its status.

:class:`SafeRamp` is the way back to the safe pose (after an episode, on the watchdog, after a fall): from the last
executed command to the safe command over ``duration_s``, never a jump.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .safety import SafetyLayer

STAGES = ("limits", "rate_limit", "smoothing", "soft_start")
FILTERS = ("none", "lowpass", "one_euro")


def _positive_or_zero(value: float, what: str) -> float:
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return v


class RateLimit:
    """|cmd − previous| ≤ max_delta (n,) per control period; the first command after a reset is not limited."""

    def __init__(self, max_delta: np.ndarray) -> None:
        d = np.asarray(max_delta, dtype=np.float64)
        if not (np.isfinite(d).all() and (d > 0).all()):
            raise ValueError(f"rate limits must be finite and > 0 per joint, got {d.tolist()}")
        self.max_delta = d
        self.prev: np.ndarray | None = None

    def reset(self, prev: np.ndarray | None = None) -> None:
        self.prev = None if prev is None else np.array(prev, dtype=np.float64)

    def __call__(self, cmd: np.ndarray) -> np.ndarray:
        if self.prev is not None:
            cmd = np.clip(cmd, self.prev - self.max_delta, self.prev + self.max_delta)
        self.prev = cmd.copy()
        return cmd


class LowPass:
    """y ← y + α·(x − y), α = 1 − exp(−2π·f_c·T): a first-order low-pass at ``cutoff_hz`` for period ``T``."""

    def __init__(self, cutoff_hz: float, period_s: float) -> None:
        if not (cutoff_hz > 0 and period_s > 0):
            raise ValueError(f"low-pass cutoff ({cutoff_hz} Hz) and control period ({period_s} s) must be > 0")
        self.alpha = 1.0 - math.exp(-2 * math.pi * cutoff_hz * period_s)
        self.y: np.ndarray | None = None

    def reset(self, y: np.ndarray | None = None) -> None:
        self.y = None if y is None else np.array(y, dtype=np.float64)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.y = x.copy() if self.y is None else self.y + self.alpha * (x - self.y)
        return self.y.copy()


class OneEuro:
    """The one-euro filter (Casiez et al. 2012): a low-pass whose cutoff rises with the signal's speed,
    f_c = min_cutoff + beta·|dx/dt| (smooth when still, little lag when moving)."""

    def __init__(self, min_cutoff_hz: float, beta: float, period_s: float, d_cutoff_hz: float = 1.0) -> None:
        if not (min_cutoff_hz > 0 and beta >= 0 and period_s > 0 and d_cutoff_hz > 0):
            raise ValueError("one-euro filter: min cutoff, derivative cutoff and period must be > 0, beta >= 0")
        self.min_cutoff, self.beta, self.T, self.d_cutoff = min_cutoff_hz, beta, period_s, d_cutoff_hz
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / self.T)

    def reset(self, x: np.ndarray | None = None) -> None:
        self.x = None if x is None else np.array(x, dtype=np.float64)
        self.dx = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self.x) / self.T
        self.dx = self.dx + self._alpha(self.d_cutoff) * (dx - self.dx)
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.dx))
        self.x = self.x + a * (x - self.x)
        return self.x.copy()


class SoftStart:
    """For ``duration_s`` after :meth:`begin`: cmd = start + w·(desired − start), w rising linearly 0 → 1."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = _positive_or_zero(duration_s, "soft start time")
        self.start: np.ndarray | None = None
        self.t0 = 0.0

    def begin(self, start: np.ndarray, now: float) -> None:
        if self.duration_s > 0:
            self.start, self.t0 = np.array(start, dtype=np.float64), float(now)

    def __call__(self, desired: np.ndarray, now: float) -> np.ndarray:
        if self.start is None:
            return desired
        w = (now - self.t0) / self.duration_s
        if w >= 1.0:
            self.start = None
            return desired
        return self.start + max(w, 0.0) * (desired - self.start)


@dataclass
class Executed:
    """One pass through the pipeline: the command to publish and which stages changed it."""
    command: np.ndarray
    changed: dict[str, bool] = field(default_factory=dict)


class CommandPipeline:
    """The stages above for n joints. ``max_delta`` (n,) or None = no rate limit; ``smoothing`` in FILTERS with
    ``cutoff_hz`` (low-pass cutoff / one-euro minimum cutoff) and ``one_euro_beta``; ``soft_start_s`` 0 = off;
    ``period_s`` the control period."""

    def __init__(self, safety: SafetyLayer, *, period_s: float, max_delta: np.ndarray | None = None,
                 smoothing: str = "none", cutoff_hz: float = 5.0, one_euro_beta: float = 0.5,
                 soft_start_s: float = 0.0) -> None:
        if smoothing not in FILTERS:
            raise ValueError(f"command smoothing '{smoothing}' unknown; choose one of {', '.join(FILTERS)}")
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"control period must be > 0 s, got {period_s!r}")
        self.safety = safety
        self.period_s = float(period_s)
        self.rate = RateLimit(max_delta) if max_delta is not None else None
        self.filter = (LowPass(cutoff_hz, period_s) if smoothing == "lowpass" else
                       OneEuro(cutoff_hz, one_euro_beta, period_s) if smoothing == "one_euro" else None)
        self.soft_start = SoftStart(soft_start_s)
        self.count = 0
        self.changed = {s: 0 for s in STAGES}
        self.last: np.ndarray | None = None

    def reset(self, now: float, start: np.ndarray | None = None) -> None:
        """A new stretch of commanding (activation, a cleared e-stop): filters forget, and the soft start blends from
        ``start`` (the measured pose, or the last command sent, or the safe command)."""
        base = self.safety.clamp(start if start is not None else (self.last if self.last is not None
                                                                  else self.safety.safe()))
        if self.rate is not None:
            self.rate.reset(base)
        if self.filter is not None:
            self.filter.reset(base)
        self.soft_start.begin(base, now)

    def __call__(self, desired: np.ndarray, now: float) -> Executed:
        changed = {}
        x = self.safety.clamp(desired)
        changed["limits"] = not np.array_equal(x, np.asarray(desired, dtype=np.float64).reshape(-1)) \
            if np.size(desired) == x.size else True
        for name, stage in (("rate_limit", self.rate), ("smoothing", self.filter)):
            if stage is None:
                changed[name] = False
                continue
            y = stage(x)
            changed[name] = not np.allclose(y, x, rtol=0, atol=1e-12)
            x = y
        y = self.soft_start(x, now)
        changed["soft_start"] = not np.array_equal(y, x)
        x = self.safety.clamp(y)
        self.count += 1
        for k, v in changed.items():
            self.changed[k] += int(v)
        self.last = x.copy()
        return Executed(x, changed)

    def shares(self) -> dict[str, float]:
        """Share of commands each stage changed (0..1), since construction."""
        return {k: (v / self.count if self.count else 0.0) for k, v in self.changed.items()}


class SafeRamp:
    """From ``start`` to ``safe`` over ``duration_s`` (linear), then the safe command; 0 s = at once."""

    def __init__(self, start: np.ndarray, safe: np.ndarray, duration_s: float, now: float) -> None:
        self.start, self.safe = np.array(start, np.float64), np.array(safe, np.float64)
        self.duration_s = _positive_or_zero(duration_s, "safe ramp time")
        self.t0 = float(now)

    def __call__(self, now: float) -> np.ndarray:
        if self.duration_s <= 0:
            return self.safe.copy()
        w = min(1.0, max(0.0, (now - self.t0) / self.duration_s))
        return self.start + w * (self.safe - self.start)

    def done(self, now: float) -> bool:
        return self.duration_s <= 0 or now - self.t0 >= self.duration_s
