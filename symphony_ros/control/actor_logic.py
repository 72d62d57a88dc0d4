"""ActorLogic: everything the actor decides, without ROS. The ActorNode converts messages into calls of this class
and publishes what it asks for; tests and other front-ends can drive it directly.

Per env step (:meth:`ActorLogic.on_env_step`): validate the observation (the storage rules' observation check: a
learner would refuse what the actor would act on otherwise), close the transition of the previous step
(:mod:`.chain`), hold the step while the lockstep gate waits for the learner (:mod:`.lockstep`), and act: the policy's
forward pass (:class:`symphony_ros.core.policy.ActorPolicy`), the gains of the loop rules
(:meth:`TrainingSchedule.execution_gains`: the zero-policy window exists in simulation only), then the command through
the safety layer (:mod:`.safety`). Anything untrustworthy (bad input, no policy, a non-finite action, a silent learner,
the watchdog) is answered with the safe command, and breaks the chain.

Weights (:meth:`on_weights`) come from one learner identity at a time: versions compare within one ``learner_id``; a
new identity is accepted and logged (a restarted or resumed learner counts from its own checkpoint).
"""
from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..core.config import SymphonyConfig
from ..core.schedule import TrainingSchedule
from ..core.storage import InvalidTransition, StorageRules, Transition
from .chain import EnvStepInput, TransitionChain
from .inference import Policy
from .lockstep import LockstepGate
from .pace import command_path_ms, rate_verdict
from .pipeline import CommandPipeline, SafeRamp
from .safety import CommandMapping, SafetyLayer, Watchdog, limits_from_params
from .telemetry import CommandTelemetry

HOLD_WARN_S = 5.0           # warn (rate-limited) when a held env_step has waited this long for its learner_ack
HOLD_LIMIT_S = 10.0         # a held step is answered safely after this long when learner_timeout_s is 0 (off)
WATCHDOG_TICK_HZ = 20.0     # the host calls on_tick at this rate (nodes/actor.py)
MODES = ("lockstep", "async")


@dataclass
class ActorSettings:
    """The actor's parameters (see config/actor.yaml for each one's meaning)."""
    mode: str = "async"
    simulation: bool = False
    robot_id: str = "robot"
    seed: int = 0
    device: str = "cpu"
    joint_lower: Optional[list[float]] = None
    joint_upper: Optional[list[float]] = None
    safe_command: Optional[list[float]] = None
    command_mode: str = "paper"
    obs_timeout_s: float = 0.5
    learner_timeout_s: float = 3.0
    deterministic: bool = False
    deploy: bool = False                  # inference only: noise-free actions, no transitions, no learner expected
    # the safety pipeline (control/pipeline.py) and protections
    control_rate_hz: float = 0.0          # the robot's control rate; 0 = unknown (rate limit and filter need it)
    velocity_limits: Optional[list[float]] = None   # per joint, command units per second: the rate limit
    smoothing: str = "none"               # none | lowpass | one_euro
    smoothing_cutoff_hz: float = 5.0
    one_euro_beta: float = 0.5
    soft_start_s: float = 0.0             # blend into the policy over this long after activation / a cleared e-stop
    safe_ramp_s: float = 0.0              # way back to the safe command (async only; lockstep answers at once)
    max_tilt_deg: float = 0.0             # attitude protection: IMU tilt beyond this -> safe + episode over (0 = off)
    store_executed: bool = True           # transitions hold the executed command (in policy units), not the wish


@dataclass
class Outputs:
    """What the logic asks its host to do. ``command(values)`` publishes one joint command (n,) float64;
    ``transition(t, stamp_ns)`` publishes one Transition (False if refused); ``command_listeners()`` is the number
    of matched command subscribers (lockstep waits for the bridge before answering); ``bad(kind, reason)`` counts
    and logs (rate-limited) a rejected input; ``info``/``warning``/``error`` log one line."""
    command: Callable[[np.ndarray], None]
    transition: Callable[[Transition, int], bool]
    command_listeners: Callable[[], int]
    bad: Callable[[str, str], None]
    info: Callable[[str], None]
    warning: Callable[[str], None]
    error: Callable[[str], None]

    def info_or_warning(self, ok: bool, text: str) -> None:
        """``info`` when ``ok``, else ``warning``: two call sites, because rclpy ties each call site to the severity
        it first logged at (a second severity from the same line raises ValueError)."""
        if ok:
            self.info(text)
        else:
            self.warning(text)


