"""ActorNode: the only node that commands motors. A thin lifecycle node over
:class:`symphony_ros.control.actor_logic.ActorLogic`: it declares and validates parameters, converts messages into
calls of the logic and publishes what the logic asks for.

Lifecycle (``rclpy.lifecycle``): configure loads the policy (``policy_file``, else waits for the learner's first
PolicyWeights) and creates the topics; activate starts commanding; deactivate publishes the safe command once and
stops; cleanup/shutdown release everything. ``autostart`` runs configure + activate in the constructor.

Topics (:mod:`symphony_ros.contract`):
  in : env_step, policy_weights (latched), learner_status (heartbeat), learner_ack
  in : e_stop (latched by True), imu (attitude protection, when max_tilt_deg > 0), joint_states (by joint_names)
  out: joint_commands (one value per actuated joint), transitions, actor_status (1 Hz)
Services: ~/e_stop (std_srvs/SetBool), ~/clear_e_stop (std_srvs/Trigger).

Deploy (``deploy: true``, launch/deploy.launch.py): ``policy_file`` is an export (ONNX, TorchScript or a .pt actor
file, :func:`symphony_ros.control.inference.load_policy`); actions are noise-free, no transitions are published, and
neither the learner nor the training code is imported (an ONNX policy needs no torch).
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from symphony_ros_interfaces.msg import ActorStatus, EnvStep, LearnerAck, LearnerStatus, PolicyWeights, Transition

from .. import contract as C
from ..control.actor_logic import (WATCHDOG_TICK_HZ, ActorCounters, ActorLogic, ActorSettings, MODES, Outputs,
                                   float_list)
from ..control.safety import COMMAND_MODES
from ..control.inference import PolicyFileError, load_policy
from ..core.device import resolve_device
from ..core.config import ConfigError, SymphonyConfig, load_preset
from ..core.storage import Transition as TransitionRecord
from . import common as c

WATCHDOG_HZ = WATCHDOG_TICK_HZ   # watchdog timer rate (Hz): a trip publishes the safe command on every tick


def _joint_list(name: str, joint_count: Callable[[], int | None]) -> Callable[[Any], str | None]:
    """The set-time rule of a per-joint list parameter: finite numbers, as many as the actor's joints (once known)."""
    def check(value: Any) -> str | None:
        try:
            values = float_list(value, name)
        except ValueError as exc:
            return str(exc)
        n = joint_count()
        if values is not None and n is not None and len(values) != n:
            return f"{len(values)} values given, the actor commands {n} joints"
        return None
    return check


# what a robot description decides for the actor (the parameters must then stay empty)
_DESCRIPTION_SETS = ("joint_names", "joint_lower", "joint_upper", "safe_command", "velocity_limits", "control_rate_hz")


def _is_set(v: Any) -> bool:
    if v is None or isinstance(v, bool):
        return bool(v)
    if isinstance(v, (int, float)):
        return v != 0
    return len(v) > 0


def _device(name: str) -> str:
    """The actor's torch device; "cpu" without importing torch (a robot running an ONNX export needs none)."""
    return "cpu" if name == "cpu" else str(resolve_device(name))


def _name_list(value: Any) -> list[str]:
    if value is None or isinstance(value, str):
        return [] if not value else [value]
    return [str(v) for v in value]


