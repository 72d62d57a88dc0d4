"""The robot description: what the actor, the task node and the simulated driver need to know about a robot, in one
validated YAML file (``config/robots/<name>.yaml``; ``config/robots/template.yaml`` explains every field).

* ``joints``: the COMMANDED joints, in the controller's order (the order of the Float64MultiArray the controller
  takes). Per joint: ``position`` limits [lower, upper] (rad or m), optional ``velocity`` limit (units/s), optional
  ``effort`` limit, the ``safe`` value (the safe pose for a position interface, the safe effort for an effort one).
* ``passive_joints``: joints the driver reports in ``joint_states`` that are observed but not commanded (a pendulum's
  hinge). ``ignored_joints``: reported names to drop silently (fingers, wheels ...). Any other name in
  ``joint_states`` is an "extra" joint: reported once, and the step is not published (the actor falls back to its
  safe command), as is a missing one. Joints are always matched by NAME: a driver's ``joint_states`` order is not the
  controller's.
* ``command_interface``: ``position`` (the command is a joint position; limits = the position limits, the rate limit
  comes from the velocity limits) or ``effort`` (the command is an effort in the controller's units; limits =
  ±effort). ``controller_topic``: where the controller listens (ros2_control's forward_command_controller /
  JointGroupPositionController / JointGroupEffortController take ``<controller>/commands``).
* ``command_mode``: how a policy action in [-1, 1] becomes a command (``rescale``: affinely onto the command limits,
  the default; ``paper``: as is, then clamped).
* ``imu``: topic and frame of the body IMU (null = none); ``odometry_topic``: a state estimator's nav_msgs/Odometry
  ('' = none); ``control_rate_hz``; ``recovery_service``: a std_srvs/Trigger the driver offers to bring the robot
  back into a start state after an episode ('' = wait for the operator's ``~/resume``).
* ``sim``: only for the simulated driver (``mujoco_driver``): the gymnasium MuJoCo env whose model it runs and the
  body that carries the IMU.

Errors are :class:`DescriptionError` (a ValueError) with one line naming the file and the field.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

COMMAND_INTERFACES = ("position", "effort")
COMMAND_MODES = ("rescale", "paper")
_TOPIC = re.compile(r"^~?/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
_KEYS = {"name", "joints", "passive_joints", "ignored_joints", "command_interface", "controller_topic",
         "joint_states_topic", "imu", "odometry_topic", "control_rate_hz", "command_mode", "recovery_service",
         "max_tilt_deg", "sim", "description"}
_JOINT_KEYS = {"name", "position", "velocity", "effort", "safe"}
_IMU_KEYS = {"topic", "frame"}
_SIM_KEYS = {"env", "imu_body", "reset_noise_scale"}


class DescriptionError(ValueError):
    """A robot description that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class JointSpec:
    """One commanded joint: position limits [lower, upper], optional velocity / effort limits, its safe value."""
    name: str
    lower: float
    upper: float
    velocity: float | None
    effort: float | None
    safe: float


@dataclass(frozen=True)
class ImuSpec:
    topic: str = "imu"
    frame: str = "base_link"


@dataclass(frozen=True)
class SimSpec:
    """The simulated driver's model: a gymnasium MuJoCo env id, the IMU body, the reset noise (None = the env's)."""
    env: str = ""
    imu_body: str = ""
    reset_noise_scale: float | None = None


@dataclass(frozen=True)
class RobotDescription:
    name: str
    joints: tuple[JointSpec, ...]
    command_interface: str
    controller_topic: str
    control_rate_hz: float
    passive_joints: tuple[str, ...] = ()
    ignored_joints: tuple[str, ...] = ()
    joint_states_topic: str = "joint_states"
    imu: ImuSpec | None = field(default_factory=ImuSpec)
    odometry_topic: str = ""
    command_mode: str = "rescale"
    recovery_service: str = ""
    max_tilt_deg: float = 0.0
    sim: SimSpec = field(default_factory=SimSpec)
    source: str = ""

    # ------------------------------------------------------------------------------------------ derived
    @property
    def joint_names(self) -> tuple[str, ...]:
        """The commanded joints in the controller's (= the policy's) order."""
        return tuple(j.name for j in self.joints)

    @property
    def observed_joints(self) -> tuple[str, ...]:
        """Commanded then passive joints: the order of joint positions/velocities in an observation."""
        return self.joint_names + self.passive_joints

    @property
    def act_dim(self) -> int:
        return len(self.joints)

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    @property
    def command_lower(self) -> list[float]:
        """Per-joint lower command limit: the position limit (position interface) or −effort (effort)."""
        if self.command_interface == "position":
            return [j.lower for j in self.joints]
        return [-float(j.effort) for j in self.joints]

    @property
    def command_upper(self) -> list[float]:
        if self.command_interface == "position":
            return [j.upper for j in self.joints]
        return [float(j.effort) for j in self.joints]

    @property
    def safe_command(self) -> list[float]:
        return [j.safe for j in self.joints]

    @property
    def velocity_limits(self) -> list[float] | None:
        """Position interface with every velocity known: the rate limit (units/s); else None (no rate limit)."""
        if self.command_interface != "position" or any(j.velocity is None for j in self.joints):
            return None
        return [float(j.velocity) for j in self.joints]

    def actor_parameters(self) -> dict[str, Any]:
        """The ActorNode parameters this description sets (limits, safe command, rate limit, joint order, rate)."""
        out: dict[str, Any] = dict(joint_names=list(self.joint_names), joint_lower=self.command_lower,
                                   joint_upper=self.command_upper, safe_command=self.safe_command,
                                   command_mode=self.command_mode, control_rate_hz=float(self.control_rate_hz))
        if self.velocity_limits is not None:
            out["velocity_limits"] = self.velocity_limits
        if self.max_tilt_deg > 0:
            out["max_tilt_deg"] = float(self.max_tilt_deg)
        return out


