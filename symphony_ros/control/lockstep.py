"""The lockstep gate: in lockstep mode an actor acts on its next env step only after the learner has acknowledged the
previous transition and the actor holds weights at least as new as the acknowledged version (docs: the paper's single
loop across processes).

Every transition an actor sends has a unique header (frame_id = robot id, stamp = strictly increasing ns). The env
step that produced the transition's s' is *held*; an ack with exactly that header (and the same learner identity)
names the weights version the actor must reach; then the newest held step is released.
"""
from __future__ import annotations

from typing import Any


class LockstepGate:
    """State of one actor's handshake. Times are monotonic seconds supplied by the caller."""

    def __init__(self) -> None:
        self.pending: tuple[str, int] | None = None    # header (frame_id, stamp ns) of the un-acked transition
        self.need_version: int | None = None           # ack'ed weights version the actor must reach
        self.held: Any = None                          # the env step waiting to be acted on
        self.held_since = 0.0

    def clear(self) -> None:
        self.pending = self.need_version = self.held = None

    @property
    def waiting(self) -> bool:
        """True while a transition is un-acked (a new env step must be held)."""
        return self.pending is not None

    def sent(self, frame_id: str, stamp_ns: int) -> None:
        """A transition with this header was sent: wait for its ack."""
        self.pending = (frame_id, int(stamp_ns))
        self.need_version = None

    def hold(self, step: Any, now: float) -> None:
        if self.held is None:
            self.held_since = now
        self.held = step

    def ack(self, frame_id: str, stamp_ns: int, weights_version: int) -> bool:
        """An ack arrived; True if it is the one awaited (then the needed weights version is recorded)."""
        if self.pending is None or (frame_id, int(stamp_ns)) != self.pending:
            return False
        self.pending = None
        self.need_version = int(weights_version)
        return True

    def release(self, weights_seen: int) -> Any:
        """The held step if it may be acted on now (acked, and weights at least the ack'ed version), else None."""
        if self.held is None or self.pending is not None:
            return None
        if self.need_version is not None and weights_seen < self.need_version:
            return None
        step, self.held, self.need_version = self.held, None, None
        return step

    def drop_held(self) -> Any:
        """Forget the handshake and return the held step (to be answered safely), if any."""
        step = self.held
        self.clear()
        return step
