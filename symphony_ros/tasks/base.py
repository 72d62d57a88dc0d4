"""What a task is: the robot's state as the driver topics give it (:class:`RobotState`), the observation built from it
by a declared spec (:class:`ObservationSpec`), and the task plugin (:class:`Task`) that scores a step.

A task plugin is a subclass of :class:`Task` found by name in the entry-point group ``symphony_ros.tasks`` (see
:mod:`.loader`), or given as a dotted path ``package.module:Class``. It sees only what a real robot measures: joint
positions/velocities/efforts, the IMU, an optional odometry estimate, and the command last sent. A lab plugs its own
reward in without forking::

    # my_lab/tasks.py; its setup.py: entry_points={"symphony_ros.tasks": ["crouch = my_lab.tasks:Crouch"]}
    from symphony_ros.tasks import Task

    class Crouch(Task):
        name = "crouch"
        params = {"target_height": 0.6}
        observation = ["joint_position", "joint_velocity", "projected_gravity", "angular_velocity"]
        needs_odometry = True

        def reward(self, prev, state, command):
            return 1.0 - abs(state.base_height - self.p["target_height"])

        def fallen(self, state):
            return state.tilt_deg > 60.0, "tilted"
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ..robot.description import RobotDescription


class TaskError(ValueError):
    """A task that cannot be used (unknown name, import failure, bad parameter, NaN on a probe state)."""


@dataclass
class Odometry:
    """A state estimator's view of the base (nav_msgs/Odometry): position (3,) m and orientation (x, y, z, w) in the
    odometry frame, linear velocity (3,) m/s and angular velocity (3,) rad/s in the child (body) frame, as REP 105
    and nav_msgs/Odometry put them."""
    position: np.ndarray
    orientation_xyzw: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray


@dataclass
class RobotState:
    """One instant of the robot, joints in the description's observed order (commanded, then passive).

    position (n,) rad or m; velocity (n,); effort (n,); orientation_xyzw (4,) the IMU body in the world;
    angular_velocity (3,) rad/s and linear_acceleration (3,) m/s² in the IMU frame; odometry if a topic gives one;
    extra: topic name -> values of optional extra topics; stamp_ns: the joint_states header stamp."""
    stamp_ns: int
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    orientation_xyzw: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))
    angular_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    linear_acceleration: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 9.81]))
    odometry: Odometry | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def projected_gravity(self) -> np.ndarray:
        """The unit gravity direction in the IMU frame, (3,): (0, 0, −1) when upright (the usual legged-robot input)."""
        x, y, z, w = self.orientation_xyzw / max(np.linalg.norm(self.orientation_xyzw), 1e-12)
        # third row of the rotation matrix R (body -> world) = the world z axis in body coordinates; gravity = −that
        return -np.array([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])

    @property
    def tilt_deg(self) -> float:
        """Angle between the IMU body's z axis and the world's up axis, degrees (0 = upright)."""
        return math.degrees(math.acos(float(np.clip(-self.projected_gravity[2], -1.0, 1.0))))

    @property
    def base_height(self) -> float:
        """Odometry z (m); NaN without odometry."""
        return float(self.odometry.position[2]) if self.odometry is not None else math.nan

    @property
    def base_linear_velocity(self) -> np.ndarray:
        """Odometry linear velocity in the WORLD frame (3,) m/s (rotated from the body frame); NaN without odometry."""
        if self.odometry is None:
            return np.full(3, math.nan)
        return rotate(self.odometry.orientation_xyzw, self.odometry.linear_velocity)


def rotate(q_xyzw: np.ndarray, v: np.ndarray) -> np.ndarray:
    """v (3,) rotated by the unit quaternion q (x, y, z, w): body -> world."""
    x, y, z, w = np.asarray(q_xyzw, np.float64) / max(np.linalg.norm(q_xyzw), 1e-12)
    u = np.array([x, y, z])
    v = np.asarray(v, np.float64)
    return v + 2.0 * np.cross(u, np.cross(u, v) + w * v)


# ---------------------------------------------------------------------------------------------- observation spec
FIELDS = ("joint_position", "joint_velocity", "joint_effort", "projected_gravity", "orientation", "angular_velocity",
          "linear_acceleration", "base_height", "base_linear_velocity", "previous_action", "extra")
IMU_FIELDS = ("projected_gravity", "orientation", "angular_velocity", "linear_acceleration")
ODOMETRY_FIELDS = ("base_height", "base_linear_velocity")


@dataclass(frozen=True)
class ObsField:
    """One block of the observation: ``field`` (FIELDS), its ``scale`` (multiplied in), and for ``extra`` the
    ``topic`` (std_msgs/Float64MultiArray) and its ``size``."""
    field: str
    scale: float = 1.0
    topic: str = ""
    size: int = 0


class ObservationSpec:
    """The ordered blocks of an observation vector, read from a list of names or ``{field, scale[, topic, size]}``
    mappings. ``size(description)`` is the observation length; ``build(state, previous_action)`` the vector."""

    def __init__(self, entries: Sequence[Any]) -> None:
        if not isinstance(entries, (list, tuple)) or not entries:
            raise TaskError(f"observation spec must be a non-empty list of fields ({', '.join(FIELDS)}), "
                            f"got {entries!r}")
        self.fields: list[ObsField] = []
        for i, e in enumerate(entries):
            if isinstance(e, str):
                e = {"field": e}
            if not isinstance(e, Mapping) or "field" not in e:
                raise TaskError(f"observation[{i}] must be a field name or a mapping with 'field', got {e!r}")
            unknown = sorted(set(e) - {"field", "scale", "topic", "size"})
            if unknown:
                raise TaskError(f"observation[{i}]: unknown key(s) {', '.join(unknown)} (field, scale, topic, size)")
            name = e["field"]
            if name not in FIELDS:
                raise TaskError(f"observation[{i}]: unknown field {name!r}; choose from {', '.join(FIELDS)}")
            scale = e.get("scale", 1.0)
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
                raise TaskError(f"observation[{i}] '{name}': scale must be a finite number, got {scale!r}")
            topic, size = str(e.get("topic", "")), e.get("size", 0)
            if name == "extra" and (not topic or isinstance(size, bool) or not isinstance(size, int) or size < 1):
                raise TaskError(f"observation[{i}]: an extra field needs 'topic' and 'size' >= 1, got {dict(e)!r}")
            self.fields.append(ObsField(name, float(scale), topic, int(size)))

    @property
    def names(self) -> list[str]:
        return [f.field for f in self.fields]

    @property
    def needs_imu(self) -> bool:
        return any(f.field in IMU_FIELDS for f in self.fields)

    @property
    def needs_odometry(self) -> bool:
        return any(f.field in ODOMETRY_FIELDS for f in self.fields)

    @property
    def needs_command(self) -> bool:
        return "previous_action" in self.names

    @property
    def extra_topics(self) -> dict[str, int]:
        return {f.topic: f.size for f in self.fields if f.field == "extra"}

    def block_size(self, f: ObsField, d: RobotDescription) -> int:
        n = len(d.observed_joints)
        return {"joint_position": n, "joint_velocity": n, "joint_effort": n, "projected_gravity": 3,
                "orientation": 4, "angular_velocity": 3, "linear_acceleration": 3, "base_height": 1,
                "base_linear_velocity": 3, "previous_action": d.act_dim, "extra": f.size}[f.field]

    def size(self, d: RobotDescription) -> int:
        return sum(self.block_size(f, d) for f in self.fields)

    def build(self, state: RobotState, previous_action: np.ndarray | None) -> np.ndarray:
        """The observation (size,) float32. ``previous_action`` (act_dim,) in policy units (zeros if None)."""
        parts = []
        for f in self.fields:
            if f.field == "joint_position":
                v = state.position
            elif f.field == "joint_velocity":
                v = state.velocity
            elif f.field == "joint_effort":
                v = state.effort
            elif f.field == "projected_gravity":
                v = state.projected_gravity
            elif f.field == "orientation":
                v = state.orientation_xyzw
            elif f.field == "angular_velocity":
                v = state.angular_velocity
            elif f.field == "linear_acceleration":
                v = state.linear_acceleration
            elif f.field == "base_height":
                v = np.array([state.base_height])
            elif f.field == "base_linear_velocity":
                v = state.base_linear_velocity
            elif f.field == "previous_action":
                v = previous_action
            else:
                v = state.extra.get(f.topic, np.full(f.size, math.nan))
            parts.append(np.asarray(v, np.float64).reshape(-1) * f.scale)
        return np.concatenate(parts).astype(np.float32)


# ---------------------------------------------------------------------------------------------- the plugin
class Task:
    """Base class of task plugins. Override :meth:`reward` and :meth:`fallen`; declare ``params`` (name ->
    default: the only parameters accepted), the default ``observation`` spec and whether the task needs odometry.

    Constructed once per configure with the robot description and the parameter overrides (unknown names or values
    of the wrong type are a TaskError). ``self.p`` holds the parameters, ``self.d`` the description."""

    name: ClassVar[str] = "task"
    params: ClassVar[dict[str, Any]] = {}
    observation: ClassVar[list[Any]] = ["joint_position", "joint_velocity"]
    needs_odometry: ClassVar[bool] = False

    def __init__(self, description: RobotDescription, params: Mapping[str, Any] | None = None) -> None:
        self.d = description
        self.p: dict[str, Any] = dict(self.params)
        for k, v in (params or {}).items():
            if k not in self.params:
                known = ", ".join(sorted(self.params)) or "none"
                raise TaskError(f"task '{self.name}': unknown parameter '{k}' (known: {known})")
            default = self.params[k]
            if isinstance(default, bool) != isinstance(v, bool) or (
                    isinstance(default, (int, float)) and not isinstance(v, (int, float))):
                raise TaskError(f"task '{self.name}': parameter '{k}' must be like {default!r}, got {v!r}")
            self.p[k] = v
        self.validate()

    def validate(self) -> None:
        """Check the parameters against the description (TaskError); called by the constructor."""

    def reset(self, state: RobotState) -> None:
        """A new episode starts at ``state``."""

    def reward(self, prev: RobotState, state: RobotState, command: np.ndarray | None) -> float:
        """Reward of the step prev -> state; ``command`` (act_dim,) the command sent in between (controller units),
        None if unknown. Must be finite."""
        raise NotImplementedError

    def fallen(self, state: RobotState) -> tuple[bool, str]:
        """(True, why) when the episode must end as a failure (terminated: no bootstrapping past it)."""
        return False, ""

    # helpers for subclasses
    def joint(self, state: RobotState, name: str) -> tuple[float, float]:
        """(position, velocity) of a named observed joint."""
        i = self.d.observed_joints.index(name)
        return float(state.position[i]), float(state.velocity[i])