@dataclass
class ActorCounters:
    """Counters (ints): steps_acted (policy actions commanded), transitions_sent, transitions_failed, commands_sent
    (safe ones included), safe_commands_sent, bad_env_steps, bad_weights, weights_ignored (not newer),
    learner_changes (new learner identities accepted), watchdog_trips (rising edges), watchdog_ticks (watchdog
    periods while active), bad_actions (non-finite network output), duplicates_ignored, held_steps, acks_matched,
    acks_ignored, holds_expired (held steps answered safely because the handshake never completed),
    inactive_ignored (env steps while not active)."""
    steps_acted: int = 0
    transitions_sent: int = 0
    transitions_failed: int = 0
    commands_sent: int = 0
    safe_commands_sent: int = 0
    bad_env_steps: int = 0
    bad_weights: int = 0
    weights_ignored: int = 0
    learner_changes: int = 0
    watchdog_trips: int = 0
    watchdog_ticks: int = 0
    bad_actions: int = 0
    duplicates_ignored: int = 0
    held_steps: int = 0
    acks_matched: int = 0
    acks_ignored: int = 0
    holds_expired: int = 0
    inactive_ignored: int = 0
    e_stops: int = 0
    e_stop_messages: int = 0
    attitude_trips: int = 0
    latencies_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=1000))

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.__dict__.items() if isinstance(v, int)}


