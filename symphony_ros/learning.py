"""The learner's engine, without ROS: a :class:`SymphonyAgent` fed through a thread-safe queue and trained by a worker
thread, so whoever delivers transitions (DDS callbacks, a bag reader, a test) never waits for an update.

Protocol (ALGORITHM.md §2.9-2.10, the same as :mod:`symphony_ros.trainer`), per transition taken from the queue:

1. if not learning and the buffer holds ``n_exp`` transitions: ``agent.start_learning()`` (freeze r̄ₙ, norm_fill);
2. ``agent.buffer.add(...)``; a ``ValueError`` (wrong size, NaN/Inf) counts the transition as rejected, never stored;
3. ``lockstep``: exactly G = ``config.updates_per_step`` updates once learning (none during exploration), then
   ``on_processed(tag, stored)``; ``async``: ``on_processed`` right after storing, and updates run whenever
   ``updates < utd_target · stored_since_learning`` (the worker sleeps briefly when it is ahead).

Weights: ``on_weights(version, layout_json, data)`` once when the worker starts (version = current update count, 0 for
the untrained actor) and then whenever ``weights_every`` (K, default G) updates have passed since the last one. In
lockstep with K = G that is once per stored transition, after its G updates and before its ``on_processed``, so an
actor that waits for the acknowledgement and for weights at least as new as ``weights_version`` acts exactly like the
paper's single loop; in general the published weights are always fewer than K updates old.

Safe points: the worker holds :attr:`Learner.lock` for one unit of work (lockstep: one transition with its G updates;
async: one transition or one update). Checkpoints are taken between units, either by the worker itself
(:meth:`Learner.request_save`, used by periodic timers so the caller never blocks) or by :meth:`Learner.save`, which
waits for the next safe point.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

from .core.agent import SymphonyAgent, UpdateStats, resolve_device
from .core.checkpoint import CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
from .core.config import SymphonyConfig
from .core.policy import flatten_actor

MODES = ("lockstep", "async")
CHECKPOINT_KIND = "learner"
LEARNER_FORMAT = "symphony_ros.learner/1"

ProcessedCallback = Callable[[Any, bool], None]
WeightsCallback = Callable[[int, str, np.ndarray], None]
SaveTarget = Union[str, Path, CheckpointManager]


@dataclass
class Experience:
    """One transition for the learner. ``obs``/``next_obs``: (obs_dim,), ``action``: (act_dim,) in policy units
    [-a_max, a_max], ``reward``: raw (the buffer divides it by the frozen r̄ₙ), ``terminated``: true terminal only
    (a time limit is not a terminal). ``tag`` is opaque and handed back to ``on_processed`` (the node passes the
    message header)."""
    obs: Any
    action: Any
    reward: float
    next_obs: Any
    terminated: bool
    tag: Any = None


@dataclass
class _Rejected:
    """A transition the caller already found malformed: counted and acknowledged in order, never stored."""
    tag: Any
    reason: str


@dataclass
class _SaveRequest:
    target: SaveTarget
    done: threading.Event = field(default_factory=threading.Event)
    path: Optional[Path] = None
    error: Optional[BaseException] = None
    callback: Optional[Callable[[Optional[Path], Optional[BaseException]], None]] = None


_WAKE = object()   # queue sentinel: wakes the worker to look at its control flags


@dataclass
class LearnerStats:
    """A snapshot of the learner's counters (thread-safe to take at any time; floats are NaN until known).

    received = stored + rejected + queued. ``utd`` = updates / transitions stored since learning began.
    ``updates_per_second`` is an EMA over ~0.25 s windows. Losses, σ and β are those of a recent update (converted
    from device tensors at most every ``stats_period_s``, so the worker is not synchronised after every update)."""
    received: int
    stored: int
    rejected: int
    queued: int
    updates: int
    weights_version: int
    learning: bool
    done: bool
    buffer_fill: int
    buffer_capacity: int
    reward_scale: float
    updates_per_second: float
    utd: float
    critic_loss: float
    actor_loss: float
    swaddling_loss: float
    sigma_mean: float
    beta_mean: float
    q_mean: float
    rejected_reasons: dict[str, int]
    error: Optional[str]


class Learner:
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
        on_processed: ``fn(tag, stored)`` called from the worker thread once per submitted transition, in order.
            The learner's counters read inside it (``stored``, ``updates``, ``weights_version``) are those right after
            that transition (and, in lockstep, its updates).
        on_weights: ``fn(version, layout_json, data)`` called from the worker thread; ``data`` is a fresh float32
            array (P,) the learner never touches again, so it can be shared in-process without a copy.
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
        self.G = int(config.updates_per_step)
        self.K = int(weights_every) if weights_every > 0 else max(1, self.G)
        self.utd_target = float(utd_target) if utd_target > 0 else float(self.G)
        self.max_steps = int(max_steps)
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.agent = SymphonyAgent(obs_dim, act_dim, config, device=self.device, seed=seed)
        self.on_processed = on_processed
        self.on_weights = on_weights
        self.on_error = on_error
        self.stats_period_s = float(stats_period_s)
        self.log = log if log is not None else logging.getLogger(__name__)
        self.lock = threading.RLock()                # held by the worker for one unit of work
        self._count_lock = threading.Lock()          # received/rejected counters (also touched by submit)
        self._ctl = threading.Condition()            # pause/stop handshake
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._saves: "queue.SimpleQueue[_SaveRequest]" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._pause_req = False
        self._paused = False
        self._stop_req = False
        self._stopped = False
        # counters (persisted in checkpoints)
        self.received = 0
        self.stored = 0
        self.rejected = 0
        self.rejected_reasons: dict[str, int] = {}
        self.learning_start_stored: Optional[int] = None   # stored count when learning began
        self.weights_version = -1                          # none published yet
        self.done = self.max_steps > 0 and self.stored >= self.max_steps
        self.error: Optional[str] = None
        # statistics (floats, refreshed by the worker)
        self._last_update: Optional[UpdateStats] = None
        self._losses: dict[str, float] = {}
        self._ups = float("nan")
        self._rate_t = time.monotonic()
        self._rate_u = 0
        self._stats_t = -math.inf
        self._saved_at: Optional[tuple[int, int, int]] = (0, 0, 0)   # nothing to save yet

    # ------------------------------------------------------------------ properties
    @property
    def updates(self) -> int:
        """Gradient updates done (persisted with the agent)."""
        return self.agent.updates

    @property
    def learning(self) -> bool:
        """False during exploration (first ``n_exp`` transitions, no updates)."""
        return self.agent.learning

    @property
    def stored_since_learning(self) -> int:
        """Transitions stored after learning began (the denominator of the UTD)."""
        return 0 if self.learning_start_stored is None else self.stored - self.learning_start_stored

    @property
    def target_updates(self) -> int:
        """Async: updates owed for the n transitions stored since learning began, ceil(utd_target·n). (Lockstep does
        its G updates inside each transition's unit of work, so it is never behind between units.)"""
        return int(math.ceil(self.utd_target * self.stored_since_learning - 1e-9))

    def _caught_up(self) -> bool:
        return self.mode == "lockstep" or not self.learning or self.updates >= self.target_updates

    @property
    def utd(self) -> float:
        """Updates per transition stored since learning began (0 before)."""
        n = self.stored_since_learning
        return self.updates / n if n > 0 else 0.0

    @property
    def sigma_mean(self) -> float:
        """Mean σ of a recent update (NaN before the first)."""
        return self._losses.get("sigma_mean", float("nan"))

    @property
    def beta_mean(self) -> float:
        """Mean β of a recent update (NaN before the first)."""
        return self._losses.get("beta_mean", float("nan"))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def queued(self) -> int:
        """Transitions received but not yet stored or rejected (approximate while the worker runs)."""
        with self._count_lock:
            return self.received - self.stored - self.rejected

    # ------------------------------------------------------------------ ingest (any thread, never blocks)
    def submit(self, transition: Experience) -> None:
        """Queue one transition (validated by the worker: wrong size / NaN → rejected). Never blocks on updates."""
        with self._count_lock:
            self.received += 1
        self._queue.put(transition)

    def reject(self, tag: Any, reason: str) -> None:
        """Count a transition the caller could not even convert; it is acknowledged (stored=False) in order."""
        with self._count_lock:
            self.received += 1
        self._queue.put(_Rejected(tag, reason))

    # ------------------------------------------------------------------ worker control
    def start(self) -> None:
        """Start the worker (publishes the current weights first: version 0 = untrained, or the resumed count)."""
        if self.running:
            return
        if self._stopped:
            raise RuntimeError("this Learner was stopped; build a new one (and load_latest) to continue")
        self._pause_req = self._paused = self._stop_req = False
        self._rate_t, self._rate_u = time.monotonic(), self.updates
        self._thread = threading.Thread(target=self._run, name="symphony-learner", daemon=True)
        self._thread.start()

    def pause(self, timeout: Optional[float] = None) -> bool:
        """Stop at the next safe point (between units of work) and stay there; queued transitions wait (and keep
        arriving). Returns True once paused (or when no worker runs)."""
        with self._ctl:
            self._pause_req = True
        self._queue.put(_WAKE)
        with self._ctl:
            return self._ctl.wait_for(lambda: self._paused or not self.running, timeout)

    def resume(self) -> None:
        """Continue after :meth:`pause`."""
        with self._ctl:
            self._pause_req = False
            self._ctl.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Process what is already queued (lockstep: with its updates; async: store and acknowledge), then end the
        worker. Returns True when it has ended within ``timeout``."""
        with self._ctl:
            self._stop_req = True
            self._ctl.notify_all()
        self._queue.put(_WAKE)
        if self._thread is not None:
            self._thread.join(timeout)
        self._stopped = not self.running
        return self._stopped

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every received transition is stored or rejected and, in async mode, the updates have caught
        up with the UTD target (or ``done``). For tests and tools; returns False on timeout or worker error."""
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

    # ------------------------------------------------------------------ the worker
    def _run(self) -> None:
        try:
            with self.lock:
                self._emit_weights()
            while True:
                self._serve_saves()
                with self._ctl:
                    stopping = self._stop_req
                    if self._pause_req and not stopping:
                        self._paused = True
                        self._ctl.notify_all()
                        self._ctl.wait_for(lambda: not self._pause_req or self._stop_req or not self._saves.empty())
                        self._paused = False
                        continue   # serve a save request, or re-check the flags
                if stopping:
                    self._drain_queue_on_stop()
                    self._serve_saves()
                    return
                if self.mode == "lockstep":
                    self._lockstep_iteration()
                else:
                    self._async_iteration()
                self._tick()
        except BaseException as exc:  # noqa: BLE001 - reported, never silent
            self.error = f"{type(exc).__name__}: {exc}"
            self.log.error(f"learner worker stopped: {self.error}")
            if self.on_error is not None:
                self._safe_call(self.on_error, exc)
        finally:
            with self._ctl:
                self._paused = False
                self._ctl.notify_all()
            while True:   # fail pending save requests instead of leaving their callers waiting
                try:
                    req = self._saves.get_nowait()
                except queue.Empty:
                    break
                req.error = RuntimeError("learner worker is not running")
                req.done.set()

    def _lockstep_iteration(self) -> None:
        try:
            item = self._queue.get(timeout=min(0.1, self.stats_period_s))
        except queue.Empty:
            return
        if item is _WAKE:
            return
        with self.lock:
            self._unit(item, updates=True)

    def _unit(self, item: Any, updates: bool) -> None:
        """One transition: store it; lockstep (``updates``): exactly G updates once learning (0 while exploring);
        then acknowledge it."""
        stored = self._store(item)
        if stored and updates and self.learning:
            for _ in range(self.G):
                self._update()
        self._check_done()
        self._processed(item, stored)

    def _async_iteration(self) -> None:
        ingested = False
        while True:   # store and acknowledge everything queued (cheap), then update
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _WAKE:
                continue
            with self.lock:
                self._unit(item, updates=False)
            ingested = True
            if self._pause_req or self._stop_req:
                return
        with self.lock:
            behind = self.learning and self.updates < self.target_updates
            if behind:
                self._update()
        if not behind and not ingested:
            try:   # ahead of the UTD target (or exploring): sleep until a transition arrives
                item = self._queue.get(timeout=min(0.005 if self.learning else 0.1, self.stats_period_s))
            except queue.Empty:
                return
            if item is not _WAKE:
                with self.lock:
                    self._unit(item, updates=False)

    def _drain_queue_on_stop(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is _WAKE:
                continue
            with self.lock:
                self._unit(item, updates=self.mode == "lockstep")

    # ------------------------------------------------------------------ units of work (called with self.lock)
    def _count_rejected(self, reason: str) -> None:
        with self._count_lock:
            self.rejected += 1
            if reason not in self.rejected_reasons and len(self.rejected_reasons) >= 32:
                reason = "other"   # bounded: a stream of varied malformed messages cannot grow the dict
            self.rejected_reasons[reason] = self.rejected_reasons.get(reason, 0) + 1

    def _store(self, item: Any) -> bool:
        """Store one queued item; False (counted as rejected) if malformed or beyond max_steps."""
        if isinstance(item, _Rejected):
            self._count_rejected(item.reason)
            return False
        if self.done or (self.max_steps > 0 and self.stored >= self.max_steps):
            self._count_rejected("max_steps reached")
            return False
        agent = self.agent
        if not agent.learning and agent.buffer.exploration_done:
            scale = agent.start_learning()
            self.learning_start_stored = self.stored
            self.log.info(f"exploration done after {self.stored} transitions: reward scale r_n = {scale:.6g}; "
                          f"learning starts ({self.mode}, "
                          + (f"G = {self.G}" if self.mode == "lockstep" else f"UTD target {self.utd_target:g}")
                          + f", weights every {self.K} updates)")
        try:
            agent.buffer.add(item.obs, item.action, item.reward, item.next_obs, bool(item.terminated))
        except (ValueError, TypeError) as exc:
            self._count_rejected(str(exc) or type(exc).__name__)
            return False
        with self._count_lock:
            self.stored += 1
        return True

    def preload(self, transitions) -> int:
        """Store transitions from an earlier session (e.g. rosbags) with the same protocol as live ones (exploration,
        norm_fill, rejection of bad rows), without updates and without acknowledgements. Call before :meth:`start`.
        ``transitions`` yields objects with observation/obs, action, reward, next_observation/next_obs, terminated.
        Returns how many were stored."""
        if self.running:
            raise RuntimeError("preload() must run before the worker starts")
        n = 0
        with self.lock:
            for t in transitions:
                item = Experience(getattr(t, "obs", None) if hasattr(t, "obs") else t.observation, t.action,
                                  float(t.reward), getattr(t, "next_obs", None) if hasattr(t, "next_obs")
                                  else t.next_observation, bool(t.terminated))
                with self._count_lock:
                    self.received += 1
                n += int(self._store(item))
        return n

    def _check_done(self) -> None:
        if not self.done and self.max_steps > 0 and self.stored >= self.max_steps and self._caught_up():
            self.done = True
            self.log.info(f"max_steps reached: {self.stored} transitions stored, {self.updates} updates; "
                          f"no more transitions are stored")

    def _update(self) -> None:
        self._last_update = self.agent.update()
        if self.updates - self.weights_version >= self.K:
            self._emit_weights()
        if self.mode == "async":
            self._check_done()

    def _emit_weights(self) -> None:
        self.weights_version = self.updates
        if self.on_weights is not None:
            layout, data = flatten_actor(self.agent.actor)
            self._safe_call(self.on_weights, self.weights_version, layout, data)

    def current_weights(self) -> tuple[int, str, np.ndarray]:
        """(version, layout JSON, float32 data (P,)) of the actor now (taken at a safe point)."""
        with self.lock:
            layout, data = flatten_actor(self.agent.actor)
            return self.updates, layout, data

    def _processed(self, item: Any, stored: bool) -> None:
        if self.on_processed is not None:
            self._safe_call(self.on_processed, item.tag, stored)

    def _safe_call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a callback's failure (e.g. context shut down) must not kill the learner
            self.log.warning(f"learner callback {getattr(fn, '__name__', fn)} failed: {type(exc).__name__}: {exc}")

    def _tick(self) -> None:
        """Every ``stats_period_s``: sample the update rate (EMA) and convert the last UpdateStats to floats."""
        now = time.monotonic()
        first_losses = self._last_update is not None and not self._losses
        if now - self._stats_t < self.stats_period_s and not first_losses:
            return
        dt = now - self._rate_t
        if dt > 0:
            rate = (self.updates - self._rate_u) / dt
            self._ups = rate if not math.isfinite(self._ups) else 0.6 * self._ups + 0.4 * rate
        self._rate_t, self._rate_u, self._stats_t = now, self.updates, now
        last, self._last_update = self._last_update, None
        if last is not None:
            self._losses = last.as_floats()   # the only device synchronisation for statistics

    # ------------------------------------------------------------------ statistics
    def stats(self) -> LearnerStats:
        """Counters and recent losses; safe from any thread (never waits for the worker)."""
        buf = self.agent.buffer
        with self._count_lock:
            received, stored, rejected = self.received, self.stored, self.rejected
            reasons = dict(self.rejected_reasons)
        nan = float("nan")
        L = self._losses
        return LearnerStats(
            received=received, stored=stored, rejected=rejected, queued=received - stored - rejected,
            updates=self.updates, weights_version=max(self.weights_version, 0), learning=self.learning,
            done=self.done, buffer_fill=int(buf.length), buffer_capacity=int(buf.capacity),
            reward_scale=float(buf.reward_scale),
            updates_per_second=self._ups if self.running else 0.0,
            utd=self.utd,
            critic_loss=L.get("critic_loss", nan), actor_loss=L.get("actor_loss", nan),
            swaddling_loss=L.get("swaddling_loss", nan), sigma_mean=L.get("sigma_mean", nan),
            beta_mean=L.get("beta_mean", nan), q_mean=L.get("q_mean", nan), rejected_reasons=reasons,
            error=self.error)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint payload (kind 'learner'): agent state with the replay buffer, plus learner counters.
        Call at a safe point (hold :attr:`lock`)."""
        with self._count_lock:
            counters = dict(stored=self.stored, rejected=self.rejected, rejected_reasons=dict(self.rejected_reasons))
        return dict(kind=CHECKPOINT_KIND, agent=self.agent.state_dict(),
                    learner=dict(format=LEARNER_FORMAT, mode=self.mode, seed=self.seed,
                                 learning_start_stored=self.learning_start_stored,
                                 weights_version=self.weights_version, utd_target=self.utd_target,
                                 weights_every=self.K, max_steps=self.max_steps, **counters))

    def _progress(self) -> tuple[int, int, int]:
        return self.stored, self.rejected, self.updates

    @property
    def unsaved(self) -> bool:
        """True if anything was stored, rejected or updated since the last checkpoint written or loaded."""
        return self._saved_at != self._progress()

    def _write(self, target: SaveTarget) -> Path:
        payload = self.state_dict()
        progress = self._progress()
        if isinstance(target, CheckpointManager):
            path = target.save(self.stored, payload)
        else:
            path = save_checkpoint(target, payload)
        self._saved_at = progress
        return path

    def save(self, target: SaveTarget, timeout: Optional[float] = None) -> Path:
        """Write a checkpoint atomically at a safe point: into a :class:`CheckpointManager` (file named by the
        stored-transition count, rotated) or to a file path. If the worker is running, it writes the checkpoint
        itself between two units of work and this call waits for it; otherwise it is written here."""
        if self.running and not self._paused:
            req = self.request_save(target)
            if not req.done.wait(timeout):
                raise TimeoutError("the learner did not reach a safe point in time for the checkpoint")
            if req.error is not None:
                if isinstance(req.error, RuntimeError) and not self.running:
                    with self.lock:
                        return self._write(target)
                raise req.error
            assert req.path is not None
            return req.path
        with self.lock:
            return self._write(target)

    def request_save(self, target: SaveTarget,
                     callback: Optional[Callable[[Optional[Path], Optional[BaseException]], None]] = None
                     ) -> _SaveRequest:
        """Ask the worker to checkpoint at its next safe point; returns at once. ``callback(path, error)`` is called
        from the worker thread afterwards."""
        req = _SaveRequest(target, callback=callback)
        self._saves.put(req)
        self._queue.put(_WAKE)
        with self._ctl:
            self._ctl.notify_all()   # a paused worker serves it too
        return req

    def _serve_saves(self) -> None:
        while True:
            try:
                req = self._saves.get_nowait()
            except queue.Empty:
                return
            try:
                with self.lock:
                    req.path = self._write(req.target)
            except Exception as exc:  # reported to the requester; training goes on
                req.error = exc
            req.done.set()
            if req.callback is not None:
                self._safe_call(req.callback, req.path, req.error)

    def _validate(self, payload: dict[str, Any]) -> None:
        """Raise ValueError if a checkpoint does not fit this learner (sizes, networks, buffer)."""
        if payload.get("kind") != CHECKPOINT_KIND or payload.get("learner", {}).get("format") != LEARNER_FORMAT:
            raise ValueError("not a symphony_ros learner checkpoint")
        sd = payload["agent"]
        a = self.agent
        if (sd["obs_dim"], sd["act_dim"]) != (a.obs_dim, a.act_dim):
            raise ValueError(f"its sizes (obs {sd['obs_dim']}, act {sd['act_dim']}) differ from the configured "
                             f"(obs {a.obs_dim}, act {a.act_dim})")
        cfg = sd["config"]
        for key in ("hidden_dim", "heads_per_critic", "n_critics", "n_exp", "buffer_times", "buffer_dtype"):
            if cfg[key] != getattr(self.config, key):
                raise ValueError(f"its '{key}' = {cfg[key]} differs from the configured {getattr(self.config, key)}")

    def load(self, path: Union[str, Path]) -> None:
        """Resume from one learner checkpoint file (worker not running). CheckpointError if unusable."""
        payload = load_checkpoint(path, kind=CHECKPOINT_KIND)
        try:
            self._validate(payload)
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
        self._apply(Path(path), payload)

    def load_latest(self, directory: Union[str, Path, CheckpointManager]) -> Optional[Path]:
        """Resume from the newest usable checkpoint in ``directory`` (a corrupt or incompatible newer one is logged
        and the previous one used). Returns its path, or None if there is none. CheckpointError if none is usable."""
        if self.running:
            raise RuntimeError("load_latest needs the worker stopped (call it before start())")
        manager = directory if isinstance(directory, CheckpointManager) else CheckpointManager(directory)
        found = manager.load_latest(kind=CHECKPOINT_KIND, validate=self._validate)
        if found is None:
            return None
        self._apply(*found)
        return found[0]

    def _apply(self, path: Path, payload: dict[str, Any]) -> None:
        with self.lock:
            try:
                self.agent.load_state_dict(payload["agent"])
                lr = payload["learner"]
                with self._count_lock:
                    self.stored, self.rejected = int(lr["stored"]), int(lr["rejected"])
                    self.received = self.stored + self.rejected
                    self.rejected_reasons = {str(k): int(v) for k, v in lr["rejected_reasons"].items()}
                start = lr["learning_start_stored"]
                self.learning_start_stored = None if start is None else int(start)
                self.weights_version = int(lr["weights_version"])
            except (ValueError, KeyError, RuntimeError, TypeError) as exc:
                raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
            self.done = False
            self._check_done()
            self._rate_u = self.updates
            self._saved_at = self._progress()
        self.log.info(f"resumed from {path}: {self.stored} transitions stored, {self.updates} updates, "
                      f"buffer {self.agent.buffer.length}/{self.agent.buffer.capacity}"
                      + ("" if self.learning else " (still exploring)"))
