"""Humanoid rewards a real robot can compute: IMU attitude and angular rate, joint positions and velocities, the
command, and (walk) a state estimator's odometry. docs/robot.md#tasks compares humanoid_walk with gymnasium's
Humanoid reward on the same trajectory.
"""
from __future__ import annotations

import math

import numpy as np

from .base import RobotState, Task, TaskError


class _Humanoid(Task):
    def validate(self) -> None:
        p = self.p
        if not 0 <= p["max_tilt_deg"] <= 180:
            raise TaskError(f"task '{self.name}': max_tilt_deg must be in [0, 180] (0 = off), got {p['max_tilt_deg']}")
        if not p["min_height"] < p["max_height"]:
            raise TaskError(f"task '{self.name}': min_height {p['min_height']} must be < max_height {p['max_height']}")

    def ctrl_cost(self, command: np.ndarray | None) -> float:
        """w·Σ command² (controller units: for the MuJoCo humanoid, gymnasium's ctrl_cost on the same numbers)."""
        return 0.0 if command is None else float(self.p["ctrl_cost_weight"] * np.sum(np.square(command)))

    def fallen(self, state: RobotState) -> tuple[bool, str]:
        tilt = state.tilt_deg
        if self.p["max_tilt_deg"] > 0 and tilt > self.p["max_tilt_deg"]:
            return True, f"tilt {tilt:.0f} deg > {self.p['max_tilt_deg']:g}"
        if state.odometry is not None:
            z = state.base_height
            if not self.p["min_height"] < z < self.p["max_height"]:
                return True, f"base height {z:.2f} m outside ({self.p['min_height']:g}, {self.p['max_height']:g})"
        return False, ""


class HumanoidStand(_Humanoid):
    """Stay up and still: healthy_reward·cos(tilt) (0 on the fall) − w_ω·|ω|² − w_q̇·mean(q̇²) − ctrl cost.
    Falls: tilt beyond max_tilt_deg, or (with odometry) the base height outside (min_height, max_height)."""

    name = "humanoid_stand"
    params = dict(healthy_reward=5.0, angular_rate_weight=0.05, joint_velocity_weight=1e-3, ctrl_cost_weight=0.1,
                  max_tilt_deg=45.0, min_height=1.0, max_height=2.0)
    observation = ["joint_position", {"field": "joint_velocity", "scale": 0.1}, "projected_gravity",
                   "angular_velocity", {"field": "linear_acceleration", "scale": 0.1}]

    def reward(self, prev: RobotState, state: RobotState, command: np.ndarray | None) -> float:
        p = self.p
        upright = math.cos(math.radians(state.tilt_deg)) if not self.fallen(state)[0] else 0.0
        return float(p["healthy_reward"] * upright - p["angular_rate_weight"] * np.sum(state.angular_velocity ** 2)
                     - p["joint_velocity_weight"] * np.mean(state.velocity ** 2) - self.ctrl_cost(command))


class HumanoidWalk(_Humanoid):
    """Walk forward (+x of the odometry frame): forward_reward_weight·v_x + healthy_reward (0 on the fall) − ctrl cost,
    the terms of
    gymnasium's Humanoid reward that a robot can measure (v_x of the BASE from odometry where gymnasium takes the
    centre of mass; no contact cost: a robot has no contact-force sensors on every body). Falls: base height outside
    (min_height, max_height) as gymnasium's healthy range, and tilt beyond max_tilt_deg when it is set (> 0)."""

    name = "humanoid_walk"
    needs_odometry = True
    params = dict(forward_reward_weight=1.25, healthy_reward=5.0, ctrl_cost_weight=0.1, max_tilt_deg=0.0,
                  min_height=1.0, max_height=2.0)
    observation = ["joint_position", {"field": "joint_velocity", "scale": 0.1}, "projected_gravity",
                   "angular_velocity", {"field": "linear_acceleration", "scale": 0.1}, "base_height",
                   "base_linear_velocity"]

    def reward(self, prev: RobotState, state: RobotState, command: np.ndarray | None) -> float:
        p = self.p
        vx = float(state.base_linear_velocity[0])
        healthy = 0.0 if self.fallen(state)[0] else p["healthy_reward"]     # gymnasium: no survival reward on a fall
        return float(p["forward_reward_weight"] * vx + healthy - self.ctrl_cost(command))
