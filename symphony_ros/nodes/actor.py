"""ActorNode: the only node that commands motors. Each env_step becomes one joint command and one Transition.

Lifecycle (``rclpy.lifecycle``): configure loads the policy (``policy_file``, else waits for the learner's first
PolicyWeights) and creates the topics; activate starts commanding; deactivate publishes the safe command once and
stops; cleanup/shutdown release everything. ``autostart`` runs configure + activate in the constructor.

Topics (relative names, see :mod:`symphony_ros.nodes.common`):
  in : env_step (EnvStep), policy_weights (PolicyWeights, latched), learner_status (heartbeat), learner_ack
  out: joint_commands (Float64MultiArray, one value per actuated joint), transitions (Transition)

Safety (ALGORITHM.md §8.3): every published command goes through :class:`~symphony_ros.control.SafetyLayer`
(finite, inside ``joint_lower``/``joint_upper``); NaN/Inf/wrong-size env_steps and non-finite network outputs are
counted, logged (rate-limited) and answered with the safe command; a 20 Hz watchdog publishes the safe command when no
valid env_step arrived for ``obs_timeout_s`` or the learner went silent for ``learner_timeout_s`` (see
:meth:`ActorNode._on_watchdog` for the lockstep-simulation exception). The zero-policy window runs only with
``simulation: true``.

Lockstep handshake (``mode: lockstep``; the learner must match it): every Transition gets a unique header
(frame_id = ``robot_id``, stamp = wall-clock ns, strictly increasing per actor). The env_step that produced a
Transition's s' is held (not acted on) until a LearnerAck with exactly that header (frame_id and stamp) arrives AND
the actor holds weights with version >= ack.weights_version; then the newest held env_step is acted on. Before the
learner has been seen (no learner_status/policy_weights/learner_ack yet) nothing is held.
"""
from __future__ import annotations

import array
import collections
import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_msgs.msg import Float64MultiArray
from symphony_ros_interfaces.msg import EnvStep, LearnerAck, LearnerStatus, PolicyWeights, Transition

from ..control.safety import COMMAND_MODES, CommandMapping, SafetyLayer, Watchdog, execution_gains, \
    limits_from_params
from ..core.checkpoint import CheckpointError
from ..core.config import ConfigError, SymphonyConfig, load_preset
from ..core.networks import Actor
from ..core.policy import build_actor, load_actor_file, load_flat_actor
from ..envs.gym_env import policy_input
from . import common as c

WATCHDOG_HZ = 20.0          # watchdog timer rate (Hz): a trip publishes the safe command on every tick
HOLD_WARN_S = 5.0           # warn (rate-limited) when a held env_step has waited this long for its learner_ack
MODES = ("lockstep", "async")


def actor_param_specs() -> list[c.ParamSpec]:
    """The actor's ROS parameters (defaults = config/actor.yaml) plus ``symphony.<config field>`` overrides."""
    return [
        c.ParamSpec("preset", "s3", "Symphony preset name (s3, se, s2, ed, s2_tilde) or preset YAML path"),
        c.ParamSpec("mode", "async", "lockstep: wait for the learner's ack before acting on the next step (sim); "
                    "async: never wait (real robots)", choices=MODES),
        c.ParamSpec("simulation", False, "true ONLY in simulation: enables the zero-policy window (let it fall)"),
        c.ParamSpec("robot_id", "robot", "this robot's id: Transition.header.frame_id, matched by learner_ack"),
        c.ParamSpec("seed", 0, "seed of the exploration noise generator", lo=0, hi=2**31 - 1),
        c.ParamSpec("device", "cpu", "torch device of the actor network: cpu, cuda, cuda:<i>, auto"),
        c.ParamSpec("policy_file", "", "exported actor or training checkpoint to start from; '' = wait for the "
                    "learner's policy_weights"),
        c.ParamSpec("joint_lower", "", "per-joint lower command limits (float list); empty = -1 (policy units). "
                    "A REAL ROBOT MUST SET THEM", dynamic=True),
        c.ParamSpec("joint_upper", "", "per-joint upper command limits (float list); empty = +1 (policy units). "
                    "A REAL ROBOT MUST SET THEM", dynamic=True),
        c.ParamSpec("safe_command", "", "command sent on bad input, watchdog and deactivation (float list); "
                    "empty = zeros clipped into the limits", dynamic=True),
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
    ] + c.config_param_specs()


