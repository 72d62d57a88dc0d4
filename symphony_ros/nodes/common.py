"""What every symphony_ros node shares: QoS profiles, the topic contract, message <-> numpy conversion (the only
place it happens), parameters declared from one schema with validation, and counted, rate-limited bad-input logs.

Topic contract (relative names; a robot namespace prefixes the per-robot ones; the learner's shared topics are
remapped to absolute names for namespaced actors by :mod:`symphony_ros.graph`):

=================  ===================================  =========================  ===========================
topic              type                                 direction                  QoS
=================  ===================================  =========================  ===========================
joint_states       sensor_msgs/JointState               bridge/driver -> task      sensor data (best effort)
imu                sensor_msgs/Imu                      bridge/driver -> task      sensor data
env_step           symphony_ros_interfaces/EnvStep      bridge/task node -> actor  reliable, depth 10
joint_commands     std_msgs/Float64MultiArray           actor -> bridge/controller reliable, depth 10
transitions        symphony_ros_interfaces/Transition   actor -> learner           reliable, depth 10000
policy_weights     symphony_ros_interfaces/PolicyWeights learner -> actors         reliable + transient local, 1
learner_status     symphony_ros_interfaces/LearnerStatus learner -> anyone (1 Hz)  reliable, depth 10
learner_ack        symphony_ros_interfaces/LearnerAck   learner -> actors          reliable, depth 100
/clock             rosgraph_msgs/Clock                  bridge (lockstep) -> all   reliable, depth 10
=================  ===================================  =========================  ===========================
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)

TOPIC_JOINT_STATES = "joint_states"
TOPIC_IMU = "imu"
TOPIC_ENV_STEP = "env_step"
TOPIC_JOINT_COMMANDS = "joint_commands"
TOPIC_TRANSITIONS = "transitions"
TOPIC_POLICY_WEIGHTS = "policy_weights"
TOPIC_LEARNER_STATUS = "learner_status"
TOPIC_LEARNER_ACK = "learner_ack"
SHARED_TOPICS = (TOPIC_TRANSITIONS, TOPIC_POLICY_WEIGHTS, TOPIC_LEARNER_STATUS, TOPIC_LEARNER_ACK)

QOS_SENSOR = qos_profile_sensor_data
QOS_RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
QOS_COMMAND = QOS_RELIABLE
QOS_ENV_STEP = QOS_RELIABLE
QOS_TRANSITIONS = QoSProfile(depth=10000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
QOS_LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
QOS_ACK = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


# ---------------------------------------------------------------------------------------------- conversion
class BadMessage(ValueError):
    """A message failed validation; the text is the one-line reason that gets logged and counted."""


def to_vector(values: Any, size: int | None, what: str) -> np.ndarray:
    """A finite float32 vector of the expected size, or BadMessage naming what is wrong."""
    try:
        v = np.asarray(values, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise BadMessage(f"{what} is not numeric") from None
    if size is not None and v.size != size:
        raise BadMessage(f"{what} has {v.size} values, expected {size}")
    if not np.isfinite(v).all():
        raise BadMessage(f"{what} holds NaN/Inf")
    return v


def finite_scalar(value: Any, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise BadMessage(f"{what} is not numeric") from None
    if not math.isfinite(x):
        raise BadMessage(f"{what} is NaN/Inf")
    return x


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def set_stamp(header, ns: int) -> None:
    header.stamp.sec, header.stamp.nanosec = divmod(int(ns), 1_000_000_000)


# ---------------------------------------------------------------------------------------------- bad input
class BadInputCounter:
    """Counts rejected inputs per kind and logs one clear line per kind at most every ``period_s`` seconds."""

    def __init__(self, logger, period_s: float = 2.0) -> None:
        self.logger, self.period_s = logger, period_s
        self.counts: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def __call__(self, kind: str, reason: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) >= self.period_s:
            self._last[kind] = now
            self.logger.warning(f"rejected {kind}: {reason} (total rejected {kind}: {self.counts[kind]})")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# ---------------------------------------------------------------------------------------------- parameters
@dataclasses.dataclass
class ParamSpec:
    """One ROS parameter: default, description, and the allowed range or choices (validated on every set)."""
    name: str
    default: Any
    description: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    read_only: bool = False
    dynamic: bool = False   # any type accepted (validated later, e.g. by the config schema)

    def check(self, value: Any) -> str | None:
        """None if acceptable, else the reason (names the parameter and the allowed values)."""
        if self.choices is not None and value not in self.choices:
            return f"parameter '{self.name}' = {value!r} is not one of {', '.join(map(str, self.choices))}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                return f"parameter '{self.name}' must be finite"
            if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
                return f"parameter '{self.name}' = {value!r} is outside [{self.lo}, {self.hi}]"
        return None


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(description=spec.description, read_only=spec.read_only, dynamic_typing=spec.dynamic)
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(map(str, spec.choices))
    if isinstance(spec.default, bool):
        return d
    if isinstance(spec.default, int) and spec.lo is not None and spec.hi is not None:
        d.integer_range = [IntegerRange(from_value=int(spec.lo), to_value=int(spec.hi), step=0)]
    elif isinstance(spec.default, float) and spec.lo is not None and spec.hi is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.lo), to_value=float(spec.hi), step=0.0)]
    return d


def declare_parameters(node: Node, specs: Iterable[ParamSpec],
                       on_change: Callable[[str, Any], None] | None = None) -> dict[str, Any]:
    """Declare ``specs`` on ``node`` (descriptions, ranges), validate the initial values (ValueError naming the
    parameter if a YAML/override value is bad) and refuse invalid later sets with the reason. Returns the values."""
    specs = {s.name: s for s in specs}
    values: dict[str, Any] = {}
    for s in specs.values():
        if s.default is None:
            node.declare_parameter(s.name, Parameter.Type.STRING, _descriptor(s))
            raw = node.get_parameter(s.name).value
        else:
            raw = node.declare_parameter(s.name, s.default, _descriptor(s)).value
        reason = s.check(raw)
        if reason:
            raise ValueError(reason)
        values[s.name] = raw

    def _on_set(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = specs.get(p.name)
            if spec is None:
                continue
            reason = spec.check(p.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        for p in params:
            if p.name in specs and on_change is not None:
                on_change(p.name, p.value)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(_on_set)
    return values


def config_param_specs(prefix: str = "symphony.") -> list[ParamSpec]:
    """ROS parameters for every SymphonyConfig field, from the config schema itself (never a copy of it).
    Their default is the empty string / sentinel meaning "keep the preset's value"."""
    from symphony_ros.core.config import FIELDS, _allowed
    out = []
    for name, f in FIELDS.items():
        out.append(ParamSpec(prefix + name, "", f"{f.metadata['desc']} ({_allowed(f)}); empty = preset value",
                             dynamic=True))
    return out


def config_overrides_from_params(values: Mapping[str, Any], prefix: str = "symphony.") -> dict[str, Any]:
    """The config overrides a node got as parameters (non-empty values of ``symphony.<field>``)."""
    return {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix) and v not in ("", None)}


# ---------------------------------------------------------------------------------------------- entry points
def run_node(factory: Callable[[], Node], argv: list[str] | None = None, *, name: str,
             startup_errors: tuple[type[BaseException], ...] = (ValueError,),
             on_exit: Callable[[Node], None] | None = None, init_kwargs: dict[str, Any] | None = None,
             poll_s: float | None = None) -> int:
    """The ``main()`` of every node (``ros2 run symphony_ros <node>``): init, build, spin until Ctrl-C/shutdown,
    clean up. A ``startup_errors`` exception while building is one log line and exit code 1. ``poll_s`` spins in
    bounded waits so Python signal handlers run (needed when rclpy's own handler is off); ``on_exit`` runs before
    the node is destroyed (e.g. the actor's safe command). Humble-compatible (no ``with rclpy.init()``)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    rclpy.init(args=argv, **(init_kwargs or {}))
    node = executor = None
    try:
        try:
            node = factory()
        except startup_errors as exc:
            rclpy.logging.get_logger(name).error(f"cannot start: {exc}")
            return 1
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        if poll_s:
            while rclpy.ok():
                executor.spin_once(timeout_sec=poll_s)
        else:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if on_exit is not None:
                on_exit(node)
            node.destroy_node()
        if executor is not None:
            executor.shutdown()
        rclpy.try_shutdown()
    return 0
