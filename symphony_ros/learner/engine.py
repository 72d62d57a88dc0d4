"""LearnerEngine: the learner without ROS. A :class:`SymphonyAgent` fed through a queue and trained by a worker thread
(docs/algorithm.md#training-loop), so whoever delivers transitions never waits for an update.

Per transition taken from the queue (a unit of work, :mod:`.worker`):

1. :class:`.storage.TransitionStore` stores it by the loop rules (``agent.observe``) or counts it as rejected;
2. lockstep: the G updates the loop rules say it owes (:mod:`.updates`), then ``on_processed(tag, stored)``;
   async: ``on_processed`` right after storing, and updates run whenever the learner is behind its UTD target.

Weights: ``on_weights(version, layout_json, data)`` once when the worker starts (version = current update count, 0 for
the untrained actor) and whenever K = ``weights_every`` updates have passed. In lockstep with K = G that is once per
stored transition, after its G updates and before its ``on_processed``, so an actor that waits for the acknowledgement
and for weights at least as new acts exactly like the paper's single loop.

``learner_id`` names this engine's run for the actors (a new id per engine instance: weights and acks of one
learner compare by version only within one id).
"""
from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np
import torch

from ..core.agent import SymphonyAgent
from ..core.device import resolve_device
from ..core.checkpoint import CheckpointManager
from ..core.config import SymphonyConfig
from ..core.storage import InvalidTransition, Transition
from .checkpoints import CheckpointService, SaveCallback, SaveRequest, SaveTarget
from .stats import LearnerStats, RateMeter
from .storage import Rejected, TransitionStore
from .updates import UpdateLoop, WeightsCallback
from .worker import Worker

MODES = ("lockstep", "async")
ProcessedCallback = Callable[[Any, bool], None]