def actor_param_specs(joint_count: Callable[[], int | None] = lambda: None) -> list[c.ParamSpec]:
    """The actor's ROS parameters (defaults = config/actor.yaml) plus ``symphony.<config field>`` overrides.
    ``joint_count`` tells the per-joint list parameters how many values they must have (None = not known yet)."""
    return [
        c.ParamSpec("preset", "s3", "Symphony preset name (s3, se, s2, ed, s2_tilde) or preset YAML path"),
        c.ParamSpec("mode", "async", "lockstep: wait for the learner's ack before acting on the next step (sim); "
                    "async: never wait (real robots)", choices=MODES),
        c.ParamSpec("simulation", False, "true ONLY in simulation: enables the zero-policy window (let it fall)"),
        c.ParamSpec("robot_id", "robot", "this robot's id: Transition.header.frame_id, matched by learner_ack"),
        c.ParamSpec("seed", 0, "seed of the exploration noise generator", lo=0, hi=2**31 - 1),
        c.ParamSpec("device", "cpu", "torch device of the actor network: cpu, cuda, cuda:<i>, auto",
                    validate=c.device_reason),
        c.ParamSpec("robot_description", "", "robot description (config/robots/<name>.yaml or a path): sets "
                    "joint_names, limits, safe command, rate limit, control rate and the controller's command topic; "
                    "then leave those parameters empty", read_only=True),
        c.ParamSpec("policy_file", "", "exported actor or training checkpoint to start from; '' = wait for the "
                    "learner's policy_weights"),
        c.ParamSpec("joint_lower", "", "per-joint lower command limits (float list); empty = -1 (policy units). "
                    "A REAL ROBOT MUST SET THEM", dynamic=True, validate=_joint_list("joint_lower", joint_count)),
        c.ParamSpec("joint_upper", "", "per-joint upper command limits (float list); empty = +1 (policy units). "
                    "A REAL ROBOT MUST SET THEM", dynamic=True, validate=_joint_list("joint_upper", joint_count)),
        c.ParamSpec("safe_command", "", "command sent on bad input, watchdog and deactivation (float list); "
                    "empty = zeros clipped into the limits", dynamic=True,
                    validate=_joint_list("safe_command", joint_count)),
        c.ParamSpec("command_mode", "paper", "policy action -> command: paper = as is (then clamped), rescale = "
                    "[-1, 1] mapped affinely onto [joint_lower, joint_upper]", choices=COMMAND_MODES),
        c.ParamSpec("obs_timeout_s", 0.5, "watchdog: safe command when no valid env_step for this long (s)",
                    lo=0.01, hi=3600.0),
        c.ParamSpec("learner_timeout_s", 3.0, "safe commands when the learner (seen once) is silent this long (s); "
                    "0 = off", lo=0.0, hi=3600.0),
        c.ParamSpec("autostart", True, "configure + activate at startup (sim graphs); false = wait for lifecycle "
                    "transitions (recommended on real robots)"),
        c.ParamSpec("deterministic", False, "noise-free execution once learning has started (hardware option); "
                    "exploration keeps its noise"),
        c.ParamSpec("deploy", False, "inference only (deploy.launch.py): run policy_file noise-free, publish no "
                    "transitions, expect no learner"),
        # the safety pipeline (control/pipeline.py) and the protections
        c.ParamSpec("control_rate_hz", 0.0, "the robot's control rate (Hz) for the rate limit and the filters; 0 = "
                    "unknown", lo=0.0, hi=100000.0),
        c.ParamSpec("velocity_limits", "", "per-joint velocity limits (command units/s): the rate limit per control "
                    "period; empty = none", dynamic=True, validate=_joint_list("velocity_limits", joint_count)),
        c.ParamSpec("smoothing", "none", "command filter: none, lowpass (cutoff smoothing_cutoff_hz) or one_euro",
                    choices=("none", "lowpass", "one_euro")),
        c.ParamSpec("smoothing_cutoff_hz", 5.0, "low-pass cutoff / one-euro minimum cutoff (Hz)", lo=1e-3, hi=1e5),
        c.ParamSpec("one_euro_beta", 0.5, "one-euro filter speed coefficient", lo=0.0, hi=1e3),
        c.ParamSpec("soft_start_s", 0.0, "after activation or a cleared e-stop, blend from the measured pose into the "
                    "policy over this long (s); 0 = off", lo=0.0, hi=600.0),
        c.ParamSpec("safe_ramp_s", 0.0, "the way back to the safe command (episode over, watchdog, attitude) takes "
                    "this long (s, async mode); 0 = at once", lo=0.0, hi=600.0),
        c.ParamSpec("max_tilt_deg", 0.0, "attitude protection: IMU tilt beyond this (deg) -> safe command, episode "
                    "over for the actor; 0 = off (subscribes imu when on)", lo=0.0, hi=180.0),
        c.ParamSpec("joint_names", "", "the controller's joint order (names); set: joint_states are mapped by name "
                    "into it (soft start from the measured pose)", dynamic=True),
        c.ParamSpec("store_executed", True, "transitions hold the executed command (after the safety pipeline) in "
                    "policy units, not the policy's wish"),
        c.ParamSpec("status_rate_hz", 1.0, "actor_status rate (Hz); 0 = off", lo=0.0, hi=100.0),
    ] + c.config_param_specs()


