"""The learner's storage service: every transition that reaches the learner is counted once as received, then either
stored (by the loop rules, :meth:`SymphonyAgent.observe`) or rejected (counted with its reason, never stored).

What may be stored is decided by :class:`symphony_ros.core.storage.StorageRules` where a transition enters (the
learner node's message conversion, :meth:`LearnerEngine.offer`); this module keeps the books and applies the
learner's own limit, ``max_steps``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..core.agent import SymphonyAgent
from ..core.schedule import StepPlan
from ..core.storage import InvalidTransition, Transition

MAX_REASONS = 32   # distinct rejection reasons kept; later new ones count as "other" (bounded memory)


@dataclass
class Rejected:
    """A transition the caller already found malformed: counted and acknowledged in order, never stored."""
    tag: Any
    reason: str


class TransitionStore:
    """Counters ``received``, ``stored``, ``rejected`` (+ ``rejected_reasons``), the learning start and
    ``max_steps``. Thread-safe counters; :meth:`store` is called by the worker at a safe point."""

    def __init__(self, agent: SymphonyAgent, *, max_steps: int = 0, mode: str = "lockstep",
                 log: Optional[Callable[[str], None]] = None) -> None:
        self.agent = agent
        self.max_steps = int(max_steps)
        self.mode = mode
        self._log = log or (lambda text: None)
        self.lock = threading.Lock()
        self.received = 0
        self.stored = 0
        self.rejected = 0
        self.rejected_reasons: dict[str, int] = {}
        self.learning_start_stored: Optional[int] = None   # stored count when learning began

    # ------------------------------------------------------------------ counting
    def count_received(self) -> None:
        with self.lock:
            self.received += 1

    def count_rejected(self, reason: str) -> None:
        with self.lock:
            self.rejected += 1
            if reason not in self.rejected_reasons and len(self.rejected_reasons) >= MAX_REASONS:
                reason = "other"
            self.rejected_reasons[reason] = self.rejected_reasons.get(reason, 0) + 1

    @property
    def queued(self) -> int:
        """Received but not yet stored or rejected."""
        with self.lock:
            return self.received - self.stored - self.rejected

    @property
    def full(self) -> bool:
        """True once ``max_steps`` transitions are stored (0 = unlimited)."""
        return self.max_steps > 0 and self.stored >= self.max_steps

    @property
    def stored_since_learning(self) -> int:
        """Transitions stored after learning began (the denominator of the UTD)."""
        return 0 if self.learning_start_stored is None else self.stored - self.learning_start_stored

    # ------------------------------------------------------------------ storing
    def store(self, item: Transition | Rejected) -> Optional[StepPlan]:
        """Store one queued item; returns the loop rules' plan, or None if it was rejected (counted)."""
        if isinstance(item, Rejected):
            self.count_rejected(item.reason)
            return None
        if self.full:
            self.count_rejected("max_steps reached")
            return None
        try:
            plan = self.agent.observe(item)
        except InvalidTransition as exc:
            self.count_rejected(str(exc))
            return None
        with self.lock:
            self.stored += 1
        if plan.learning_started:
            self.learning_start_stored = self.stored
            self._log(f"exploration done after {self.stored} transitions: reward scale r_n = "
                      f"{self.agent.buffer.reward_scale:.6g}; learning starts")
        return plan

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        with self.lock:
            return dict(stored=self.stored, rejected=self.rejected, rejected_reasons=dict(self.rejected_reasons),
                        learning_start_stored=self.learning_start_stored)

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        with self.lock:
            self.stored, self.rejected = int(sd["stored"]), int(sd["rejected"])
            self.received = self.stored + self.rejected
            self.rejected_reasons = {str(k): int(v) for k, v in sd["rejected_reasons"].items()}
            start = sd["learning_start_stored"]
            self.learning_start_stored = None if start is None else int(start)
