"""LearnerNode: the Fading Replay Buffer and Symphony updates behind DDS (thin: conversion and wiring only; the
learning logic is :class:`symphony_ros.learner.LearnerEngine`).

Lifecycle:
  configure   read parameters, build the engine (allocates the buffer on ``device``), resume from the newest good
              checkpoint in ``checkpoint_dir`` (``resume``), create publishers, the transitions subscription and the
              status timer. Transitions that arrive while inactive are queued, never dropped.
  activate    start (or resume) the update worker: it publishes the current weights first (version 0 = untrained
              actor, or the resumed update count); periodic checkpoints start.
  deactivate  pause the worker at a safe point and write a checkpoint.
  cleanup / shutdown / destroy
              drop the subscription, let the worker finish what is queued, write a final checkpoint, release all.

Topics (names and QoS from :mod:`symphony_ros.contract`):
  transitions     (sub) Transition; one that breaks the storage rules (core/storage.py) → counted as rejected,
                  acknowledged stored=false
  policy_weights  (pub, latched) PolicyWeights every ``weights_every`` updates; version = update count
  learner_ack     (pub) LearnerAck per transition, in arrival order. Lockstep: after its G updates and after the
                  weights of those updates were published (K = G); async: as soon as it is stored
  learner_status  (pub) LearnerStatus at ``status_rate_hz``

In-process actors can take the weights directly with :meth:`LearnerNode.set_weights_listener` (no serialisation);
the topic still serves every other actor.
"""
from __future__ import annotations

import functools
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from symphony_ros_interfaces.msg import LearnerAck, LearnerStatus, PolicyWeights, Transition

from .. import contract as C
from ..core.checkpoint import AgentCheckpoints, CheckpointError
from ..core.config import ConfigError, SymphonyConfig, load_preset
from ..learner import MODES, LearnerEngine
from .common import (BadInputCounter, ParamSpec, config_overrides_from_params, config_param_specs,
                     declare_parameters, device_reason, f32_array, log_at, qos_profile, run_node)

WeightsListener = Callable[[int, str, np.ndarray], None]

PARAM_SPECS: list[ParamSpec] = [
    ParamSpec("preset", "s3", "Symphony preset (s3, se, s2, ed, s2_tilde) or a preset YAML path; symphony.<field> "
                              "parameters override single fields"),
    ParamSpec("mode", "lockstep", "lockstep: exactly G updates per transition before it is acknowledged (the "
                                  "paper's UTD, deterministic); async: acknowledge at once and update toward "
                                  "utd_target (real robots)", choices=MODES),
    ParamSpec("device", "auto", "torch device of the replay buffer and the updates: auto (CUDA when available), "
                                "cpu, cuda, cuda:<i>", validate=device_reason),
    ParamSpec("obs_dim", 0, "policy observation size S (required, > 0; includes the previous action when "
                            "prev_action_in_obs)", lo=0, hi=10_000_000),
    ParamSpec("act_dim", 0, "action size d (required, > 0)", lo=0, hi=1_000_000),
    ParamSpec("weights_every", 0, "K: updates between published weight snapshots; 0 = G (the paper's loop)",
              lo=0, hi=1_000_000_000),
    ParamSpec("utd_target", 0.0, "async mode: updates per stored transition to aim for; 0 = G", lo=0.0, hi=1e6),
    ParamSpec("checkpoint_dir", "", "directory of rotating atomic checkpoints; '' = no checkpoints"),
    ParamSpec("checkpoint_every_s", 300.0, "seconds between periodic checkpoints while active; 0 = only on "
                                           "deactivate/shutdown", lo=0.0, hi=1e9),
    ParamSpec("checkpoint_keep", 2, "checkpoints kept in checkpoint_dir (>= 2, so a good one survives a torn "
                                    "newest)", lo=2, hi=1000),
    ParamSpec("resume", True, "continue from the newest good checkpoint in checkpoint_dir on configure"),
    ParamSpec("status_rate_hz", 1.0, "learner_status publish rate in Hz; 0 = off", lo=0.0, hi=100.0),
    ParamSpec("max_steps", 0, "stop storing and updating after this many stored transitions; 0 = unlimited",
              lo=0, hi=10**15),
    ParamSpec("seed", 0, "seed of network initialisation and batch sampling", lo=0, hi=2**31 - 1),
    ParamSpec("expected_actors", 1, "number of actors feeding this learner (informational)", lo=1, hi=100_000),
    ParamSpec("autostart", True, "configure and activate on construction (no lifecycle manager needed)"),
]


