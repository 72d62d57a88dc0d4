"""What every symphony_ros node shares: rclpy QoS profiles built from the topic contract (:mod:`symphony_ros.contract`,
the one place topics are defined), message field helpers, parameters declared from one schema with validation, counted
and rate-limited bad-input logs, and the ``main()`` of every node.
"""
from __future__ import annotations

import array
import dataclasses
import functools
import math
import time
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)

from ..contract import QosSpec, Topic


@functools.lru_cache(maxsize=None)
def _profile(spec: QosSpec) -> QoSProfile:
    return QoSProfile(depth=spec.depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE if spec.reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if spec.transient_local else
                      DurabilityPolicy.VOLATILE)


def qos_profile(what: Topic | QosSpec) -> QoSProfile:
    """The rclpy QoS profile of a contract topic (or of a QoS spec)."""
    return _profile(what.qos if isinstance(what, Topic) else what)


# ---------------------------------------------------------------------------------------------- message fields
def f32_array(x: Any) -> array.array:
    """A float32[] message field value (array.array('f')): fast, and accepted by Humble's generated setters too."""
    return array.array("f", np.ascontiguousarray(x, dtype=np.float32).tobytes())


def f64_array(x: Any) -> array.array:
    """A float64[] message field value (array.array('d'))."""
    return array.array("d", np.ascontiguousarray(x, dtype=np.float64).tobytes())


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