@dataclass
class _Step:
    """One validated env_step. obs: (obs_size,) float32 raw observation; x: (obs_dim,) float32 policy input."""
    episode: int
    step: int
    obs: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    x: np.ndarray | None = None
    t_rx: float = 0.0    # time.perf_counter() when the env_step arrived (command latency = publish − t_rx)


@dataclass
class _Acted:
    """The last step acted on by the policy: (episode, step), policy input x (obs_dim,), policy action a (act_dim,)."""
    episode: int
    step: int
    x: np.ndarray
    a: np.ndarray


def _f32_array(v: np.ndarray) -> array.array:
    return array.array("f", np.ascontiguousarray(v, dtype=np.float32).tobytes())


def _float_list(value: Any, name: str) -> list[float] | None:
    """A float-list parameter: None/''/[] = not set; else a list of finite floats, or ValueError."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, (str, bytes, bool)) or not isinstance(value, (Sequence, array.array)):
        raise ValueError(f"parameter '{name}' must be a list of numbers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            raise ValueError(f"parameter '{name}' must be a list of finite numbers, got {list(value)!r}")
        out.append(float(v))
    return out or None


class ActorNode(LifecycleNode):
    """Lifecycle node 'actor'. ``kwargs`` go to the LifecycleNode (cli_args, namespace, context, ...).

    Counters (ints, read them directly): steps_acted (policy actions commanded), transitions_sent, commands_sent
    (all commands, safe ones included), safe_commands_sent, bad_env_steps, bad_weights, weights_version (-1 = no
    weights), watchdog_trips (rising edges), bad_actions (non-finite network output), duplicates_ignored,
    held_steps, weights_ignored (not newer).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("actor", **kwargs)
        self._lock = threading.RLock()
        self.steps_acted = self.transitions_sent = self.commands_sent = self.safe_commands_sent = 0
        self.bad_env_steps = self.bad_weights = self.watchdog_trips = self.bad_actions = 0
        self.duplicates_ignored = self.held_steps = self.weights_ignored = self.transitions_failed = 0
        self.weights_version = -1
        self.latencies_ms: collections.deque[float] = collections.deque(maxlen=1000)   # env_step → command, ms
        self._specs = actor_param_specs()
        self._live = c.declare_parameters(self, self._specs, on_change=self._on_param_change)
        self._bad = c.BadInputCounter(self.get_logger())
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._pubs: list[Any] = []
        self._subs: list[Any] = []
        self._last_stamp_ns = 0     # Transition stamps: wall-clock ns, strictly increasing for this node's life
        self._timer = None
        self._release()
        if self._live["autostart"]:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                self.get_logger().error("autostart: configure failed; the actor stays unconfigured")
            elif self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                self.get_logger().error("autostart: activate failed; the actor stays inactive")

    # ------------------------------------------------------------------------------------------ state
    def _release(self) -> None:
        """Forget policy, topics and episode state (unconfigured)."""
        for p in self._pubs:
            self.destroy_publisher(p)
        for s in self._subs:
            self.destroy_subscription(s)
        if self._timer is not None:
            self.destroy_timer(self._timer)
        self._pubs, self._subs, self._timer = [], [], None
        self._cmd_pub = self._tr_pub = None
        self._cfg: SymphonyConfig | None = None
        self._actor: Actor | None = None
        self._device = torch.device("cpu")
        self._gen: torch.Generator | None = None
        self._safety: SafetyLayer | None = None
        self._mapping: CommandMapping | None = None
        self._joint_params: tuple[list[float] | None, list[float] | None, list[float] | None] = (None, None, None)
        self._seen_version = -1          # newest version received (accepted or with a bad payload)
        self.weights_version = -1
        self._learner_seen_at: float | None = None
        self._learner_dead = False
        self._active = False
        self._watchdog: Watchdog | None = None
        self._reset_episode_state()

    def _reset_episode_state(self) -> None:
        self._prev: _Acted | None = None         # last policy-acted step (for transitions and prev_action_in_obs)
        self._last_key: tuple[int, int] | None = None   # (episode, step) last answered/held/consumed
        self._held: _Step | None = None
        self._held_since = 0.0
        self._pending: tuple[str, int] | None = None    # header (frame_id, stamp ns) of the un-acked Transition
        self._need_version: int | None = None           # ack'ed weights_version the actor must reach
        self._tripped = False

    def _on_param_change(self, name: str, value: Any) -> None:
        with self._lock:
            self._live[name] = value
            if name == "obs_timeout_s" and self._watchdog is not None:
                self._watchdog.timeout_s = float(value)

    def _p(self, name: str) -> Any:
        return self._live[name]

    @property
    def is_active(self) -> bool:
        """True between activate and deactivate."""
        return self._active

    @property
    def _obs_size(self) -> int | None:
        """Raw observation size the env_step must have (None until the policy is known)."""
        if self._actor is None or self._cfg is None:
            return None
        return self._actor.obs_dim - (self._actor.act_dim if self._cfg.prev_action_in_obs else 0)

    def counters(self) -> dict[str, int]:
        """All counters as a dict (for progress bars and tests)."""
        names = ("steps_acted", "transitions_sent", "commands_sent", "safe_commands_sent", "bad_env_steps",
                 "bad_weights", "weights_version", "watchdog_trips", "bad_actions", "duplicates_ignored",
                 "held_steps", "weights_ignored")
        return {n: int(getattr(self, n)) for n in names}

    # ------------------------------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            try:
                self._configure()
            except (ConfigError, CheckpointError, ValueError, OSError, RuntimeError) as exc:
                self.get_logger().error(f"configure failed: {exc}")
                self._release()
                return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        from ..core.agent import resolve_device
        overrides = c.config_overrides_from_params(self._live)
        self._cfg = load_preset(str(self._p("preset")), overrides)
        self._device = resolve_device(str(self._p("device")))
        self._joint_params = (_float_list(self._p("joint_lower"), "joint_lower"),
                              _float_list(self._p("joint_upper"), "joint_upper"),
                              _float_list(self._p("safe_command"), "safe_command"))
        if self._p("mode") == "lockstep" and not self._p("simulation"):
            self.get_logger().warning("mode 'lockstep' with simulation: false: a real robot should run 'async' "
                                      "(a held step keeps the last command until the learner answers)")
        path = str(self._p("policy_file"))
        act_dim = None
        if path:
            actor, fcfg, version = load_actor_file(path, self._device)
            if fcfg.preset != self._cfg.preset:
                self.get_logger().warning(f"policy_file {path} was trained with preset '{fcfg.preset}', "
                                          f"not '{self._cfg.preset}': using the file's config")
            self._cfg = fcfg.replace(**overrides) if overrides else fcfg
            self._set_actor(actor)
            self.weights_version = self._seen_version = int(version)
            act_dim = actor.act_dim
            self.get_logger().info(f"loaded policy {path} (version {version}, obs {actor.obs_dim}, act "
                                   f"{actor.act_dim}, hidden {actor.hidden})")
        self._setup_safety(act_dim)
        self._watchdog = Watchdog(float(self._p("obs_timeout_s")))
        self._cmd_pub = self.create_publisher(Float64MultiArray, c.TOPIC_JOINT_COMMANDS, c.QOS_COMMAND)
        self._tr_pub = self.create_publisher(Transition, c.TOPIC_TRANSITIONS, c.QOS_TRANSITIONS)
        self._pubs = [self._cmd_pub, self._tr_pub]
        self._subs = [
            self.create_subscription(EnvStep, c.TOPIC_ENV_STEP, self._on_env_step, c.QOS_ENV_STEP),
            self.create_subscription(PolicyWeights, c.TOPIC_POLICY_WEIGHTS, self._on_weights, c.QOS_LATCHED),
            self.create_subscription(LearnerStatus, c.TOPIC_LEARNER_STATUS, self._on_status, c.QOS_RELIABLE),
            self.create_subscription(LearnerAck, c.TOPIC_LEARNER_ACK, self._on_ack, c.QOS_ACK),
        ]
        if self._actor is None:
            self.get_logger().info("configured; waiting for the learner's policy_weights (safe commands until then)")

    def _setup_safety(self, act_dim: int | None) -> None:
        """Build the safety layer and mapping once the joint count is known (ValueError if inconsistent)."""
        lower, upper, safe = self._joint_params
        safety, defaulted = limits_from_params(lower, upper, safe, act_dim)
        if safety is None:
            return
        mapping = CommandMapping(safety.lower, safety.upper, str(self._p("command_mode")))
        if defaulted and self._safety is None:
            msg = (f"joint_lower/joint_upper not set: commands are clamped to [-1, 1] policy units for "
                   f"{safety.size} joints. A REAL ROBOT MUST SET ITS JOINT LIMITS (and keep simulation: false)")
            if self._p("simulation"):
                self.get_logger().info(msg)
            else:
                self.get_logger().warning(msg)
        self._safety, self._mapping = safety, mapping

    def _set_actor(self, actor: Actor) -> None:
        actor.eval().requires_grad_(False)
        self._gen = torch.Generator(device=self._device)
        self._gen.manual_seed(int(self._p("seed")))
        actor.generator = self._gen
        self._actor = actor

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._reset_episode_state()
            self._active = True
            assert self._watchdog is not None
            self._watchdog.feed(time.monotonic())   # grace of one timeout from activation
            self._timer = self.create_timer(1.0 / WATCHDOG_HZ, self._on_watchdog, clock=self._steady)
            if self._safety is None:
                log = self.get_logger().info if self._p("simulation") else self.get_logger().warning
                log("active without a known joint count: nothing can be commanded until policy_weights arrive "
                    "(or set joint_lower/joint_upper)")
            self.get_logger().info(f"active ({self._p('mode')}, simulation={self._p('simulation')})")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._stop("deactivate")
        return TransitionCallbackReturn.SUCCESS

    def _stop(self, why: str) -> None:
        """Publish the safe command once (if active) and stop acting."""
        if self._active:
            self._send_safe(why)
        self._active = False
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self._reset_episode_state()

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._stop("shutdown")
            self._flush_commands()
            self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            try:
                self._stop("error")
            finally:
                self._release()
        return TransitionCallbackReturn.SUCCESS

    def safe_stop(self) -> None:
        """Best effort at process exit: publish the safe command if active (the context may already be down) and
        wait up to 0.2 s for the subscribers to acknowledge it."""
        with self._lock:
            try:
                self._stop("exit")
                self._flush_commands()
            except Exception:  # noqa: BLE001 - shutting down: nothing else to do
                pass

    def _flush_commands(self, timeout_s: float = 0.2) -> None:
        """Wait (bounded) until the last commands are acknowledged, before the publisher is destroyed."""
        wait = getattr(self._cmd_pub, "wait_for_all_acked", None)
        if wait is not None:
            from rclpy.duration import Duration
            wait(Duration(nanoseconds=int(timeout_s * 1e9)))

    # ------------------------------------------------------------------------------------------ publishing
    def _publish_command(self, cmd: np.ndarray, *, safe: bool) -> None:
        if not self._safety.check(cmd):   # cannot happen after clamp(); last line of defence, never raise here
            self.get_logger().error(f"unsafe command {cmd!r} reached the publisher: sending the safe command")
            cmd, safe = self._safety.safe(), True
        msg = Float64MultiArray()
        msg.data = array.array("d", np.ascontiguousarray(cmd, dtype=np.float64).tobytes())
        self._cmd_pub.publish(msg)
        self.commands_sent += 1
        if safe:
            self.safe_commands_sent += 1

    def _send_safe(self, why: str) -> bool:
        """Publish the safe command; breaks the transition chain. False if the joint count is still unknown."""
        self._prev = None
        if self._safety is None or self._cmd_pub is None:
            self._bad("safe_command", f"cannot send the safe command ({why}): joint count unknown until "
                      "policy_weights arrive or joint_lower/joint_upper are set")
            return False
        self._publish_command(self._safety.safe(), safe=True)
        return True

    def _next_stamp_ns(self) -> int:
        self._last_stamp_ns = max(time.time_ns(), self._last_stamp_ns + 1)
        return self._last_stamp_ns

    def _send_transition(self, prev: _Acted, step: _Step) -> None:
        assert step.x is not None
        t = Transition()
        t.header.frame_id = str(self._p("robot_id"))
        stamp = self._next_stamp_ns()
        c.set_stamp(t.header, stamp)
        t.episode, t.step = prev.episode, prev.step
        t.observation = _f32_array(prev.x)
        t.action = _f32_array(prev.a)
        t.reward = float(step.reward)
        t.next_observation = _f32_array(step.x)
        t.terminated, t.truncated = bool(step.terminated), bool(step.truncated)
        try:
            self._tr_pub.publish(t)
        except Exception as exc:   # e.g. RCLError "cannot publish data" when DDS refuses: never leave the callback
            self.transitions_failed += 1
            self._bad("transition", f"publish refused ({exc}); the learner will not get this transition")
            return
        self.transitions_sent += 1
        if self._p("mode") == "lockstep" and self._learner_seen_at is not None:
            self._pending = (t.header.frame_id, stamp)
            self._need_version = None

    # ------------------------------------------------------------------------------------------ env_step
    def _on_env_step(self, msg: EnvStep) -> None:
        with self._lock:
            if not self._active:
                return
            key = (int(msg.episode), int(msg.step))
            if key == self._last_key:
                self.duplicates_ignored += 1
                return
            now = time.monotonic()
            try:
                step = _Step(key[0], key[1], c.to_vector(msg.observation, self._obs_size, "env_step observation"),
                             c.finite_scalar(msg.reward, "env_step reward"), bool(msg.terminated),
                             bool(msg.truncated), t_rx=time.perf_counter())
            except c.BadMessage as exc:
                self.bad_env_steps += 1
                self._bad("env_step", f"episode {key[0]} step {key[1]}: {exc}")
                self._answer_safe(key, "bad env_step")
                return
            self._watchdog.feed(now)
            prev = self._prev
            continues = prev is not None and prev.episode == step.episode and prev.step + 1 == step.step
            if self._actor is not None:
                prev_a = None
                if self._cfg.prev_action_in_obs:
                    prev_a = prev.a if continues else np.zeros(self._actor.act_dim, np.float32)
                step.x = policy_input(step.obs, prev_a)
            if continues:
                self._send_transition(prev, step)
            if step.terminated or step.truncated:
                self._prev = None            # the bridge resets and sends step 0 of the next episode: act on that
                self._last_key = key
                return
            if self._learner_timed_out(now):   # no handshake with a silent learner: stop waiting, stay safe
                self._held, self._pending, self._need_version = None, None, None
                self._answer_safe(key, "learner silent")
                return
            if self._pending is not None:   # lockstep: wait for the ack of the last transition
                if self._held is None:
                    self._held_since = now
                self._held, self._last_key = step, key
                self.held_steps += 1
                return
            self._act(step)

    def _answer_safe(self, key: tuple[int, int], why: str) -> None:
        self._last_key = key if self._send_safe(why) else None

    def _act(self, step: _Step) -> None:
        """Command the policy's action for ``step`` (or the safe command if there is no policy / bad output)."""
        key = (step.episode, step.step)
        if self._p("mode") == "lockstep" and self._cmd_pub.get_subscription_count() == 0:
            # a command published before discovery matched the bridge would be lost and the lockstep graph would
            # wait forever: leave the step unanswered; the bridge re-publishes it and we answer once matched
            return
        if self._actor is None or step.x is None or self._safety is None:
            self._answer_safe(key, "no policy weights yet")
            return
        act, noise = execution_gains(step.step, learning=self.weights_version > 0,
                                     simulation=bool(self._p("simulation")),
                                     deterministic=bool(self._p("deterministic")),
                                     episode_limit=self._cfg.episode_limit,
                                     zero_policy_window=self._cfg.zero_policy_window)
        with torch.inference_mode():
            s = torch.from_numpy(step.x).to(self._device).unsqueeze(0)
            a = self._actor(s, act=act, noise=noise)[0][0].float().cpu().numpy()
        if not np.isfinite(a).all():
            self.bad_actions += 1
            self._bad("action", f"the network gave a non-finite action at episode {step.episode} step {step.step}")
            self._answer_safe(key, "non-finite action")
            return
        self._publish_command(self._safety.clamp(self._mapping(a)), safe=False)
        if step.t_rx:
            self.latencies_ms.append((time.perf_counter() - step.t_rx) * 1e3)
        self.steps_acted += 1
        self._last_key = key
        self._prev = _Acted(step.episode, step.step, step.x, a)

    # ------------------------------------------------------------------------------------------ learner side
    def _heartbeat(self) -> None:
        self._learner_seen_at = time.monotonic()
        if self._learner_dead:
            self._learner_dead = False
            self.get_logger().info("learner is back: acting again")

    def _learner_timed_out(self, now: float) -> bool:
        timeout = float(self._p("learner_timeout_s"))
        dead = timeout > 0 and self._learner_seen_at is not None and now - self._learner_seen_at > timeout
        if dead and not self._learner_dead:
            self.get_logger().warning(f"no learner_status/policy_weights/learner_ack for {timeout} s: "
                                      "sending safe commands until the learner is back")
        self._learner_dead = dead
        return dead

    def _on_status(self, msg: LearnerStatus) -> None:
        with self._lock:
            self._heartbeat()

    def _on_ack(self, msg: LearnerAck) -> None:
        with self._lock:
            self._heartbeat()
            if self._pending is None or (msg.header.frame_id, c.stamp_ns(msg.header)) != self._pending:
                return
            self._pending = None
            self._need_version = int(msg.weights_version)
            self._try_release()

    def _try_release(self) -> None:
        """Act on the held env_step once its ack has arrived and the weights are at least the ack'ed version."""
        if self._held is None or self._pending is not None or not self._active:
            return
        if self._need_version is not None and self._seen_version < self._need_version:
            return
        step, self._held, self._need_version = self._held, None, None
        self._act(step)

    def _on_weights(self, msg: PolicyWeights) -> None:
        with self._lock:
            self._heartbeat()
            self._load_weights(int(msg.version), msg.layout, np.asarray(msg.data, dtype=np.float32),
                               str(msg.preset))

    def set_weights(self, version: int, layout_json: str, data: np.ndarray) -> bool:
        """In-process weight sharing (embedded runner): the same checks as the policy_weights topic, no
        serialisation. data: flat float32 (n_params,) in layout order. Returns True if loaded. Thread-safe."""
        with self._lock:
            self._heartbeat()
            return self._load_weights(int(version), layout_json, np.asarray(data, dtype=np.float32), "")

    def _load_weights(self, version: int, layout_json: str, data: np.ndarray, preset: str) -> bool:
        if self._cfg is None:
            return False    # unconfigured (the latched message is delivered again after configure)
        if version <= self.weights_version:
            self.weights_ignored += 1
            return False
        try:
            actor = self._actor
            if actor is None:
                actor = self._actor_from_layout(layout_json, preset)
            load_flat_actor(actor, layout_json, data)
            if self._actor is None:
                self._setup_safety(actor.act_dim)
                if self._safety is None:
                    raise ValueError("no safety layer for the policy's joints")
                self._set_actor(actor)
                self.get_logger().info(f"policy from the learner: obs {actor.obs_dim}, act {actor.act_dim}, "
                                       f"hidden {actor.hidden}")
        except ValueError as exc:
            self.bad_weights += 1
            self._seen_version = max(self._seen_version, version)   # a bad payload must not stall the handshake
            self._bad("policy_weights", f"version {version}: {exc}")
            self._try_release()
            return False
        self.weights_version = version
        self._seen_version = max(self._seen_version, version)
        self._try_release()
        return True

    def _actor_from_layout(self, layout_json: str, preset: str) -> Actor:
        """A fresh actor with the sizes a PolicyWeights layout gives (ValueError if the layout is unusable)."""
        try:
            layout = json.loads(layout_json)
            dims = {k: layout[k] for k in ("obs_dim", "act_dim", "hidden")}
        except (json.JSONDecodeError, TypeError, KeyError):
            raise ValueError("layout is not a JSON object with obs_dim, act_dim and hidden") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in dims.values()):
            raise ValueError(f"layout sizes must be positive integers, got {dims}")
        cfg = self._cfg
        if cfg.prev_action_in_obs and dims["obs_dim"] <= dims["act_dim"]:
            raise ValueError(f"layout obs_dim {dims['obs_dim']} cannot hold the previous action "
                             f"(act_dim {dims['act_dim']}, prev_action_in_obs is on)")
        lower, _, safe = self._joint_params
        n = len(lower) if lower else (len(safe) if safe else None)
        if n is not None and n != dims["act_dim"]:
            raise ValueError(f"layout act_dim {dims['act_dim']} does not match the {n} configured joints")
        if preset and preset != cfg.preset:
            self.get_logger().warning(f"policy_weights come from preset '{preset}', this actor runs '{cfg.preset}'")
        if dims["hidden"] != cfg.hidden_dim:
            cfg = cfg.replace(hidden_dim=dims["hidden"])
        return build_actor(dims["obs_dim"], dims["act_dim"], cfg).to(self._device)

    # ------------------------------------------------------------------------------------------ watchdog
    def _on_watchdog(self) -> None:
        """20 Hz. Publishes the safe command on every tick while tripped: no valid env_step for obs_timeout_s,
        or the learner silent for learner_timeout_s.

        Lockstep simulation is the exception: the world is paused until it gets a command, and an unsolicited
        command would be taken by the bridge as the action of its next step. There the watchdog never publishes on
        its own; a held env_step is answered with the safe command if the learner goes silent."""
        with self._lock:
            if not self._active:
                return
            now = time.monotonic()
            learner_dead = self._learner_timed_out(now)
            if self._held is not None:
                if learner_dead:
                    step, self._held, self._pending, self._need_version = self._held, None, None, None
                    self._answer_safe((step.episode, step.step), "learner silent")
                    return
                if now - self._held_since > HOLD_WARN_S:
                    self._bad("hold", f"env_step held {now - self._held_since:.1f} s waiting for learner_ack "
                              f"{self._pending} / weights >= {self._need_version} (is the learner in lockstep?)")
            if self._p("mode") == "lockstep" and self._p("simulation"):
                return
            if self._watchdog.expired(now) or learner_dead:
                if not self._tripped:
                    self._tripped = True
                    self.watchdog_trips += 1
                    why = "learner silent" if learner_dead else \
                        f"no valid env_step for {self._watchdog.age(now):.2f} s"
                    self.get_logger().warning(f"watchdog: {why}: sending the safe command")
                self._held, self._pending, self._need_version = None, None, None
                self._send_safe("watchdog")
            else:
                self._tripped = False


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """`ros2 run symphony_ros actor [--ros-args ...]`. Ctrl-C / SIGTERM publish the safe command before exiting:
    rclpy's own signal handler (which would shut the context down first) is turned off where rclpy allows it."""
    import signal
    try:
        from rclpy.signals import SignalHandlerOptions
        init_kw: dict[str, Any] = {"signal_handler_options": SignalHandlerOptions.NO}
    except ImportError:  # pragma: no cover - rclpy without signal options: best effort at exit
        init_kw = {}
    torch.set_num_threads(1)   # one small forward per step: a single thread has the lowest latency
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return c.run_node(ActorNode, argv, name="actor", startup_errors=(), init_kwargs=init_kw, poll_s=0.1,
                      on_exit=lambda node: node.safe_stop())



if __name__ == "__main__":
    import sys
    sys.exit(main())
