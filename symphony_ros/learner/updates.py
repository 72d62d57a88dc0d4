"""The learner's update loop: how many updates to run and when (lockstep: the G a transition owes; async: toward the
UTD target, :meth:`TrainingSchedule.updates_owed`), the update guard's host side (:meth:`SymphonyAgent.guard`), and
the weight snapshots every K updates, never of non-finite weights."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..core.agent import SymphonyAgent, UpdateStats
from ..core.policy import flatten_actor

WeightsCallback = Callable[[int, str, np.ndarray], None]


class UpdateLoop:
    """Runs ``agent.update()`` and publishes weights (``on_weights(version, layout_json, data)``) whenever ``K``
    updates passed since the last snapshot; version = the update count (0 = the untrained actor)."""

    def __init__(self, agent: SymphonyAgent, *, mode: str, weights_every: int, utd_target: float,
                 on_weights: Optional[WeightsCallback] = None,
                 safe_call: Callable[..., None] = lambda fn, *a: fn(*a),
                 warn: Callable[[str], None] = lambda text: None) -> None:
        self.agent = agent
        self.mode = mode
        self.G = int(agent.config.updates_per_step)
        self.K = int(weights_every) if weights_every > 0 else max(1, self.G)
        self.utd_target = float(utd_target) if utd_target > 0 else float(self.G)
        self.on_weights = on_weights
        self._safe_call = safe_call
        self.weights_version = -1          # none published yet
        self.last: Optional[UpdateStats] = None
        self.withheld = 0                  # weight snapshots not published because they were not finite
        self._warn = warn

    @property
    def updates(self) -> int:
        return self.agent.updates

    def owed(self, stored_since_learning: int) -> int:
        """Async: updates owed now beyond those done."""
        return self.agent.schedule.updates_owed(stored_since_learning, self.utd_target) - self.updates

    def run(self, n: int) -> None:
        """``n`` updates, each followed by a weight snapshot when K have passed since the last one."""
        for _ in range(n):
            self.last = self.agent.update()
            if self.updates - self.weights_version >= self.K:
                said = self.agent.guard(self.agent.config.max_bad_updates)
                if said:
                    self._warn(said)
                self.emit_weights()

    def emit_weights(self) -> None:
        layout, data = flatten_actor(self.agent.actor)
        if not np.isfinite(data).all():    # never publish what no actor should act with
            self.withheld += 1
            if self.withheld & (self.withheld - 1) == 0:     # 1st, 2nd, 4th, 8th ... time: one line each
                self._warn(f"the actor's weights after {self.updates} updates are not finite: not published "
                           f"({self.withheld} snapshots withheld so far)")
            return
        self.weights_version = self.updates
        if self.on_weights is not None:
            self._safe_call(self.on_weights, self.weights_version, layout, data)

    def current_weights(self) -> tuple[int, str, np.ndarray]:
        """(version, layout JSON, float32 data (P,)) of the actor now; call at a safe point."""
        layout, data = flatten_actor(self.agent.actor)
        return self.updates, layout, data
