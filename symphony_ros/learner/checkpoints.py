"""The learner's checkpoint service: what a learner checkpoint holds, writing it at a safe point (asked for by any
thread, served by the worker between two units of work), and resuming from the newest usable one."""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ..core.checkpoint import AgentCheckpoints, CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint

if TYPE_CHECKING:
    from .engine import LearnerEngine

CHECKPOINT_KIND = "learner"
LEARNER_FORMAT = "symphony_ros.learner/1"
SaveTarget = Union[str, Path, CheckpointManager]
SaveCallback = Callable[[Optional[Path], Optional[BaseException]], None]


@dataclass
class SaveRequest:
    target: SaveTarget
    done: threading.Event = field(default_factory=threading.Event)
    path: Optional[Path] = None
    error: Optional[BaseException] = None
    callback: Optional[SaveCallback] = None


class CheckpointService:
    """Checkpoints of one :class:`~symphony_ros.learner.engine.LearnerEngine`."""

    def __init__(self, engine: "LearnerEngine") -> None:
        self.engine = engine
        self.requests: "queue.SimpleQueue[SaveRequest]" = queue.SimpleQueue()
        self._saved_at: tuple[int, int, int] = (0, 0, 0)   # (stored, rejected, updates) of the last save/load
        self.last_save: dict[str, Any] = {}                # seconds and bytes of the last incremental save

    # ------------------------------------------------------------------ payload
    def _progress(self) -> tuple[int, int, int]:
        e = self.engine
        return e.stored, e.rejected, e.updates

    @property
    def unsaved(self) -> bool:
        """True if anything was stored, rejected or updated since the last checkpoint written or loaded."""
        return self._saved_at != self._progress()

    def payload(self, *, include_buffer: bool = True) -> dict[str, Any]:
        """The checkpoint (kind 'learner'): agent state (with the whole replay buffer unless the buffer is saved
        incrementally beside it), plus the learner's counters. Call at a safe point (holding the engine's lock)."""
        e = self.engine
        return dict(kind=CHECKPOINT_KIND, agent=e.agent.state_dict(include_buffer=include_buffer),
                    learner=dict(format=LEARNER_FORMAT, mode=e.mode, seed=e.seed,
                                 weights_version=e.updater.weights_version, utd_target=e.updater.utd_target,
                                 weights_every=e.updater.K, max_steps=e.store.max_steps, **e.store.state_dict()))

    def write(self, target: SaveTarget) -> Path:
        """Write now (the caller holds the engine's lock). Into :class:`AgentCheckpoints`: the buffer incrementally
        (only what changed since the last save); into a plain manager or a file: everything in one file."""
        progress = self._progress()
        if not self.engine.agent.finite_parameters():
            raise CheckpointError("the learner's parameters are not finite: no checkpoint written (the previous one "
                                  "is kept; the update guard restores the last good state)")
        if isinstance(target, AgentCheckpoints):
            path = target.save_agent(self.engine.stored, self.payload(include_buffer=False), self.engine.agent.buffer)
            self.last_save = dict(target.last_save)
        elif isinstance(target, CheckpointManager):
            path = target.save(self.engine.stored, self.payload())
        else:
            path = save_checkpoint(target, self.payload())
        self._saved_at = progress
        return path

    # ------------------------------------------------------------------ requests served at safe points
    def request(self, target: SaveTarget, callback: Optional[SaveCallback] = None) -> SaveRequest:
        req = SaveRequest(target, callback=callback)
        self.requests.put(req)
        return req

    def serve(self) -> None:
        """Write every pending request (called by the worker between units of work)."""
        while True:
            try:
                req = self.requests.get_nowait()
            except queue.Empty:
                return
            try:
                with self.engine.lock:
                    req.path = self.write(req.target)
            except Exception as exc:  # reported to the requester; training goes on
                req.error = exc
            req.done.set()
            if req.callback is not None:
                self.engine.safe_call(req.callback, req.path, req.error)

    def fail_pending(self, why: str) -> None:
        while True:
            try:
                req = self.requests.get_nowait()
            except queue.Empty:
                return
            req.error = RuntimeError(why)
            req.done.set()

    # ------------------------------------------------------------------ resuming
    def validate(self, payload: dict[str, Any]) -> None:
        """Raise ValueError if a checkpoint does not fit this learner (sizes, networks, buffer)."""
        if payload.get("kind") != CHECKPOINT_KIND or payload.get("learner", {}).get("format") != LEARNER_FORMAT:
            raise ValueError("not a symphony_ros learner checkpoint")
        sd = payload["agent"]
        a, cfg = self.engine.agent, self.engine.config
        if (sd["obs_dim"], sd["act_dim"]) != (a.obs_dim, a.act_dim):
            raise ValueError(f"its sizes (obs {sd['obs_dim']}, act {sd['act_dim']}) differ from the configured "
                             f"(obs {a.obs_dim}, act {a.act_dim})")
        saved = sd["config"]
        for key in ("hidden_dim", "heads_per_critic", "n_critics", "n_exp", "buffer_times", "buffer_dtype"):
            if saved[key] != getattr(cfg, key):
                raise ValueError(f"its '{key}' = {saved[key]} differs from the configured {getattr(cfg, key)}")

    def load(self, path: Union[str, Path]) -> Path:
        payload = load_checkpoint(path, kind=CHECKPOINT_KIND)
        try:
            self.validate(payload)
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
        self.apply(Path(path), payload)
        return Path(path)

    def load_latest(self, directory: Union[str, Path, CheckpointManager]) -> Optional[Path]:
        manager = directory if isinstance(directory, AgentCheckpoints) else AgentCheckpoints(
            directory.directory if isinstance(directory, CheckpointManager) else directory)
        found = manager.load_agent_latest(kind=CHECKPOINT_KIND, validate=self.validate, apply=self.apply,
                                          buffer=self.engine.agent.buffer)
        return None if found is None else found[0]

    def apply(self, path: Path, payload: dict[str, Any]) -> None:
        e = self.engine
        with e.lock:
            try:
                e.agent.load_state_dict(payload["agent"], load_buffer=payload["agent"].get("buffer") is not None)
                lr = payload["learner"]
                e.store.load_state_dict(lr)
                e.updater.weights_version = int(lr["weights_version"])
            except (ValueError, KeyError, RuntimeError, TypeError) as exc:
                raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
            e.resumed_from(path)
            self._saved_at = self._progress()
