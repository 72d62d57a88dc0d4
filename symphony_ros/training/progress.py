"""The progress bar both front-ends show: steps, steps/s, updates/s, the last evaluation and any extra fields
(σ, β, UTD, command latency), refreshed at most twice a second."""
from __future__ import annotations

import math
import time
from typing import Any


class ProgressReporter:
    """A tqdm bar over ``total`` environment steps (None = unknown), starting at ``initial`` (a resumed run shows its
    total steps, not this process's). ``enabled=False`` prints nothing."""

    def __init__(self, total: int | None, initial: int = 0, *, enabled: bool = True, period_s: float = 0.5) -> None:
        self.enabled = enabled
        self.period_s = float(period_s)
        self._t = time.perf_counter()
        self._steps, self._updates = int(initial), None
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total or None, initial=int(initial), unit="step", dynamic_ncols=True,
                            smoothing=0.1)

    def update(self, steps: int, updates: int, **fields: Any) -> None:
        """Report the run's total ``steps`` and ``updates``; ``fields`` are shown as they are (floats rounded)."""
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self._t < self.period_s:
            return
        dt = now - self._t
        post = dict(sps=f"{(steps - self._steps) / dt:.0f}",
                    ups=f"{(updates - (self._updates if self._updates is not None else updates)) / dt:.0f}")
        for k, v in fields.items():
            if isinstance(v, float):
                post[k] = "-" if not math.isfinite(v) else (f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")
            else:
                post[k] = str(v)
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(steps - self.bar.n)
        self._t, self._steps, self._updates = now, steps, updates

    def note(self, text: str) -> None:
        """One line above the bar (or plain print without one)."""
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
