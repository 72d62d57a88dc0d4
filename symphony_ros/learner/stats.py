"""The learner's statistics: a snapshot of its counters and recent losses, and the update-rate meter."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional


@dataclass
class LearnerStats:
    """A snapshot of the learner's counters (thread-safe to take at any time; floats are NaN until known).

    received = stored + rejected + queued. ``utd`` = updates / transitions stored since learning began.
    ``updates_per_second`` is an EMA over ~``stats_period_s`` windows. Losses, σ and β are those of a recent update
    (converted from device tensors at most every ``stats_period_s``, so the worker is not synchronised after every
    update)."""
    received: int
    stored: int
    rejected: int
    queued: int
    updates: int
    weights_version: int
    learning: bool
    done: bool
    buffer_fill: int
    buffer_capacity: int
    reward_scale: float
    updates_per_second: float
    utd: float
    critic_loss: float
    actor_loss: float
    swaddling_loss: float
    sigma_mean: float
    beta_mean: float
    q_mean: float
    rejected_reasons: dict[str, int]
    error: Optional[str]
    healthy: bool = True            # no update skipped for a non-finite loss/gradient in the latest run
    updates_skipped: int = 0        # updates skipped (non-finite loss or gradient)
    restores: int = 0               # last good state restored after max_bad_updates skipped in a row
    weights_withheld: int = 0       # weight snapshots not published because they were not finite


class RateMeter:
    """Updates per second as an EMA (weight 0.4 on the newest window) sampled at most every ``period_s``."""

    def __init__(self, period_s: float) -> None:
        self.period_s = float(period_s)
        self.value = float("nan")
        self._t = time.monotonic()
        self._count = 0

    def restart(self, count: int) -> None:
        self._t, self._count = time.monotonic(), int(count)

    def due(self, now: float) -> bool:
        return now - self._t >= self.period_s

    def sample(self, count: int, now: float) -> None:
        dt = now - self._t
        if dt > 0:
            rate = (count - self._count) / dt
            self.value = rate if not math.isfinite(self.value) else 0.6 * self.value + 0.4 * rate
        self._t, self._count = now, int(count)