class LearnerNode(LifecycleNode):
    """Lifecycle node 'learner'. ``config``: a resolved :class:`SymphonyConfig` handed down by an in-process front-end
    (the preset is then not resolved again); other ``kwargs`` go to the base (``cli_args``, ``namespace``,
    ``context``, ``parameter_overrides``, ...). ``self.learner`` is the :class:`LearnerEngine` while configured."""

    def __init__(self, *, config: Optional[SymphonyConfig] = None, **kwargs: Any) -> None:
        super().__init__("learner", **kwargs)
        self._given_config = config
        self.learner: Optional[LearnerEngine] = None   # everything destroy_node touches exists before parameters
        self._learner_id = ""
        self._manager: Optional[AgentCheckpoints] = None
        self._preset = ""
        self._obs_dim = self._act_dim = 0
        self._sub = self._weights_pub = self._ack_pub = self._status_pub = None
        self._status_timer = self._ckpt_timer = None
        self._listener: Optional[WeightsListener] = None
        self._latest: Optional[tuple[int, str, np.ndarray]] = None
        self._weights_lock = threading.Lock()
        self._pending_save = None
        self._done_handled = False
        self._last_error = ""
        self.startup_error: Optional[str] = None   # set when autostart fails: the process then exits 1
        self._specs = PARAM_SPECS + config_param_specs()
        declare_parameters(self, self._specs)   # invalid values (range/choices) are refused with the reason
        self.declare_parameter("from_bag", Parameter.Type.STRING_ARRAY, ParameterDescriptor(
            description="rosbag2 bags whose transitions are stored at configure (after resume), before live ones: "
                        "bootstrap a robot from its earlier sessions; empty = none", read_only=True))
        self._bad = BadInputCounter(self.get_logger())
        if self.get_parameter("autostart").value:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                self.startup_error = f"autostart: configure failed ({self._last_error})"
            elif self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                self.startup_error = "autostart: activate failed"

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = {s.name: self.get_parameter(s.name).value for s in self._specs}
        log = self.get_logger()
        try:
            if p["obs_dim"] <= 0 or p["act_dim"] <= 0:
                raise ValueError(f"parameters 'obs_dim' ({p['obs_dim']}) and 'act_dim' ({p['act_dim']}) must be "
                                 f"set to the policy's sizes (> 0)")
            cfg = self._given_config or load_preset(p["preset"], config_overrides_from_params(p))
            manager = AgentCheckpoints(p["checkpoint_dir"], keep=p["checkpoint_keep"]) if p["checkpoint_dir"] \
                else None
            if manager is not None and not p["resume"] and manager.paths():
                raise ValueError(f"checkpoint_dir {manager.directory} already holds checkpoints of another run and "
                                 f"resume is false: set resume:=true or choose an empty checkpoint_dir")
            learner = LearnerEngine(p["obs_dim"], p["act_dim"], cfg, mode=p["mode"], device=p["device"],
                                    seed=p["seed"],
                                    weights_every=p["weights_every"], utd_target=p["utd_target"],
                                    max_steps=p["max_steps"], log=log)
            if manager is not None and p["resume"]:
                if learner.load_latest(manager) is None:
                    log.info(f"no checkpoint in {manager.directory}: starting fresh")
            bags = [b for b in (self._string_array("from_bag") or []) if b]
            if bags:
                from ..bags.from_bag import checked_transitions
                n = learner.preload(checked_transitions(bags, learner.rules, learner.preload_rejected))
                log.info(f"stored {n} transitions from {len(bags)} bag(s) before live data "
                         f"({learner.rejected} rejected in total)")
        except (ValueError, ConfigError, CheckpointError, RuntimeError, OSError) as exc:   # also BagError
            self._last_error = str(exc)
            log.error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        learner.on_processed = functools.partial(self._ack, learner)
        learner.on_weights = self._publish_weights
        learner.on_error = lambda exc: log.error(f"learner stopped by an error; deactivate/cleanup to recover: {exc}")
        self.learner, self._manager = learner, manager
        self._learner_id = learner.learner_id
        self._preset, self._obs_dim, self._act_dim = cfg.preset, p["obs_dim"], p["act_dim"]
        self._done_handled = learner.done
        self._weights_pub = self.create_publisher(PolicyWeights, C.POLICY_WEIGHTS.name, qos_profile(C.POLICY_WEIGHTS))
        self._ack_pub = self.create_publisher(LearnerAck, C.LEARNER_ACK.name, qos_profile(C.LEARNER_ACK))
        self._status_pub = self.create_publisher(LearnerStatus, C.LEARNER_STATUS.name, qos_profile(C.LEARNER_STATUS))
        from ..learner.pace import PaceCheck
        self._pace = PaceCheck(learner.utd_target) if p["mode"] == "async" else None
        self._sub = self.create_subscription(Transition, C.TRANSITIONS.name, self._on_transition,
                                             qos_profile(C.TRANSITIONS))
        if p["status_rate_hz"] > 0:
            self._status_timer = self.create_timer(1.0 / p["status_rate_hz"], self._publish_status)
        buf = learner.agent.buffer
        log.info(f"configured: preset {cfg.preset}, {p['mode']}, device {learner.device}, obs {p['obs_dim']}, act "
                 f"{p['act_dim']}, G = {learner.G}, K = {learner.K}"
                 + (f", UTD target {learner.utd_target:g}" if p["mode"] == "async" else "")
                 + f", buffer {buf.capacity} slots ({buf.nbytes() / 2**20:.1f} MiB), expected actors "
                 f"{p['expected_actors']}, checkpoints {manager.directory if manager else 'off'}")
        return TransitionCallbackReturn.SUCCESS

    def _string_array(self, name: str) -> list[str]:
        """A STRING_ARRAY parameter declared without a default: [] while unset."""
        try:
            return list(self.get_parameter(name).value or [])
        except ParameterUninitializedException:
            return []

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.learner is not None
        if self.learner.running:
            self.learner.resume()
        else:
            try:
                self.learner.start()   # publishes the current weights first
            except RuntimeError as exc:
                self.get_logger().error(f"activate failed: {exc}")
                return TransitionCallbackReturn.FAILURE
        every = float(self.get_parameter("checkpoint_every_s").value)
        if self._manager is not None and every > 0:
            self._ckpt_timer = self.create_timer(every, self._periodic_checkpoint)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_entity("_ckpt_timer", self.destroy_timer)
        if self.learner is not None:
            if not self.learner.pause(timeout=120.0):
                self.get_logger().warning("the learner did not reach a safe point within 120 s")
            self._checkpoint("deactivate")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown("cleanup")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown("shutdown")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown("error")
        return TransitionCallbackReturn.SUCCESS

    def shutdown_and_checkpoint(self) -> None:
        """Lifecycle shutdown from whatever state the node is in: the worker finishes what is queued and the final
        checkpoint is written (used by the embedded runner before destroying its nodes)."""
        if self.learner is not None:
            self.trigger_shutdown()

    def destroy_node(self) -> None:
        """Stops the worker and writes the final checkpoint if that has not happened yet (SIGINT/SIGTERM path)."""
        self._teardown("destroy")
        super().destroy_node()

    def _teardown(self, why: str) -> None:
        learner, self.learner = self.learner, None
        if self._sub is not None:   # nothing new arrives; what is queued is still processed below
            try:
                self.destroy_subscription(self._sub)
            except Exception:  # context already shut down (signal): the handle goes with it
                pass
            self._sub = None
        for name in ("_ckpt_timer", "_status_timer"):
            self._destroy_entity(name, self.destroy_timer)
        if learner is not None:
            learner.resume()
            if not learner.stop(timeout=120.0):
                self.get_logger().warning(f"{why}: the learner worker did not finish within 120 s")
            self._checkpoint(why, learner)
        for name in ("_weights_pub", "_ack_pub", "_status_pub"):
            self._destroy_entity(name, self.destroy_publisher)
        self._manager = None
        with self._weights_lock:
            self._latest = None   # a later configure starts from its own (resumed or fresh) weights

    def _destroy_entity(self, name: str, destroy: Callable[[Any], Any]) -> None:
        """Destroy the timer/publisher held in attribute ``name`` (if any) and clear it; never raises."""
        entity = getattr(self, name)
        if entity is not None:
            try:
                destroy(entity)
            except Exception:   # already gone with the context: nothing left to release
                pass
            setattr(self, name, None)

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, why: str, learner: Optional[LearnerEngine] = None) -> Optional[Path]:
        learner = learner or self.learner
        if self._manager is None or learner is None:
            return None
        if learner.error is not None:
            self.get_logger().error(f"{why}: no checkpoint written, the learner stopped with an error "
                                    f"({learner.error}); the previous checkpoint is kept")
            return None
        if not learner.unsaved:   # nothing new since the last checkpoint (or nothing at all)
            return None
        try:
            path = learner.save(self._manager, timeout=600.0)
        except Exception as exc:  # disk full, permissions: say so, keep running
            self.get_logger().error(f"{why}: checkpoint failed: {type(exc).__name__}: {exc}")
            return None
        self.get_logger().info(f"{why}: checkpoint written: {path} ({learner.stored} transitions, "
                               f"{learner.updates} updates)")
        return path

    def _periodic_checkpoint(self) -> None:
        """Timer: the worker writes it at its next safe point; this callback never waits."""
        learner = self.learner
        if learner is None or self._manager is None or not learner.unsaved or learner.error is not None:
            return
        if self._pending_save is not None and not self._pending_save.done.is_set():
            return   # the previous one is still being written
        log = self.get_logger()

        def done(path: Optional[Path], error: Optional[BaseException]) -> None:
            if error is not None:
                log.error(f"periodic checkpoint failed: {type(error).__name__}: {error}")
            else:
                log.info(f"checkpoint written: {path}")

        self._pending_save = learner.request_save(self._manager, done)

    # ------------------------------------------------------------------ weights
    def set_weights_listener(self, fn: Optional[WeightsListener]) -> None:
        """In-process weight sharing: ``fn(version, layout_json, data)`` is called (from the learner's worker thread)
        with every snapshot, before it is published, and at once with the newest one if there is one. ``data`` is a
        float32 (P,) array that the learner never modifies; do not modify it. None removes the listener."""
        with self._weights_lock:
            self._listener = fn
            latest = self._latest
        if fn is not None and latest is not None:
            fn(*latest)

    def _publish_weights(self, version: int, layout: str, data: np.ndarray) -> None:
        with self._weights_lock:
            self._latest = (version, layout, data)
            listener = self._listener
        if listener is not None:
            listener(version, layout, data)
        pub = self._weights_pub
        if pub is None:
            return
        msg = PolicyWeights()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.version = int(version)
        msg.learner_id = self._learner_id
        msg.preset = self._preset
        msg.layout = layout
        msg.data = f32_array(data)
        pub.publish(msg)

    # ------------------------------------------------------------------ transitions and acks
    def _on_transition(self, msg: Transition) -> None:
        learner = self.learner
        if learner is None:
            return
        reason = learner.offer(msg.observation, msg.action, msg.reward, msg.next_observation, msg.terminated,
                               tag=msg.header, truncated=msg.truncated, episode=msg.episode, step=msg.step,
                               source=msg.header.frame_id)
        if reason is not None:
            self._bad("transition", reason)   # counted and acknowledged (stored=false) in order

    def _ack(self, learner: LearnerEngine, header: Any, stored: bool) -> None:
        pub = self._ack_pub
        if pub is None:
            return
        ack = LearnerAck()
        ack.header = header
        ack.transitions_stored = learner.stored
        ack.updates = learner.updates
        ack.weights_version = max(learner.weights_version, 0)
        ack.stored = bool(stored)
        ack.learner_id = learner.learner_id
        pub.publish(ack)

    # ------------------------------------------------------------------ status
    def _publish_status(self) -> None:
        learner, pub = self.learner, self._status_pub
        if learner is None or pub is None:
            return
        s = learner.stats()
        if getattr(self, "_pace", None) is not None:   # async: does the update rate keep up with the robots?
            said = self._pace.sample(time.monotonic(), s.stored, s.updates, s.learning)
            if said is not None:
                log_at(self.get_logger(), "info" if said[0] else "warning", said[1])
        msg = LearnerStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.updates = s.updates
        msg.transitions_received = s.received
        msg.transitions_stored = s.stored
        msg.transitions_rejected = s.rejected
        msg.buffer_fill = s.buffer_fill
        msg.buffer_capacity = s.buffer_capacity
        msg.learning = s.learning
        msg.reward_scale = s.reward_scale
        msg.critic_loss = s.critic_loss
        msg.actor_loss = s.actor_loss
        msg.swaddling_loss = s.swaddling_loss
        msg.sigma_mean = s.sigma_mean
        msg.beta_mean = s.beta_mean
        msg.updates_per_second = float(s.updates_per_second)
        msg.utd = s.utd
        msg.weights_version = s.weights_version
        msg.learner_id = learner.learner_id
        msg.healthy = s.healthy
        msg.updates_skipped = s.updates_skipped
        msg.restores = s.restores
        pub.publish(msg)
        if s.done and not self._done_handled:
            self._done_handled = True
            self.get_logger().info(f"max_steps reached ({s.stored} transitions, {s.updates} updates)")
            self._periodic_checkpoint()


def main(argv: Optional[list[str]] = None) -> int:
    """``ros2 run symphony_ros learner [--ros-args ...]``. SIGINT/SIGTERM (once or repeatedly) end the spin; the worker
    finishes its unit of work and the final checkpoint is written on the way out (destroy_node)."""
    return run_node(LearnerNode, argv, name="learner")


if __name__ == "__main__":
    sys.exit(main())
