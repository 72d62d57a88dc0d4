"""Balance a pole on a cart: the inverted pendulum described as a one-joint robot (the cart's slider commanded, the
pole's hinge passive), scored as gymnasium's InvertedPendulum-v5 scores it."""
from __future__ import annotations

import numpy as np

from .base import RobotState, Task, TaskError


class PendulumBalance(Task):
    """Reward 1 for every step the pole stays within ±max_angle (rad) of upright, 0 on the step it leaves (the
    episode then ends, terminated). Observation: positions and velocities of slider and hinge (gymnasium's)."""

    name = "pendulum_balance"
    params = dict(pole_joint="hinge", max_angle=0.2)
    observation = ["joint_position", "joint_velocity"]

    def validate(self) -> None:
        if self.p["pole_joint"] not in self.d.observed_joints:
            raise TaskError(f"task '{self.name}': pole_joint '{self.p['pole_joint']}' is not a joint of robot "
                            f"'{self.d.name}' ({', '.join(self.d.observed_joints)})")
        if not self.p["max_angle"] > 0:
            raise TaskError(f"task '{self.name}': max_angle must be > 0, got {self.p['max_angle']}")

    def _up(self, state: RobotState) -> bool:
        angle, _ = self.joint(state, self.p["pole_joint"])
        return abs(angle) <= self.p["max_angle"]

    def reward(self, prev: RobotState, state: RobotState, command: np.ndarray | None) -> float:
        return 1.0 if self._up(state) else 0.0

    def fallen(self, state: RobotState) -> tuple[bool, str]:
        if self._up(state):
            return False, ""
        return True, f"pole beyond {self.p['max_angle']:g} rad"