class ActorLogic:
    """The actor of one robot. Lifecycle: :meth:`configure` (config + settings [+ a policy]) → :meth:`activate` ⇄
    :meth:`deactivate` → :meth:`release`. All methods are called with the host's lock held (one at a time)."""

    def __init__(self, out: Outputs) -> None:
        self.out = out
        self.n = ActorCounters()
        self.settings = ActorSettings()
        self.release()

    # ------------------------------------------------------------------------------------------ state
    def release(self) -> None:
        """Forget policy, limits and episode state (unconfigured)."""
        self.config: Optional[SymphonyConfig] = None
        self.schedule: Optional[TrainingSchedule] = None
        self.policy: Optional[Policy] = None
        self.safety: Optional[SafetyLayer] = None
        self.mapping: Optional[CommandMapping] = None
        self.watchdog: Optional[Watchdog] = None
        self.weights_version = -1        # version of the weights acted with (-1 = none)
        self.seen_version = -1           # newest version received from the current learner (bad payloads too)
        self.learner_id: Optional[str] = None
        self.learner_seen_at: Optional[float] = None
        self.learner_dead = False
        self.active = False
        self.pipeline: Optional[CommandPipeline] = None
        self.telemetry: Optional[CommandTelemetry] = None
        self.ramp: Optional[SafeRamp] = None
        self.e_stopped = False
        self.measured: Optional[np.ndarray] = None   # last measured joint positions (controller order), if known
        self.rate_check: Optional[tuple[float, float, bool]] = None   # (p50 ms, p99 ms, holds) at start-up
        self._stamp_ns = 0               # transition stamps: wall-clock ns, strictly increasing for this life
        self._now = 0.0                  # monotonic time of the input being handled
        self.reset_episode()

    def reset_episode(self) -> None:
        self.chain = TransitionChain(bool(self.config and self.config.prev_action_in_obs),
                                     self.policy.act_dim if self.policy else None)
        self.gate = LockstepGate()
        self.last_key: Optional[tuple[int, int]] = None   # (episode, step) last answered/held/consumed
        self.tripped = False
        self.stopped_episode: Optional[int] = None   # an episode the attitude protection ended (not acted on)
        self.between_episodes = False                # a robot's episode ended: safe pose until the next starts
        self._new_episode = True                     # the next command starts an episode (telemetry)

    @property
    def lockstep(self) -> bool:
        return self.settings.mode == "lockstep"

    @property
    def obs_size(self) -> Optional[int]:
        """Raw observation size an env_step must have (None until the policy is known)."""
        if self.policy is None or self.config is None:
            return None
        return self.policy.obs_dim - (self.policy.act_dim if self.config.prev_action_in_obs else 0)

    def rules(self) -> StorageRules:
        """The storage rules for this actor's observations (sizes known once the policy is)."""
        assert self.config is not None
        p = self.policy
        return StorageRules.from_config(self.config, p.obs_dim if p else 0, p.act_dim if p else 0)

    # ------------------------------------------------------------------------------------------ lifecycle
    def configure(self, config: SymphonyConfig, settings: ActorSettings, policy: Optional[Policy] = None) -> None:
        """Take the config and settings (and a policy loaded from a file, if any). ValueError if inconsistent."""
        if settings.mode not in MODES:
            raise ValueError(f"mode '{settings.mode}' is not one of {', '.join(MODES)}")
        self.release()
        self.settings = settings
        self.config = config
        self.schedule = TrainingSchedule(config)
        self.watchdog = Watchdog(float(settings.obs_timeout_s))
        if settings.deploy:
            if policy is None:
                raise ValueError("deploy: true needs a policy_file (an exported policy): there is no learner")
            if settings.mode == "lockstep":
                raise ValueError("deploy: true runs mode 'async' (lockstep waits for a learner)")
        if settings.mode == "lockstep" and not settings.simulation:
            self.out.warning("mode 'lockstep' with simulation: false: a real robot should run 'async' (a held step "
                             "keeps the last command until the learner answers)")
        self._setup_safety(policy.act_dim if policy else None)
        if policy is not None:
            self._set_policy(policy)
            self.weights_version = self.seen_version = policy.version

    def _setup_safety(self, act_dim: Optional[int]) -> None:
        """Build the safety layer and mapping once the joint count is known (ValueError if inconsistent)."""
        s = self.settings
        safety, defaulted = limits_from_params(s.joint_lower, s.joint_upper, s.safe_command, act_dim)
        if safety is None:
            return
        mapping = CommandMapping(safety.lower, safety.upper, s.command_mode)
        period = 1.0 / s.control_rate_hz if s.control_rate_hz > 0 else 1.0 / 20.0
        max_delta = None
        if s.velocity_limits:
            if s.control_rate_hz <= 0:
                raise ValueError("velocity_limits need control_rate_hz (the rate limit is per control period)")
            if len(s.velocity_limits) != safety.size:
                raise ValueError(f"velocity_limits has {len(s.velocity_limits)} values, the actor commands "
                                 f"{safety.size} joints")
            max_delta = np.asarray(s.velocity_limits, np.float64) * period
        self.pipeline = CommandPipeline(safety, period_s=period, max_delta=max_delta, smoothing=s.smoothing,
                                        cutoff_hz=s.smoothing_cutoff_hz, one_euro_beta=s.one_euro_beta,
                                        soft_start_s=s.soft_start_s)
        self.telemetry = CommandTelemetry(safety.lower, safety.upper)
        if defaulted and self.safety is None:
            text = (f"joint_lower/joint_upper not set: commands are clamped to [-1, 1] policy units for "
                    f"{safety.size} joints. A REAL ROBOT MUST SET ITS JOINT LIMITS (and keep simulation: false)")
            self.out.info_or_warning(s.simulation, text)
        self.safety, self.mapping = safety, mapping

    def _set_policy(self, policy: Policy) -> None:
        policy.reseed(int(self.settings.seed))
        self.policy = policy
        self.chain.act_dim = policy.act_dim
        self._check_rate()

    def _check_rate(self) -> None:
        """Once the policy is known: can the command path hold control_rate_hz? One line (a warning if not)."""
        rate = self.settings.control_rate_hz
        if rate <= 0 or self.pipeline is None or self.mapping is None or self.policy is None:
            return
        policy, mapping, safety = self.policy, self.mapping, self.safety

        def one_command(x: np.ndarray) -> np.ndarray:   # the pipeline's filters are not touched: clamp only
            return safety.clamp(mapping(policy.act(x, act_gain=1.0, noise_gain=1.0)))
        p50, p99 = command_path_ms(one_command, policy.obs_dim)
        policy.reseed(int(self.settings.seed))            # the timing drew noise: restart the stream
        holds, line = rate_verdict(rate, p50, p99)
        self.rate_check = (p50, p99, holds)
        self.out.info_or_warning(holds, line)

    def activate(self, now: float) -> None:
        self._now = now
        self.reset_episode()
        self.active = True
        self.ramp = None
        if self.pipeline is not None:
            self.pipeline.reset(now, self.measured)   # soft start from the measured pose (or the safe command)
        assert self.watchdog is not None
        self.watchdog.feed(now)   # grace of one timeout from activation
        if self.safety is None:
            self.out.info_or_warning(self.settings.simulation,
                                     "active without a known joint count: nothing can be commanded until "
                                     "policy_weights arrive (or set joint_lower/joint_upper)")
        self.out.info(f"active ({self.settings.mode}, simulation={self.settings.simulation})")

    def deactivate(self, why: str) -> None:
        """Publish the safe command once (if active) and stop acting."""
        if self.active:
            self.send_safe(why, at_once=True)
        self.active = False
        self.reset_episode()

    # ------------------------------------------------------------------------------------------ commands
    def publish(self, cmd: np.ndarray, *, safe: bool) -> None:
        assert self.safety is not None
        if not self.safety.check(cmd):   # cannot happen after clamp(); last line of defence, never raise here
            self.out.error(f"unsafe command {cmd!r} reached the publisher: sending the safe command")
            cmd, safe = self.safety.safe(), True
        self.out.command(cmd)
        self.n.commands_sent += 1
        if self.pipeline is not None:
            self.pipeline.last = np.array(cmd, np.float64)
        if self.telemetry is not None:
            self.telemetry.add(cmd, self._new_episode)
            self._new_episode = False
        if safe:
            self.n.safe_commands_sent += 1

    def send_safe(self, why: str, *, at_once: bool = False) -> bool:
        """Go to the safe command and break the transition chain. In async mode with ``safe_ramp_s`` the way there
        is a ramp from the last command (continued by :meth:`on_tick`); in lockstep, or ``at_once`` (e-stop), the
        safe command itself. False if the joint count is still unknown."""
        self.chain.cut()
        if self.safety is None:
            self.out.bad("safe_command", f"cannot send the safe command ({why}): joint count unknown until "
                         "policy_weights arrive or joint_lower/joint_upper are set")
            return False
        last = self.pipeline.last if self.pipeline is not None else None
        if not at_once and not self.lockstep and self.settings.safe_ramp_s > 0 and last is not None:
            if self.ramp is None:
                self.ramp = SafeRamp(last, self.safety.safe(), self.settings.safe_ramp_s, self._now)
            self.publish(self.safety.clamp(self.ramp(self._now)), safe=True)
        else:
            self.ramp = None
            self.publish(self.safety.safe(), safe=True)
        self._new_episode = True
        return True

    def _answer_safe(self, key: tuple[int, int], why: str, *, at_once: bool = False) -> None:
        self.last_key = key if self.send_safe(why, at_once=at_once) else None

    def _next_stamp_ns(self) -> int:
        self._stamp_ns = max(time.time_ns(), self._stamp_ns + 1)
        return self._stamp_ns

    def _send_transition(self, t: Transition) -> None:
        stamp = self._next_stamp_ns()
        try:
            ok = self.out.transition(t, stamp)
        except Exception as exc:   # e.g. RCLError when DDS refuses: never leave the callback
            ok = False
            self.out.bad("transition", f"publish refused ({exc}); the learner will not get this transition")
        if not ok:
            self.n.transitions_failed += 1
            return
        self.n.transitions_sent += 1
        if self.lockstep and self.learner_seen_at is not None:
            self.gate.sent(self.settings.robot_id, stamp)

    # ------------------------------------------------------------------------------------------ env steps
    def on_env_step(self, episode: int, step: int, observation: Any, reward: Any, terminated: bool,
                    truncated: bool, now: float, t_rx: float = 0.0) -> None:
        self._now = now
        if not self.active:
            self.n.inactive_ignored += 1
            return
        key = (int(episode), int(step))
        if key == self.last_key:
            self.n.duplicates_ignored += 1
            return
        if self.e_stopped:               # latched: the safe command, nothing stored, until cleared explicitly
            self.watchdog.feed(now)
            self._answer_safe(key, "e-stop", at_once=True)
            return
        if self.stopped_episode is not None:
            if key[0] == self.stopped_episode:   # the attitude protection ended this episode: not acted on
                self.watchdog.feed(now)
                self._answer_safe(key, "attitude protection")
                return
            self.stopped_episode = None
        try:
            rules = self.rules()
            obs = rules.check_observation(observation, "env_step observation", size=self.obs_size)
            r = rules.check_reward(reward)
        except InvalidTransition as exc:
            self.n.bad_env_steps += 1
            self.out.bad("env_step", f"episode {key[0]} step {key[1]}: {exc}")
            self._answer_safe(key, "bad env_step")
            return
        s = EnvStepInput(key[0], key[1], obs, r, bool(terminated), bool(truncated), t_rx=t_rx)
        self.watchdog.feed(now)
        if self.policy is not None:
            s.x = self.chain.policy_input(s)
        t = self.chain.close(s, source=self.settings.robot_id)
        if t is not None and not self.settings.deploy:
            self._send_transition(t)
        if s.final:
            self.chain.cut()            # the bridge resets and sends step 0 of the next episode: act on that
            self.last_key = key
            if not self.settings.simulation and not self.lockstep:
                self.send_safe("episode over")   # a robot waits for its next episode in the safe pose (ramp)
                self.between_episodes = True
            return
        if not self.settings.deploy and self.learner_timed_out(now):   # a silent learner: stay safe
            self.gate.clear()
            self._answer_safe(key, "learner silent")
            return
        if self.gate.waiting:             # lockstep: wait for the ack of the last transition
            self.gate.hold(s, now)
            self.last_key = key
            self.n.held_steps += 1
            return
        self._act(s)

    def _act(self, s: EnvStepInput) -> None:
        """Command the policy's action for ``s`` (or the safe command if there is no policy / bad output)."""
        if self.lockstep and self.out.command_listeners() == 0:
            # a command published before discovery matched the bridge would be lost and the lockstep graph would
            # wait forever: leave the step unanswered; the bridge re-publishes it and we answer once matched
            return
        if self.policy is None or s.x is None or self.safety is None:
            self._answer_safe(s.key, "no policy weights yet")
            return
        act, noise = self.schedule.execution_gains(s.step, learning=self.weights_version > 0,
                                                   simulation=bool(self.settings.simulation),
                                                   deterministic=bool(self.settings.deterministic),
                                                   deploy=bool(self.settings.deploy))
        a = self.policy.act(s.x, act_gain=act, noise_gain=noise)
        if not np.isfinite(a).all():
            self.n.bad_actions += 1
            self.out.bad("action", f"the network gave a non-finite action at episode {s.episode} step {s.step}")
            self._answer_safe(s.key, "non-finite action")
            return
        if self.ramp is not None:        # back from a safe ramp: a new stretch of commanding, softly
            self.ramp = None
            self.pipeline.reset(self._now, self.measured)
        if s.step == 0:
            self._new_episode = True
        self.between_episodes = False
        executed = self.pipeline(self.mapping(a), self._now).command
        self.publish(executed, safe=False)
        if s.t_rx:
            self.n.latencies_ms.append((time.perf_counter() - s.t_rx) * 1e3)
        self.n.steps_acted += 1
        self.last_key = s.key
        if self.settings.store_executed:   # the critic learns Q of what the robot did (control/pipeline.py)
            a_max = float(self.config.a_max)
            a = np.clip(self.mapping.inverse(executed), -a_max, a_max).astype(np.float32)
        self.chain.acted(s, a)

    # ------------------------------------------------------------------------------------------ learner side
    def heartbeat(self, now: float) -> None:
        self.learner_seen_at = now
        if self.learner_dead:
            self.learner_dead = False
            self.out.info("learner is back: acting again")

    def learner_timed_out(self, now: float) -> bool:
        if self.settings.deploy:
            return False                  # no learner in deploy
        timeout = float(self.settings.learner_timeout_s)
        dead = timeout > 0 and self.learner_seen_at is not None and now - self.learner_seen_at > timeout
        if dead and not self.learner_dead:
            self.out.warning(f"no learner_status/policy_weights/learner_ack for {timeout} s: sending safe commands "
                             "until the learner is back")
        self.learner_dead = dead
        return dead

    def on_status(self, now: float, learner_id: str = "") -> None:
        self.heartbeat(now)

    def on_ack(self, frame_id: str, stamp_ns: int, weights_version: int, now: float, learner_id: str = "") -> None:
        self.heartbeat(now)
        if self.learner_id is not None and learner_id != self.learner_id:
            self.n.acks_ignored += 1   # another learner's (or a stranger's) ack: not our handshake
            return
        if not self.gate.ack(frame_id, stamp_ns, weights_version):
            self.n.acks_ignored += 1
            return
        self.n.acks_matched += 1
        self._try_release()

    def _try_release(self) -> None:
        if not self.active:
            return
        step = self.gate.release(self.seen_version)
        if step is not None:
            self._act(step)

    def on_weights(self, version: int, layout_json: Any, data: Any, now: float, *, preset: str = "",
                   learner_id: str = "") -> bool:
        """New weights from a learner (topic or in-process). Returns True if loaded."""
        self.heartbeat(now)
        if self.config is None:
            return False    # unconfigured (the latched message is delivered again after configure)
        if self.settings.deploy or (self.policy is not None and not hasattr(self.policy, "load_flat")):
            self.n.weights_ignored += 1   # an exported policy file is fixed: deploy has no learner
            if self.n.weights_ignored == 1:
                self.out.warning("policy_weights ignored: this actor runs a fixed policy file (deploy)")
            return False
        if learner_id != self.learner_id:
            # versions compare within one learner's run only: a restarted (or resumed) learner counts from its own
            # checkpoint, and a stranger's huge version must not freeze the policy for the real one
            if self.learner_id is not None:
                self.n.learner_changes += 1
                self.out.info(f"weights from a new learner identity '{learner_id}' (was '{self.learner_id}'): "
                              f"accepting its versions from {version}")
            self.learner_id = learner_id
            self.weights_version = self.seen_version = -1
            self.gate.need_version = None
        if version <= self.weights_version:
            self.n.weights_ignored += 1
            return False
        try:
            policy = self.policy
            if policy is None:
                policy = self._policy_from_layout(layout_json, preset)
            policy.load_flat(version, layout_json, data)
            if self.policy is None:
                self._setup_safety(policy.act_dim)
                if self.safety is None:
                    raise ValueError("no safety layer for the policy's joints")
                self._set_policy(policy)
                self.out.info(f"policy from the learner: obs {policy.obs_dim}, act {policy.act_dim}, hidden "
                              f"{policy.hidden}")
        except ValueError as exc:
            self.n.bad_weights += 1
            self.seen_version = max(self.seen_version, version)   # a bad payload must not stall the handshake
            self.out.bad("policy_weights", f"version {version}: {exc}")
            self._try_release()
            return False
        self.weights_version = version
        self.seen_version = max(self.seen_version, version)
        self._try_release()
        return True

    def _policy_from_layout(self, layout_json: Any, preset: str) -> Policy:
        """A fresh policy with the sizes a PolicyWeights layout gives (ValueError if the layout is unusable)."""
        from ..core.policy import ActorPolicy, actor_from_layout   # torch: only where live weights arrive
        cfg = self.config
        actor = actor_from_layout(layout_json, cfg, self.settings.device)
        if cfg.prev_action_in_obs and actor.obs_dim <= actor.act_dim:
            raise ValueError(f"layout obs_dim {actor.obs_dim} cannot hold the previous action (act_dim "
                             f"{actor.act_dim}, prev_action_in_obs is on)")
        s = self.settings
        joints = s.joint_lower or s.safe_command
        if joints and len(joints) != actor.act_dim:
            raise ValueError(f"layout act_dim {actor.act_dim} does not match the {len(joints)} configured joints")
        if preset and preset != cfg.preset:
            self.out.warning(f"policy_weights come from preset '{preset}', this actor runs '{cfg.preset}'")
        return ActorPolicy(actor, seed=int(s.seed), device=s.device)

    # ------------------------------------------------------------------------------------------ protections
    def on_e_stop(self, engaged: bool, now: float) -> None:
        """The e-stop topic/service: True latches it (the safe command at once, then held; nothing stored); False
        on the topic is ignored: only :meth:`clear_e_stop` releases it."""
        self._now = now
        self.n.e_stop_messages += 1
        if engaged and not self.e_stopped:
            self.e_stopped = True
            self.n.e_stops += 1
            self.gate.clear()
            self.out.warning("E-STOP: holding the safe command; call clear_e_stop to release it")
            if self.active:
                self.send_safe("e-stop", at_once=True)

    def clear_e_stop(self, now: float) -> bool:
        """Release a latched e-stop (an explicit call); commanding resumes with a soft start. True if it was set."""
        self._now = now
        if not self.e_stopped:
            return False
        self.e_stopped = False
        self.chain.cut()
        if self.pipeline is not None:
            self.pipeline.reset(now, self.measured)
        self.out.info("e-stop cleared: commanding resumes with a soft start")
        return True

    def on_imu(self, orientation_xyzw: Any, now: float) -> None:
        """Attitude protection: a tilt of the body's up axis beyond ``max_tilt_deg`` sends the safe command (ramp)
        and ends the current episode for the actor (its remaining steps are not acted on)."""
        self._now = now
        limit = self.settings.max_tilt_deg
        if limit <= 0 or not self.active:
            return
        try:
            x, y, z, w = (float(v) for v in orientation_xyzw)
        except (TypeError, ValueError):
            return
        norm = x * x + y * y + z * z + w * w
        if not (math.isfinite(norm) and norm > 1e-12):
            return
        up_z = 1.0 - 2.0 * (x * x + y * y) / norm            # world-z component of the body's z axis
        tilt = math.degrees(math.acos(max(-1.0, min(1.0, up_z))))
        if tilt > limit and self.stopped_episode is None and self.last_key is not None:
            self.stopped_episode = self.last_key[0]
            self.n.attitude_trips += 1
            self.out.warning(f"attitude protection: tilt {tilt:.1f} deg > {limit:g} deg: safe command, episode "
                             f"{self.stopped_episode} over for the actor")
            self.gate.clear()
            self.send_safe("attitude protection")

    def on_joint_positions(self, positions: Any) -> None:
        """The measured joint positions in the actor's (controller) order: where a soft start begins."""
        try:
            p = np.asarray(positions, np.float64).reshape(-1)
        except (TypeError, ValueError):
            return
        if self.safety is not None and p.size == self.safety.size and np.isfinite(p).all():
            self.measured = p

    # ------------------------------------------------------------------------------------------ watchdog
    def on_tick(self, now: float) -> None:
        """The watchdog period (20 Hz). Publishes the safe command on every tick while tripped: no valid env_step
        for obs_timeout_s, or the learner silent for learner_timeout_s.

        Lockstep simulation is the exception: the world is paused until it gets a command, and an unsolicited
        command would be taken by the bridge as the action of its next step. There the watchdog never publishes on
        its own; a held env_step is answered with the safe command if the learner goes silent."""
        self._now = now
        if not self.active:
            return
        self.n.watchdog_ticks += 1
        if self.e_stopped:
            return                       # the safe command was sent when it latched; env steps are answered safely
        sent = self.n.commands_sent
        self._watchdog_tick(now)
        if self.ramp is not None and self.n.commands_sent == sent and not self.ramp.done(now - 1.0 / WATCHDOG_TICK_HZ):
            self.publish(self.safety.clamp(self.ramp(now)), safe=True)   # on the way to the safe pose

    def _watchdog_tick(self, now: float) -> None:
        learner_dead = self.learner_timed_out(now)
        if self.gate.held is not None:
            waited = now - self.gate.held_since
            limit = self.settings.learner_timeout_s if self.settings.learner_timeout_s > 0 else HOLD_LIMIT_S
            if learner_dead or waited > limit:
                # a silent learner, or a handshake that never completes (a lost or forged ack naming weights that
                # never come): stop waiting, answer safely, and act again on the next step
                if not learner_dead:
                    self.n.holds_expired += 1
                    self.out.warning(f"env_step held {waited:.1f} s for learner_ack {self.gate.pending} / weights >= "
                                     f"{self.gate.need_version} (have {self.seen_version}): answering it with the "
                                     "safe command")
                step = self.gate.drop_held()
                self._answer_safe(step.key, "learner silent" if learner_dead else "handshake timed out")
                return
            if waited > HOLD_WARN_S:
                self.out.bad("hold", f"env_step held {now - self.gate.held_since:.1f} s waiting for learner_ack "
                             f"{self.gate.pending} / weights >= {self.gate.need_version} (is the learner in "
                             "lockstep?)")
        if self.lockstep and self.settings.simulation:
            return
        if self.watchdog.expired(now) or learner_dead:
            if not self.tripped:
                self.tripped = True
                self.n.watchdog_trips += 1
                why = "learner silent" if learner_dead else f"no valid env_step for {self.watchdog.age(now):.2f} s"
                if self.between_episodes and not learner_dead:   # expected: the task waits for ~/resume
                    self.out.info("between episodes: holding the safe pose until the next episode starts")
                else:
                    self.out.warning(f"watchdog: {why}: sending the safe command")
            self.gate.clear()
            self.send_safe("watchdog")
        else:
            self.tripped = False


def float_list(value: Any, name: str) -> Optional[list[float]]:
    """A float-list parameter: None/''/[] = not set; else a list of finite floats, or ValueError naming it."""
    import array
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
