"""The learner's ingest queue and worker thread: whoever delivers transitions (DDS callbacks, a bag reader, a test)
puts them on a queue and never waits for an update; one worker thread takes them off and does the work in units.

A unit of work is done while holding the engine's lock: lockstep, one transition with the G updates it owes; async,
one transition (stored and acknowledged) or one update. Between units the worker serves checkpoint requests and
pause/stop requests, so a checkpoint always sees a consistent learner (a "safe point").
"""
from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .engine import LearnerEngine

WAKE = object()   # queue sentinel: wakes the worker to look at its control flags


class Worker:
    """The worker thread of one engine: ``start``, ``pause``/``resume`` (at a safe point), ``stop`` (after the queue
    is processed)."""

    def __init__(self, engine: "LearnerEngine", *, poll_s: float = 0.1) -> None:
        self.engine = engine
        self.poll_s = float(poll_s)
        self.queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self.control = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._pause_req = self._paused = self._stop_req = self.stopped = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def paused(self) -> bool:
        return self._paused

    def put(self, item: Any) -> None:
        self.queue.put(item)

    def wake(self) -> None:
        self.queue.put(WAKE)
        with self.control:
            self.control.notify_all()   # a paused worker serves checkpoint requests too

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self.running:
            return
        if self.stopped:
            raise RuntimeError("this learner was stopped; build a new one (and load_latest) to continue")
        self._pause_req = self._paused = self._stop_req = False
        self._thread = threading.Thread(target=self._run, name="symphony-learner", daemon=True)
        self._thread.start()

    def pause(self, timeout: Optional[float] = None) -> bool:
        """Stop at the next safe point and stay there; queued transitions wait (and keep arriving). True once
        paused (or when no worker runs)."""
        with self.control:
            self._pause_req = True
        self.queue.put(WAKE)
        with self.control:
            return self.control.wait_for(lambda: self._paused or not self.running, timeout)

    def resume(self) -> None:
        with self.control:
            self._pause_req = False
            self.control.notify_all()

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Process what is already queued, then end the thread. True when it has ended within ``timeout``."""
        with self.control:
            self._stop_req = True
            self.control.notify_all()
        self.queue.put(WAKE)
        if self._thread is not None:
            self._thread.join(timeout)
        self.stopped = not self.running
        return self.stopped

    @property
    def interrupt_requested(self) -> bool:
        return self._pause_req or self._stop_req

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        e = self.engine
        try:
            e.on_worker_start()
            while True:
                e.checkpoints.serve()
                with self.control:
                    stopping = self._stop_req
                    if self._pause_req and not stopping:
                        self._paused = True
                        self.control.notify_all()
                        self.control.wait_for(lambda: not self._pause_req or self._stop_req
                                              or not e.checkpoints.requests.empty())
                        self._paused = False
                        continue   # serve a checkpoint request, or re-check the flags
                if stopping:
                    self._drain()
                    e.checkpoints.serve()
                    return
                if e.mode == "lockstep":
                    self._lockstep_iteration()
                else:
                    self._async_iteration()
                e.tick()
        except BaseException as exc:  # noqa: BLE001 - reported, never silent
            e.worker_failed(exc)
        finally:
            with self.control:
                self._paused = False
                self.control.notify_all()
            e.checkpoints.fail_pending("learner worker is not running")

    def _take(self, timeout: Optional[float]) -> Any:
        try:
            return self.queue.get(timeout=timeout) if timeout else self.queue.get_nowait()
        except queue.Empty:
            return None

    def _lockstep_iteration(self) -> None:
        item = self._take(min(self.poll_s, self.engine.stats_period_s))
        if item is not None and item is not WAKE:
            self.engine.unit(item, lockstep=True)

    def _async_iteration(self) -> None:
        e = self.engine
        ingested = False
        while True:   # store and acknowledge everything queued (cheap), then update
            item = self._take(None)
            if item is None:
                break
            if item is WAKE:
                continue
            e.unit(item, lockstep=False)
            ingested = True
            if self.interrupt_requested:
                return
        if e.async_update():
            return
        if not ingested:   # ahead of the UTD target (or exploring): sleep until a transition arrives
            item = self._take(min(0.005 if e.learning else self.poll_s, e.stats_period_s))
            if item is not None and item is not WAKE:
                e.unit(item, lockstep=False)

    def _drain(self) -> None:
        while True:
            item = self._take(None)
            if item is None:
                return
            if item is not WAKE:
                self.engine.unit(item, lockstep=self.engine.mode == "lockstep")