# ---------------------------------------------------------------------------------------------- loading
def robots_dir() -> Path:
    """The shipped descriptions (config/robots/: in the source tree or the installed share directory)."""
    from ..core.config import config_dir
    return config_dir() / "robots"


def resolve_description_path(name_or_path: str | Path) -> Path:
    """A path, or the name of a shipped description (``mujoco_humanoid`` → config/robots/mujoco_humanoid.yaml)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    shipped = robots_dir() / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    names = sorted(x.stem for x in robots_dir().glob("*.yaml") if x.stem != "template")
    raise DescriptionError(f"robot description '{name_or_path}': no such file and not a shipped description "
                           f"({', '.join(names)})")


def load_description(name_or_path: str | Path) -> RobotDescription:
    """Read and validate a description (a path or a shipped name). DescriptionError (one line) if unusable."""
    path = resolve_description_path(name_or_path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DescriptionError(f"robot description {path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise DescriptionError(f"robot description {path}: not valid YAML{where}") from None
    return description_from_dict(data, source=str(path))


def description_from_dict(data: Any, *, source: str = "description") -> RobotDescription:
    """Validate a parsed description (see the module docstring). DescriptionError names ``source`` and the field."""
    def fail(what: str) -> DescriptionError:
        return DescriptionError(f"robot description {source}: {what}")

    if not isinstance(data, Mapping):
        raise fail("must be a mapping of fields (name, joints, command_interface, ...)")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise fail(f"unknown field(s) {', '.join(map(str, unknown))} (known: {', '.join(sorted(_KEYS))})")
    name = _string(data.get("name", Path(source).stem), "name", fail)
    interface = data.get("command_interface")
    if interface not in COMMAND_INTERFACES:
        raise fail(f"command_interface {interface!r} is not one of {', '.join(COMMAND_INTERFACES)}")
    mode = data.get("command_mode", "rescale")
    if mode not in COMMAND_MODES:
        raise fail(f"command_mode {mode!r} is not one of {', '.join(COMMAND_MODES)}")
    rate = _number(data.get("control_rate_hz"), "control_rate_hz", fail)
    if not rate > 0:
        raise fail(f"control_rate_hz must be > 0, got {rate}")
    raw_joints = data.get("joints")
    if not isinstance(raw_joints, list) or not raw_joints:
        raise fail("joints must be a non-empty list (one entry per commanded joint, in the controller's order)")
    joints = tuple(_joint(j, i, interface, fail) for i, j in enumerate(raw_joints))
    passive = _names(data.get("passive_joints", []), "passive_joints", fail)
    ignored = _names(data.get("ignored_joints", []), "ignored_joints", fail)
    seen: dict[str, str] = {}
    for where, names in (("joints", [j.name for j in joints]), ("passive_joints", passive),
                         ("ignored_joints", ignored)):
        for n in names:
            if n in seen:
                raise fail(f"joint '{n}' appears twice (in {seen[n]} and {where})")
            seen[n] = where
    controller = _topic(data.get("controller_topic"), "controller_topic", fail)
    joint_states = _topic(data.get("joint_states_topic", "joint_states"), "joint_states_topic", fail)
    imu = _imu(data.get("imu", {}), fail)
    odom = data.get("odometry_topic", "") or ""
    if odom:
        odom = _topic(odom, "odometry_topic", fail)
    recovery = data.get("recovery_service", "") or ""
    if recovery:
        recovery = _topic(recovery, "recovery_service", fail)
    tilt = _number(data.get("max_tilt_deg", 0.0), "max_tilt_deg", fail)
    if not 0 <= tilt <= 180:
        raise fail(f"max_tilt_deg must be in [0, 180] (0 = off), got {tilt}")
    return RobotDescription(name=name, joints=joints, command_interface=interface, controller_topic=controller,
                            control_rate_hz=rate, passive_joints=tuple(passive), ignored_joints=tuple(ignored),
                            joint_states_topic=joint_states, imu=imu, odometry_topic=odom, command_mode=mode,
                            recovery_service=recovery, max_tilt_deg=tilt, sim=_sim(data.get("sim", {}), fail),
                            source=source)


def _string(v: Any, what: str, fail) -> str:
    if not isinstance(v, str) or not v.strip():
        raise fail(f"{what} must be a non-empty string, got {v!r}")
    return v.strip()


def _number(v: Any, what: str, fail) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise fail(f"{what} must be a finite number, got {v!r}")
    return float(v)


def _names(v: Any, what: str, fail) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise fail(f"{what} must be a list of joint names, got {v!r}")
    return [_string(x, f"{what}[{i}]", fail) for i, x in enumerate(v)]


def _topic(v: Any, what: str, fail) -> str:
    s = _string(v, what, fail)
    if not _TOPIC.match(s):
        raise fail(f"{what} '{s}' is not a valid ROS 2 name (letters, digits, _ and / separators)")
    return s


def _joint(j: Any, i: int, interface: str, fail) -> JointSpec:
    if not isinstance(j, Mapping):
        raise fail(f"joints[{i}] must be a mapping (name, position, velocity, effort, safe), got {j!r}")
    unknown = sorted(set(j) - _JOINT_KEYS)
    name = _string(j.get("name"), f"joints[{i}].name", fail)
    where = f"joints[{i}] '{name}'"
    if unknown:
        raise fail(f"{where}: unknown field(s) {', '.join(map(str, unknown))} "
                   f"(known: {', '.join(sorted(_JOINT_KEYS))})")
    pos = j.get("position")
    if not isinstance(pos, list) or len(pos) != 2:
        raise fail(f"{where}: position must be [lower, upper], got {pos!r}")
    lower, upper = (_number(x, f"{where}.position", fail) for x in pos)
    if not lower < upper:
        raise fail(f"{where}: position limits in the wrong order (lower {lower} must be < upper {upper})")
    vel = j.get("velocity")
    if vel is not None:
        vel = _number(vel, f"{where}.velocity", fail)
        if not vel > 0:
            raise fail(f"{where}: velocity limit must be > 0, got {vel}")
    eff = j.get("effort")
    if eff is not None:
        eff = _number(eff, f"{where}.effort", fail)
        if not eff > 0:
            raise fail(f"{where}: effort limit must be > 0, got {eff}")
    if interface == "effort" and eff is None:
        raise fail(f"{where}: command_interface effort needs an effort limit per joint (the command limits ±effort)")
    lo, hi = (lower, upper) if interface == "position" else (-eff, eff)
    default_safe = min(max(0.0, lo), hi)
    safe = _number(j.get("safe", default_safe), f"{where}.safe", fail)
    if not lo <= safe <= hi:
        raise fail(f"{where}: safe value {safe} is outside the command limits [{lo}, {hi}]")
    return JointSpec(name, lower, upper, vel, eff, safe)


def _imu(v: Any, fail) -> ImuSpec | None:
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise fail(f"imu must be a mapping (topic, frame) or null, got {v!r}")
    unknown = sorted(set(v) - _IMU_KEYS)
    if unknown:
        raise fail(f"imu: unknown field(s) {', '.join(map(str, unknown))} (known: topic, frame)")
    return ImuSpec(_topic(v.get("topic", "imu"), "imu.topic", fail), _string(v.get("frame", "base_link"),
                                                                             "imu.frame", fail))


def _sim(v: Any, fail) -> SimSpec:
    if v is None:
        return SimSpec()
    if not isinstance(v, Mapping):
        raise fail(f"sim must be a mapping (env, imu_body, reset_noise_scale), got {v!r}")
    unknown = sorted(set(v) - _SIM_KEYS)
    if unknown:
        raise fail(f"sim: unknown field(s) {', '.join(map(str, unknown))} (known: {', '.join(sorted(_SIM_KEYS))})")
    noise = v.get("reset_noise_scale")
    if noise is not None:
        noise = _number(noise, "sim.reset_noise_scale", fail)
        if noise < 0:
            raise fail(f"sim.reset_noise_scale must be >= 0, got {noise}")
    return SimSpec(str(v.get("env", "") or ""), str(v.get("imu_body", "") or ""), noise)