class ActorNode(LifecycleNode):
    """Lifecycle node 'actor'. ``config``: a resolved :class:`SymphonyConfig` handed down by an in-process front-end
    (the preset is then not resolved again); other ``kwargs`` go to the LifecycleNode (cli_args, namespace, context).
    The logic's counters (:class:`ActorCounters`) read as attributes: ``node.steps_acted``, ..."""

    def __init__(self, *, config: SymphonyConfig | None = None, **kwargs: Any) -> None:
        super().__init__("actor", **kwargs)
        self._lock = threading.RLock()
        self._given_config = config
        self.logic: ActorLogic | None = None
        self._live = c.declare_parameters(self, actor_param_specs(self._joint_count), on_change=self._on_param_change)
        self._bad = c.BadInputCounter(self.get_logger())
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._pubs: list[Any] = []
        self._subs: list[Any] = []
        self._cmd_pub = self._tr_pub = self._timer = self._status_pub = self._status_timer = None
        self._actor_services: list[Any] = []
        self._joint_names: list[str] = []
        self._description = None
        self._params: dict[str, Any] = dict(self._live)
        self._joint_index: dict[str, int] = {}
        self._last_error = ""
        log = self.get_logger()
        self.logic = ActorLogic(Outputs(command=self._publish_command, transition=self._publish_transition,
                                        command_listeners=self._command_listeners, bad=self._bad,
                                        info=log.info, warning=log.warning, error=log.error))
        self.startup_error: str | None = None   # set when autostart fails: the process then exits 1
        if self._live["autostart"]:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                self.startup_error = f"autostart: configure failed ({self._last_error})"
            elif self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                self.startup_error = "autostart: activate failed"

    # ------------------------------------------------------------------------------------------ state
    def _joint_count(self) -> int | None:
        logic = self.logic
        if logic is None:
            return None
        if logic.safety is not None:
            return logic.safety.size
        return logic.policy.act_dim if logic.policy is not None else None

    @property
    def counters(self) -> ActorCounters:
        return self.logic.n

    @property
    def weights_version(self) -> int:
        return self.logic.weights_version

    @property
    def is_active(self) -> bool:
        """True between activate and deactivate."""
        return self.logic.active

    def _on_param_change(self, name: str, value: Any) -> None:
        with self._lock:
            self._live[name] = value
            if name == "obs_timeout_s" and self.logic.watchdog is not None:
                self.logic.watchdog.timeout_s = float(value)
            if name in ("obs_timeout_s", "learner_timeout_s", "deterministic"):
                setattr(self.logic.settings, name, type(getattr(self.logic.settings, name))(value))

    def _settings(self) -> ActorSettings:
        p = dict(self._live)
        self._description = None
        if p["robot_description"]:
            from ..robot.description import load_description
            d = self._description = load_description(str(p["robot_description"]))
            given = [k for k in _DESCRIPTION_SETS if _is_set(p.get(k))]
            if given:
                raise ValueError(f"robot_description {d.source} sets {', '.join(given)}: leave those parameters "
                                 "empty (one source of truth for the limits)")
            from_d = d.actor_parameters()
            if _is_set(p["max_tilt_deg"]):
                from_d.pop("max_tilt_deg", None)      # the parameter tightens or loosens the description's value
            p.update(from_d)
        self._params = p
        return ActorSettings(mode=str(p["mode"]), simulation=bool(p["simulation"]), robot_id=str(p["robot_id"]),
                             seed=int(p["seed"]), device=_device(str(p["device"])),
                             joint_lower=float_list(p["joint_lower"], "joint_lower"),
                             joint_upper=float_list(p["joint_upper"], "joint_upper"),
                             safe_command=float_list(p["safe_command"], "safe_command"),
                             command_mode=str(p["command_mode"]), obs_timeout_s=float(p["obs_timeout_s"]),
                             learner_timeout_s=float(p["learner_timeout_s"]),
                             deterministic=bool(p["deterministic"]), deploy=bool(p["deploy"]),
                             control_rate_hz=float(p["control_rate_hz"]),
                             velocity_limits=float_list(p["velocity_limits"], "velocity_limits"),
                             smoothing=str(p["smoothing"]), smoothing_cutoff_hz=float(p["smoothing_cutoff_hz"]),
                             one_euro_beta=float(p["one_euro_beta"]), soft_start_s=float(p["soft_start_s"]),
                             safe_ramp_s=float(p["safe_ramp_s"]), max_tilt_deg=float(p["max_tilt_deg"]),
                             store_executed=bool(p["store_executed"]))

    # ------------------------------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            try:
                self._configure()
            except (ConfigError, PolicyFileError, ValueError, OSError, RuntimeError) as exc:
                self._last_error = str(exc)
                self.get_logger().error(f"configure failed: {exc}")
                self._release()
                return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        overrides = c.config_overrides_from_params(self._live)
        if self._given_config is not None:
            cfg = self._given_config
        else:
            cfg = load_preset(str(self._live["preset"]), overrides)
        settings = self._settings()
        policy = None
        path = str(self._live["policy_file"])
        if path:
            policy = load_policy(path, settings.device, seed=settings.seed)
            fcfg = policy.config
            if fcfg.preset != cfg.preset:
                self.get_logger().warning(f"policy_file {path} was trained with preset '{fcfg.preset}', "
                                          f"not '{cfg.preset}': using the file's config")
            cfg = fcfg.replace(**overrides) if overrides else fcfg
            self.get_logger().info(f"loaded policy {path} ({type(policy).__name__}, version {policy.version}, obs "
                                   f"{policy.obs_dim}, act {policy.act_dim}, hidden {policy.hidden})"
                                   + (", deploy: noise-free, no learner" if settings.deploy else ""))
        d = self._description
        if d is not None and settings.max_tilt_deg > 0 and d.imu is None:
            raise ValueError(f"max_tilt_deg {settings.max_tilt_deg:g} needs an IMU, robot '{d.name}' has none (imu: "
                             "null)")
        self.logic.configure(cfg, settings, policy)
        # with a robot description: the controller's command topic and the driver's sensor topics
        cmd_topic = d.controller_topic if d is not None else C.JOINT_COMMANDS.name
        imu_topic = d.imu.topic if d is not None and d.imu is not None else C.IMU.name
        joints_topic = d.joint_states_topic if d is not None else C.JOINT_STATES.name
        self._cmd_pub = self.create_publisher(Float64MultiArray, cmd_topic, c.qos_profile(C.JOINT_COMMANDS))
        self._tr_pub = self.create_publisher(Transition, C.TRANSITIONS.name, c.qos_profile(C.TRANSITIONS))
        self._pubs = [self._cmd_pub, self._tr_pub]
        self._joint_names = _name_list(self._params["joint_names"])
        self._joint_index: dict[str, int] = {n: i for i, n in enumerate(self._joint_names)}
        self._status_pub = self.create_publisher(ActorStatus, C.ACTOR_STATUS.name, c.qos_profile(C.ACTOR_STATUS))
        self._pubs.append(self._status_pub)
        self._subs = [
            self.create_subscription(Bool, C.E_STOP.name, self._on_e_stop, c.qos_profile(C.E_STOP)),
            self.create_subscription(EnvStep, C.ENV_STEP.name, self._on_env_step, c.qos_profile(C.ENV_STEP)),
            self.create_subscription(PolicyWeights, C.POLICY_WEIGHTS.name, self._on_weights,
                                     c.qos_profile(C.POLICY_WEIGHTS)),
            self.create_subscription(LearnerStatus, C.LEARNER_STATUS.name, self._on_status,
                                     c.qos_profile(C.LEARNER_STATUS)),
            self.create_subscription(LearnerAck, C.LEARNER_ACK.name, self._on_ack, c.qos_profile(C.LEARNER_ACK)),
        ]
        if settings.max_tilt_deg > 0:
            self._subs.append(self.create_subscription(Imu, imu_topic, self._on_imu, c.qos_profile(C.IMU)))
        if self._joint_names:
            self._subs.append(self.create_subscription(JointState, joints_topic, self._on_joint_states,
                                                       c.qos_profile(C.JOINT_STATES)))
        self._actor_services = [self.create_service(SetBool, "~/e_stop", self._srv_e_stop),
                          self.create_service(Trigger, "~/clear_e_stop", self._srv_clear_e_stop)]
        rate = float(self._live["status_rate_hz"])
        self._status_timer = self.create_timer(1.0 / rate, self._publish_status, clock=self._steady) if rate else None
        if self.logic.policy is None:
            self.get_logger().info("configured; waiting for the learner's policy_weights (safe commands until then)")

    def _release(self) -> None:
        """Forget policy, topics and episode state (unconfigured)."""
        for p in self._pubs:
            self.destroy_publisher(p)
        for s in self._subs:
            self.destroy_subscription(s)
        for s in self._actor_services:
            self.destroy_service(s)
        if getattr(self, "_status_timer", None) is not None:
            self.destroy_timer(self._status_timer)
        self._status_timer = None
        self._drop_timer()
        self._pubs, self._subs, self._actor_services = [], [], []
        self._cmd_pub = self._tr_pub = self._status_pub = None
        self.logic.release()

    def _drop_timer(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self.logic.activate(time.monotonic())
            self._timer = self.create_timer(1.0 / WATCHDOG_HZ, self._on_watchdog, clock=self._steady)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self.logic.deactivate("deactivate")
            self._drop_timer()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self.logic.deactivate("shutdown")
            self._flush_commands()
            self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            try:
                self.logic.deactivate("error")
            finally:
                self._release()
        return TransitionCallbackReturn.SUCCESS

    def safe_stop(self) -> None:
        """Best effort at process exit: publish the safe command if active (the context may already be down) and
        wait up to 0.2 s for the subscribers to acknowledge it."""
        with self._lock:
            try:
                self.logic.deactivate("exit")
                self._flush_commands()
            except Exception:  # noqa: BLE001 - shutting down: nothing else to do
                pass

    def _flush_commands(self, timeout_s: float = 0.2) -> None:
        """Wait (bounded) until the last commands are acknowledged, before the publisher is destroyed."""
        wait = getattr(self._cmd_pub, "wait_for_all_acked", None)
        if wait is not None:
            from rclpy.duration import Duration
            wait(Duration(nanoseconds=int(timeout_s * 1e9)))

    # ------------------------------------------------------------------------------------------ outputs
    def _publish_command(self, cmd: np.ndarray) -> None:
        msg = Float64MultiArray()
        msg.data = c.f64_array(cmd)
        self._cmd_pub.publish(msg)

    def _publish_transition(self, t: TransitionRecord, stamp: int) -> bool:
        m = Transition()
        m.header.frame_id = t.source
        c.set_stamp(m.header, stamp)
        m.episode, m.step = t.episode, t.step
        m.observation, m.action, m.next_observation = c.f32_array(t.obs), c.f32_array(t.action), \
            c.f32_array(t.next_obs)
        m.reward = float(t.reward)
        m.terminated, m.truncated = bool(t.terminated), bool(t.truncated)
        self._tr_pub.publish(m)
        return True

    def _command_listeners(self) -> int:
        return self._cmd_pub.get_subscription_count() if self._cmd_pub is not None else 0

    # ------------------------------------------------------------------------------------------ inputs
    def _on_env_step(self, msg: EnvStep) -> None:
        with self._lock:
            self.logic.on_env_step(msg.episode, msg.step, msg.observation, msg.reward, msg.terminated,
                                   msg.truncated, time.monotonic(), time.perf_counter())

    def _on_status(self, msg: LearnerStatus) -> None:
        with self._lock:
            self.logic.on_status(time.monotonic(), msg.learner_id)

    def _on_ack(self, msg: LearnerAck) -> None:
        with self._lock:
            self.logic.on_ack(msg.header.frame_id, c.stamp_ns(msg.header), int(msg.weights_version),
                              time.monotonic(), msg.learner_id)

    def _on_weights(self, msg: PolicyWeights) -> None:
        with self._lock:
            self.logic.on_weights(int(msg.version), msg.layout, np.asarray(msg.data, dtype=np.float32),
                                  time.monotonic(), preset=str(msg.preset), learner_id=str(msg.learner_id))

    def set_weights(self, version: int, layout_json: str, data: np.ndarray, learner_id: str = "") -> bool:
        """In-process weight sharing (embedded runner): the same checks as the policy_weights topic, no
        serialisation. data: flat float32 (n_params,) in layout order. Returns True if loaded. Thread-safe."""
        with self._lock:
            return self.logic.on_weights(int(version), layout_json, data, time.monotonic(), learner_id=learner_id)

    def _on_watchdog(self) -> None:
        with self._lock:
            self.logic.on_tick(time.monotonic())

    # ------------------------------------------------------------------------------------------ protections
    def _on_e_stop(self, msg: Bool) -> None:
        with self._lock:
            self.logic.on_e_stop(bool(msg.data), time.monotonic())

    def _srv_e_stop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self._lock:
            if request.data:
                self.logic.on_e_stop(True, time.monotonic())
                response.success, response.message = True, "e-stop engaged (latched)"
            else:
                response.success = self.logic.clear_e_stop(time.monotonic())
                response.message = "e-stop cleared" if response.success else "e-stop was not engaged"
        return response

    def _srv_clear_e_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            response.success = self.logic.clear_e_stop(time.monotonic())
            response.message = "e-stop cleared: soft start" if response.success else "e-stop was not engaged"
        return response

    def _on_imu(self, msg: Imu) -> None:
        with self._lock:
            q = msg.orientation
            self.logic.on_imu((q.x, q.y, q.z, q.w), time.monotonic())

    def _on_joint_states(self, msg: JointState) -> None:
        """joint_states in the driver's order, mapped by name into the controller's (``joint_names``)."""
        idx = self._joint_index
        if len(msg.name) != len(msg.position):
            return
        pos = [math.nan] * len(idx)
        for name, p in zip(msg.name, msg.position):
            i = idx.get(name)
            if i is not None:
                pos[i] = p
        with self._lock:
            self.logic.on_joint_positions(pos)

    def _publish_status(self) -> None:
        with self._lock:
            logic, pub = self.logic, self._status_pub
            if pub is None:
                return
            n = logic.n
            m = ActorStatus()
            m.header.stamp = self.get_clock().now().to_msg()
            m.robot_id, m.active, m.e_stop = logic.settings.robot_id, logic.active, logic.e_stopped
            m.steps_acted, m.commands_sent, m.safe_commands_sent = n.steps_acted, n.commands_sent, n.safe_commands_sent
            m.bad_env_steps, m.transitions_sent = n.bad_env_steps, n.transitions_sent
            m.weights_version, m.learner_id = int(logic.weights_version), logic.learner_id or ""
            m.watchdog_trips, m.attitude_trips = n.watchdog_trips, n.attitude_trips
            lat = np.asarray(list(n.latencies_ms)[-200:], np.float64)
            m.command_latency_p50_ms = float(np.percentile(lat, 50)) if lat.size else math.nan
            m.command_latency_p99_ms = float(np.percentile(lat, 99)) if lat.size else math.nan
            if logic.pipeline is not None:
                sh = logic.pipeline.shares()
                m.share_limited, m.share_rate_limited = sh["limits"], sh["rate_limit"]
                m.share_smoothed, m.share_soft_started = sh["smoothing"], sh["soft_start"]
            if logic.telemetry is not None and logic.telemetry.count:
                t = logic.telemetry.summary()
                m.saturation, m.mean_abs_delta = c.f32_array(t.saturation), c.f32_array(t.abs_delta)
                m.hf_share, m.reach = c.f32_array(t.hf_share), c.f32_array(t.reach)
                logic.telemetry.reset()   # the next window
        pub.publish(m)


for _name in ActorCounters.__dataclass_fields__:   # node.steps_acted, node.latencies_ms, ... (read-only)
    setattr(ActorNode, _name, property(lambda self, _n=_name: getattr(self.logic.n, _n)))


def main(argv: list[str] | None = None) -> int:
    """`ros2 run symphony_ros actor [--ros-args ...]`. Ctrl-C / SIGTERM (once or repeatedly) publish the safe command
    before the node exits (nodes/common.py run_node)."""
    try:
        import torch
        torch.set_num_threads(1)   # one small forward per step: a single thread has the lowest latency
    except ImportError:            # a robot running an ONNX export has no torch
        pass
    return c.run_node(ActorNode, argv, name="actor", on_exit=lambda node: node.safe_stop())


if __name__ == "__main__":
    import sys
    sys.exit(main())