class LearnerEngine:
    """Symphony learner with an ingest queue and a worker thread.

    Args:
        obs_dim, act_dim: policy input (S) and action (d) sizes.
        config: validated :class:`SymphonyConfig` (G = ``updates_per_step``, buffer sizes, networks).
        mode: ``"lockstep"`` (exactly G updates per stored transition before it is acknowledged) or ``"async"``
            (acknowledge on storing; update toward ``utd_target`` updates per stored transition).
        device: ``"auto"`` (CUDA when available) | ``"cpu"`` | ``"cuda[:i]"``; the replay buffer lives there.
        seed: network initialisation and sampling generator.
        weights_every: K, updates between weight snapshots (0 = G; at least 1).
        utd_target: async updates per stored transition (0 = G).
        max_steps: stored transitions after which the learner stops storing and updating (0 = unlimited); later
            transitions are rejected ("max_steps reached") and acknowledged with stored=False.
        on_processed: ``fn(tag, stored)`` from the worker thread once per submitted transition, in order; counters
            read inside it are those right after that transition (and, in lockstep, its updates).
        on_weights: ``fn(version, layout_json, data)`` from the worker thread; ``data`` is a fresh float32 (P,) array
            the learner never touches again.
        on_error: ``fn(exc)`` when the worker dies of an exception (e.g. device out of memory).
        stats_period_s: seconds between conversions of loss tensors to floats and update-rate samples.
        log: a logger with ``info``/``warning``/``error`` taking one preformatted string (logging or rclpy).
    """

    def __init__(self, obs_dim: int, act_dim: int, config: SymphonyConfig, *, mode: str = "lockstep",
                 device: Union[str, torch.device] = "auto", seed: int = 0, weights_every: int = 0,
                 utd_target: float = 0.0, max_steps: int = 0, on_processed: Optional[ProcessedCallback] = None,
                 on_weights: Optional[WeightsCallback] = None,
                 on_error: Optional[Callable[[BaseException], None]] = None, stats_period_s: float = 0.25,
                 log: Any = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode '{mode}' is not one of {', '.join(MODES)}")
        if obs_dim <= 0 or act_dim <= 0:
            raise ValueError(f"obs_dim ({obs_dim}) and act_dim ({act_dim}) must be > 0")
        if not (math.isfinite(utd_target) and utd_target >= 0):
            raise ValueError(f"utd_target must be a finite number >= 0, not {utd_target}")
        if weights_every < 0 or max_steps < 0:
            raise ValueError("weights_every and max_steps must be >= 0")
        self.config = config
        self.mode = mode
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.learner_id = uuid.uuid4().hex[:16]
        self.log = log if log is not None else logging.getLogger(__name__)
        self.agent = SymphonyAgent(obs_dim, act_dim, config, device=self.device, seed=seed)
        self.rules = self.agent.storage_rules
        self.lock = threading.RLock()                 # held by the worker for one unit of work
        self.on_processed = on_processed
        self.on_error = on_error
        self.stats_period_s = float(stats_period_s)
        self.store = TransitionStore(self.agent, max_steps=max_steps, mode=mode, log=self.log.info)
        self.updater = UpdateLoop(self.agent, mode=mode, weights_every=weights_every, utd_target=utd_target,
                                  on_weights=on_weights, safe_call=self.safe_call, warn=self.log.warning)
        self.checkpoints = CheckpointService(self)
        self.worker = Worker(self)
        self.done = self.store.full
        self.error: Optional[str] = None
        self._losses: dict[str, float] = {}
        self._health = (0, 0)                         # (updates skipped, skipped in a row), read at each tick
        self._rate = RateMeter(stats_period_s)
        self._stats_t = -math.inf

    # ------------------------------------------------------------------ properties
    @property
    def on_weights(self) -> Optional[WeightsCallback]:
        return self.updater.on_weights

    @on_weights.setter
    def on_weights(self, fn: Optional[WeightsCallback]) -> None:
        self.updater.on_weights = fn

    G = property(lambda self: self.updater.G, doc="updates per stored transition in lockstep")
    K = property(lambda self: self.updater.K, doc="updates between weight snapshots")
    utd_target = property(lambda self: self.updater.utd_target, doc="async updates per stored transition")
    max_steps = property(lambda self: self.store.max_steps)
    updates = property(lambda self: self.agent.updates, doc="gradient updates done (persisted with the agent)")
    learning = property(lambda self: self.agent.learning, doc="False during exploration (no updates)")
    received = property(lambda self: self.store.received)
    stored = property(lambda self: self.store.stored)
    rejected = property(lambda self: self.store.rejected)
    rejected_reasons = property(lambda self: self.store.rejected_reasons)
    learning_start_stored = property(lambda self: self.store.learning_start_stored)
    stored_since_learning = property(lambda self: self.store.stored_since_learning)
    weights_version = property(lambda self: self.updater.weights_version)
    queued = property(lambda self: self.store.queued, doc="received, not yet stored or rejected")
    running = property(lambda self: self.worker.running)
    paused = property(lambda self: self.worker.paused)
    unsaved = property(lambda self: self.checkpoints.unsaved)

    @property
    def utd(self) -> float:
        """Updates per transition stored since learning began (0 before)."""
        n = self.stored_since_learning
        return self.updates / n if n > 0 else 0.0

    @property
    def sigma_mean(self) -> float:
        return self._losses.get("sigma_mean", float("nan"))

    @property
    def beta_mean(self) -> float:
        return self._losses.get("beta_mean", float("nan"))

    def _caught_up(self) -> bool:
        return self.mode == "lockstep" or not self.learning or self.updater.owed(self.stored_since_learning) <= 0

    # ------------------------------------------------------------------ ingest (any thread, never blocks)
    def submit(self, transition: Transition) -> None:
        """Queue one transition that passed the storage rules. Never blocks on updates."""
        self.store.count_received()
        self.worker.put(transition)

    def reject(self, tag: Any, reason: str) -> None:
        """Count a transition the caller found malformed; it is acknowledged (stored=False) in order."""
        self.store.count_received()
        self.worker.put(Rejected(tag, reason))

    def offer(self, obs: Any, action: Any, reward: Any, next_obs: Any, terminated: bool, *, tag: Any = None,
              **bookkeeping: Any) -> Optional[str]:
        """Check one raw transition with the storage rules (core/storage.py) and submit it, or reject it. Returns
        None if it was accepted for storage, else the reason it was rejected."""
        try:
            t = self.rules.check(obs, action, reward, next_obs, terminated, tag=tag, **bookkeeping)
        except InvalidTransition as exc:
            self.reject(tag, str(exc))
            return str(exc)
        self.submit(t)
        return None

    def preload(self, transitions: Iterable[Transition]) -> int:
        """Store transitions from an earlier session (e.g. rosbags, already checked by the storage rules) by the
        same loop rules as live ones, without updates and without acknowledgements. Call before :meth:`start`.
        Returns how many were stored."""
        if self.running:
            raise RuntimeError("preload() must run before the worker starts")
        n = 0
        with self.lock:
            for t in transitions:
                self.store.count_received()
                n += int(self.store.store(t) is not None)
            self._check_done()
        return n

    def preload_rejected(self, reason: str) -> None:
        """Count a preloaded transition that broke the storage rules (received and rejected, never stored)."""
        self.store.count_received()
        self.store.count_rejected(reason)

    # ------------------------------------------------------------------ worker control
    def start(self) -> None:
        """Start the worker (publishes the current weights first: version 0 = untrained, or the resumed count)."""
        self._rate.restart(self.updates)
        self.worker.start()

    def pause(self, timeout: Optional[float] = None) -> bool:
        return self.worker.pause(timeout)

    def resume(self) -> None:
        self.worker.resume()

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Process what is queued (lockstep: with its updates), then end the worker. True once it has ended."""
        return self.worker.stop(timeout)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every received transition is stored or rejected and, in async mode, the updates have caught
        up with the UTD target (or ``done``). For tests and tools; False on timeout or worker error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                return False
            with self.lock:
                idle = self.queued == 0 and (self.done or self._caught_up())
            if idle:
                return True
            time.sleep(0.002)
        return False

    # ------------------------------------------------------------------ units of work (worker thread)
    def on_worker_start(self) -> None:
        with self.lock:
            self.updater.emit_weights()

    def unit(self, item: Transition | Rejected, *, lockstep: bool) -> None:
        """One transition: store it; lockstep: the updates it owes; then acknowledge it."""
        with self.lock:
            plan = self.store.store(item)
            if plan is not None and lockstep:
                self.updater.run(plan.updates)
            self._check_done()
            if self.on_processed is not None:
                self.safe_call(self.on_processed, item.tag, plan is not None)

    def async_update(self) -> bool:
        """Async: one update if behind the UTD target. True if one ran."""
        with self.lock:
            if self.done or not self.learning or self.updater.owed(self.stored_since_learning) <= 0:
                return False
            self.updater.run(1)
            self._check_done()
            return True

    def _check_done(self) -> None:
        if not self.done and self.store.full and self._caught_up():
            self.done = True
            self.log.info(f"max_steps reached: {self.stored} transitions stored, {self.updates} updates; "
                          f"no more transitions are stored")

    def worker_failed(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.log.error(f"learner worker stopped: {self.error}")
        if self.on_error is not None:
            self.safe_call(self.on_error, exc)

    def safe_call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a callback's failure (e.g. context shut down) must not kill the learner
            self.log.warning(f"learner callback {getattr(fn, '__name__', fn)} failed: {type(exc).__name__}: {exc}")

    def tick(self) -> None:
        """Every ``stats_period_s``: sample the update rate and convert the last UpdateStats to floats."""
        now = time.monotonic()
        last = self.updater.last
        first_losses = last is not None and not self._losses
        if now - self._stats_t < self.stats_period_s and not first_losses:
            return
        self._rate.sample(self.updates, now)
        self._stats_t = now
        if last is not None:
            self.updater.last = None
            self._losses = last.as_floats()   # the only device synchronisations for statistics
            self._health = self.agent.health()

    def current_weights(self) -> tuple[int, str, np.ndarray]:
        """(version, layout JSON, float32 data (P,)) of the actor now (taken at a safe point)."""
        with self.lock:
            return self.updater.current_weights()

    # ------------------------------------------------------------------ statistics
    def stats(self) -> LearnerStats:
        """Counters and recent losses; safe from any thread (never waits for the worker)."""
        buf = self.agent.buffer
        st = self.store
        with st.lock:
            received, stored, rejected = st.received, st.stored, st.rejected
            reasons = dict(st.rejected_reasons)
        nan = float("nan")
        L = self._losses
        return LearnerStats(
            received=received, stored=stored, rejected=rejected, queued=received - stored - rejected,
            updates=self.updates, weights_version=max(self.weights_version, 0), learning=self.learning,
            done=self.done, buffer_fill=int(buf.length), buffer_capacity=int(buf.capacity),
            reward_scale=float(buf.reward_scale), updates_per_second=self._rate.value if self.running else 0.0,
            utd=self.utd, critic_loss=L.get("critic_loss", nan), actor_loss=L.get("actor_loss", nan),
            swaddling_loss=L.get("swaddling_loss", nan), sigma_mean=L.get("sigma_mean", nan),
            beta_mean=L.get("beta_mean", nan), q_mean=L.get("q_mean", nan), rejected_reasons=reasons,
            error=self.error, healthy=self._health[1] == 0 and self.error is None,
            updates_skipped=self._health[0], restores=self.agent.restores,
            weights_withheld=self.updater.withheld)

    # ------------------------------------------------------------------ checkpoints
    def save(self, target: SaveTarget, timeout: Optional[float] = None) -> Path:
        """Write a checkpoint atomically at a safe point: into a :class:`CheckpointManager` (file named by the
        stored-transition count, rotated) or to a file path. A running worker writes it between two units of work
        and this call waits; otherwise it is written here."""
        if self.running and not self.paused:
            req = self.request_save(target)
            if not req.done.wait(timeout):
                raise TimeoutError("the learner did not reach a safe point in time for the checkpoint")
            if req.error is not None:
                if isinstance(req.error, RuntimeError) and not self.running:
                    with self.lock:
                        return self.checkpoints.write(target)
                raise req.error
            assert req.path is not None
            return req.path
        with self.lock:
            return self.checkpoints.write(target)

    def request_save(self, target: SaveTarget, callback: Optional[SaveCallback] = None) -> SaveRequest:
        """Ask the worker to checkpoint at its next safe point; returns at once. ``callback(path, error)`` runs in
        the worker thread afterwards."""
        req = self.checkpoints.request(target, callback)
        self.worker.wake()
        return req

    def load(self, path: Union[str, Path]) -> None:
        """Resume from one learner checkpoint file (worker not running). CheckpointError if unusable."""
        self.checkpoints.load(path)

    def load_latest(self, directory: Union[str, Path, CheckpointManager]) -> Optional[Path]:
        """Resume from the newest usable checkpoint in ``directory`` (a corrupt or incompatible newer one is logged
        and the previous one used). Returns its path, or None if there is none. CheckpointError if none is usable."""
        if self.running:
            raise RuntimeError("load_latest needs the worker stopped (call it before start())")
        return self.checkpoints.load_latest(directory)

    def resumed_from(self, path: Path) -> None:
        """Bookkeeping after a checkpoint was applied (called by the checkpoint service, lock held)."""
        self.done = False
        self._check_done()
        self._rate.restart(self.updates)
        self.log.info(f"resumed from {path}: {self.stored} transitions stored, {self.updates} updates, "
                      f"buffer {self.agent.buffer.length}/{self.agent.buffer.capacity}"
                      + ("" if self.learning else " (still exploring)"))
