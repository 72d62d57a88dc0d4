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
    dynamic: bool = False   # any type accepted (then ``validate`` checks it, e.g. against the config schema)
    validate: Callable[[Any], str | None] | None = None   # extra rule: None if acceptable, else the reason

    def check(self, value: Any) -> str | None:
        """None if acceptable, else the reason (names the parameter and the allowed values)."""
        if self.validate is not None:
            reason = self.validate(value)
            if reason:
                return f"parameter '{self.name}': {reason}"
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
    from symphony_ros.core.config import FIELDS, _allowed, check_field
    out = []
    for name, f in FIELDS.items():
        out.append(ParamSpec(prefix + name, "", f"{f.metadata['desc']} ({_allowed(f)}); empty = preset value",
                             dynamic=True, validate=lambda v, n=name: None if v in ("", None) else check_field(n, v)))
    return out


def device_reason(value: Any) -> str | None:
    """The reason a device parameter is refused (unknown device, no CUDA here), or None."""
    from ..core.device import DeviceError, resolve_device
    if str(value) == "cpu":
        return None                      # always there; no torch needed to say so (an ONNX-only robot)
    try:
        resolve_device(str(value))
    except DeviceError as exc:
        return str(exc)
    return None


def config_overrides_from_params(values: Mapping[str, Any], prefix: str = "symphony.") -> dict[str, Any]:
    """The config overrides a node got as parameters (non-empty values of ``symphony.<field>``)."""
    return {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix) and v not in ("", None)}


# ---------------------------------------------------------------------------------------------- entry points
class StopSignals:
    """SIGINT and SIGTERM as a stop request, never an exception. The first one sets :attr:`requested`; every later
    one (a terminal's Ctrl-C and ``ros2 launch``'s forwarded SIGINT arrive together; launch escalates to SIGTERM)
    is logged and absorbed, so the teardown that follows (a safe command, a checkpoint, closing a bag) is never cut
    in half. Installed in the main thread; elsewhere it does nothing."""

    def __init__(self, logger) -> None:
        self.logger = logger
        self.requested = False
        self.count = 0
        self._old: dict[int, Any] = {}

    def install(self) -> "StopSignals":
        import signal
        import threading
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        import signal
        self.count += 1
        name = signal.Signals(signum).name
        if not self.requested:
            self.requested = True
            self.logger.info(f"{name}: stopping")
        else:
            self.logger.info(f"{name} again: already stopping, finishing cleanly")

    def restore(self) -> None:
        import signal
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def log_at(logger, level: str, text: str) -> None:
    """Log ``text`` at ``level`` ("debug", "info", "warning", "error", "fatal") through an rclpy logger. One call
    site per severity: rclpy ties a call site to the severity it first logged at, and a second severity from the
    same line raises ValueError (seen: a learner whose pace verdict changed from "keeping up" to "CANNOT KEEP UP"
    died of it)."""
    if level == "debug":
        logger.debug(text)
    elif level == "info":
        logger.info(text)
    elif level in ("warning", "warn"):
        logger.warning(text)
    elif level == "error":
        logger.error(text)
    else:
        logger.fatal(text)


class StartupError(RuntimeError):
    """A node could not start (a bad parameter, a failed configure); the message is the one line to log."""


def run_node(factory: Callable[[], Node], argv: list[str] | None = None, *, name: str,
             on_exit: Callable[[Node], None] | None = None, poll_s: float = 0.1) -> int:
    """The ``main()`` of every node (``ros2 run symphony_ros <node>``, and what launch starts).

    One SIGINT or SIGTERM, or several (see :class:`StopSignals`), stop the spin; then ``on_exit(node)`` (the actor's
    safe command) and ``node.destroy_node()`` (the learner's final checkpoint, the recorder's bag) run to the end.
    rclpy's own signal handler is switched off where rclpy allows it (Humble and later), so the context stays up
    for that teardown. A node that cannot start (a parameter of the wrong type or out of range, a configure that
    fails at autostart: ``StartupError``) logs one line and the process exits 1; an error while running is one
    line and exit 1 too. No traceback either way. Humble-compatible (no ``with rclpy.init()``)."""
    import rclpy
    from rclpy.exceptions import ParameterException
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    logger = rclpy.logging.get_logger(name)
    try:
        from rclpy.signals import SignalHandlerOptions
        init_kw: dict[str, Any] = {"signal_handler_options": SignalHandlerOptions.NO}
    except ImportError:  # pragma: no cover - an rclpy without signal options: ours replace its handler below
        init_kw = {}
    stop = StopSignals(logger)
    rclpy.init(args=argv, **init_kw)
    stop.install()
    node = executor = None
    code = 0
    try:
        try:
            node = factory()
            error = getattr(node, "startup_error", None)
            if error:
                raise StartupError(error)
        except (StartupError, ValueError, TypeError, ParameterException) as exc:
            logger.error(f"cannot start: {exc}")
            code = 1
        else:
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            while not stop.requested and rclpy.ok():
                executor.spin_once(timeout_sec=poll_s)
    except ExternalShutdownException:
        pass
    except Exception as exc:  # noqa: BLE001 - a node that fails while running: one line, exit 1
        logger.error(f"stopped by an error: {type(exc).__name__}: {exc}")
        code = 1
    finally:
        try:
            if node is not None:
                if on_exit is not None:
                    on_exit(node)
                node.destroy_node()
            if executor is not None:
                executor.shutdown()
        except Exception as exc:  # noqa: BLE001 - the teardown must end; say what went wrong
            logger.error(f"teardown: {type(exc).__name__}: {exc}")
            code = code or 1
        finally:
            rclpy.try_shutdown()
            stop.restore()
    return code
