"""Does the learner keep up with its robots? In async mode the learner aims at ``utd_target`` updates per stored
transition; if the robots send T transitions/s it needs utd_target·T updates/s. :class:`PaceCheck` measures both
rates once learning has run for ``settle_s`` and says in one line whether it keeps up, and if not, which UTD it holds
and which robot rate it could serve at the target UTD. It speaks again only when the verdict changes."""
from __future__ import annotations

from typing import Optional


class PaceCheck:
    def __init__(self, utd_target: float, *, settle_s: float = 20.0, margin: float = 0.9) -> None:
        self.utd_target = float(utd_target)
        self.settle_s = float(settle_s)
        self.margin = float(margin)
        self._t0: Optional[float] = None
        self._stored0 = self._updates0 = 0
        self.keeps_up: Optional[bool] = None
        self.last: tuple[float, float] = (0.0, 0.0)      # transitions/s, updates/s of the last full window

    def sample(self, now: float, stored: int, updates: int, learning: bool) -> Optional[tuple[bool, str]]:
        """Feed the counters (about once a second); returns (keeps_up, line) when there is something to say."""
        if not learning or self.utd_target <= 0:
            self._t0 = None
            return None
        if self._t0 is None:
            self._t0, self._stored0, self._updates0 = now, stored, updates
            return None
        dt = now - self._t0
        if dt < self.settle_s:
            return None
        tps, ups = (stored - self._stored0) / dt, (updates - self._updates0) / dt
        self._t0, self._stored0, self._updates0 = now, stored, updates     # the next window
        self.last = (tps, ups)
        if tps <= 0:
            return None
        need = self.utd_target * tps
        ok = ups >= self.margin * need
        if ok == self.keeps_up:
            return None
        self.keeps_up = ok
        if ok:
            return True, (f"keeping up: {tps:.0f} transitions/s x UTD {self.utd_target:g} needs {need:.0f} updates/s, "
                          f"this learner does {ups:.0f}")
        return False, (f"CANNOT KEEP UP: {tps:.0f} transitions/s x UTD {self.utd_target:g} needs {need:.0f} "
                       f"updates/s, this learner does {ups:.0f}: it holds UTD {ups / tps:.2f}, or UTD "
                       f"{self.utd_target:g} for {ups / self.utd_target:.0f} transitions/s (a robot at that rate); use "
                       "a GPU, a smaller preset, fewer robots or a lower control rate")
