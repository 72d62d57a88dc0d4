"""The actor's safety layer, pure numpy (no rclpy, no torch): every command that leaves the actor passes here.

Shapes: n = number of actuated joints (= the policy's act_dim). Units: joint commands are in the robot's command
units (whatever its controller takes: rad, N·m, or MuJoCo ctrl units); policy actions are in policy units
[−a_max, a_max] (a_max = 1 in every preset).

* :class:`SafetyLayer`: ``clamp(cmd)`` ALWAYS returns n finite float64 values inside [lower, upper], whatever the
  input (NaN/Inf entries → that joint's safe value; wrong size or non-numeric → the full safe command).
* :class:`Watchdog`: "has a fresh observation arrived within ``timeout_s``?" on a monotonic clock (seconds).
* :class:`CommandMapping`: policy action a → joint command, ``paper`` (a as is; MuJoCo's ctrlrange clamping on
  Humanoid ≙ :meth:`SafetyLayer.clamp`) or ``rescale`` (affine [−1, 1] → [lower, upper]).

The gains of the actor head for a step (exploration, the simulation-only zero-policy window) are a loop rule:
:meth:`symphony_ros.core.schedule.TrainingSchedule.execution_gains`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..envs.gym_env import ACTION_MODES, ActionMapping

COMMAND_MODES = ACTION_MODES   # ('paper', 'rescale'): one definition, shared with the sim's action mapping


def _as_vector(values: Any, what: str) -> np.ndarray:
    """A 1-D float64 array of finite values, or ValueError naming ``what``."""
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a list of numbers, got {values!r}") from None
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D list of numbers, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{what} holds NaN/Inf: {v.tolist()}")
    return v


class SafetyLayer:
    """Clamp joint commands into per-joint limits; replace anything non-finite by the safe command.

    lower, upper: (n,) joint limits, finite, lower < upper elementwise.
    safe_command: (n,) the command sent when there is nothing trustworthy to send (bad input, watchdog,
    deactivation); must lie inside [lower, upper].
    """

    def __init__(self, lower: Sequence[float] | np.ndarray, upper: Sequence[float] | np.ndarray,
                 safe_command: Sequence[float] | np.ndarray) -> None:
        lo = _as_vector(lower, "joint_lower")
        hi = _as_vector(upper, "joint_upper")
        safe = _as_vector(safe_command, "safe_command")
        if lo.size != hi.size:
            raise ValueError(f"joint_lower has {lo.size} values but joint_upper has {hi.size}")
        if safe.size != lo.size:
            raise ValueError(f"safe_command has {safe.size} values, the joint limits have {lo.size}")
        bad = np.flatnonzero(~(lo < hi))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"joint {i}: joint_lower ({lo[i]}) must be smaller than joint_upper ({hi[i]})")
        out = np.flatnonzero((safe < lo) | (safe > hi))
        if out.size:
            i = int(out[0])
            raise ValueError(f"joint {i}: safe_command {safe[i]} is outside its limits [{lo[i]}, {hi[i]}]")
        self.lower, self.upper, self._safe = lo, hi, safe
        for a in (self.lower, self.upper, self._safe):
            a.setflags(write=False)

    @property
    def size(self) -> int:
        """n, the number of joints."""
        return int(self.lower.size)

    def safe(self) -> np.ndarray:
        """(n,) float64 copy of the safe command."""
        return self._safe.copy()

    def clamp(self, cmd: Any) -> np.ndarray:
        """(n,) float64, finite, lower ≤ out ≤ upper, for ANY input.

        Non-finite entries become that joint's safe value; a wrong number of values (after flattening) or a
        non-numeric input gives the full safe command. The input is never modified.
        """
        try:
            v = np.array(cmd, dtype=np.float64, copy=True).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            return self.safe()
        if v.size != self.size:
            return self.safe()
        bad = ~np.isfinite(v)
        if bad.any():
            v[bad] = self._safe[bad]
        np.clip(v, self.lower, self.upper, out=v)
        return v

    def check(self, cmd: np.ndarray) -> bool:
        """True if ``cmd`` is exactly what may be published: n finite values inside the limits."""
        v = np.asarray(cmd)
        return v.shape == (self.size,) and bool(np.isfinite(v).all()) and \
            bool(((v >= self.lower) & (v <= self.upper)).all())


def limits_from_params(lower: Sequence[float] | None, upper: Sequence[float] | None,
                       safe_command: Sequence[float] | None, act_dim: int | None
                       ) -> tuple[SafetyLayer | None, bool]:
    """The SafetyLayer the node's parameters describe, and whether the limits are the [−1, 1] default.

    Empty/None ``lower``/``upper`` → [−1, 1]·n in policy units (n from ``act_dim``, else from ``safe_command``);
    empty ``safe_command`` → zeros clipped into the limits. Returns (None, True) while n is still unknown (no limits,
    no safe command, no policy yet). Raises ValueError for inconsistent parameters.
    """
    lower = None if lower is None or len(lower) == 0 else list(lower)
    upper = None if upper is None or len(upper) == 0 else list(upper)
    safe = None if safe_command is None or len(safe_command) == 0 else list(safe_command)
    if (lower is None) != (upper is None):
        raise ValueError("set both joint_lower and joint_upper, or neither")
    n = len(lower) if lower is not None else (len(safe) if safe is not None else act_dim)
    if act_dim is not None and n is not None and n != act_dim:
        raise ValueError(f"the joint parameters describe {n} joints but the policy has act_dim {act_dim}")
    if n is None:
        return None, lower is None
    defaulted = lower is None
    lo = np.full(n, -1.0) if lower is None else _as_vector(lower, "joint_lower")
    hi = np.full(n, 1.0) if upper is None else _as_vector(upper, "joint_upper")
    if safe is None:
        safe_v = np.clip(np.zeros(n), lo, hi) if lo.size == hi.size else np.zeros(n)
    else:
        safe_v = _as_vector(safe, "safe_command")
    return SafetyLayer(lo, hi, safe_v), defaulted


class Watchdog:
    """Trips when no :meth:`feed` happened within ``timeout_s`` seconds (monotonic clock, caller-supplied).

    Never fed (and not armed) counts as expired.
    """

    def __init__(self, timeout_s: float) -> None:
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"watchdog timeout must be a finite number of seconds > 0, got {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self._last: float | None = None

    def feed(self, now: float) -> None:
        """A fresh, valid observation arrived at ``now`` (s)."""
        self._last = float(now)

    def reset(self) -> None:
        """Forget the last feed (expired until the next one)."""
        self._last = None

    def expired(self, now: float) -> bool:
        """True if more than ``timeout_s`` passed since the last feed, or there was none."""
        return self._last is None or now - self._last > self.timeout_s

    def age(self, now: float) -> float:
        """Seconds since the last feed (inf if none)."""
        return math.inf if self._last is None else now - self._last


class CommandMapping(ActionMapping):
    """Policy action a ∈ [−a_max, a_max] (n,) → joint command (n,) in the robot's units, before the safety clamp.

    * ``paper``: the command is a itself; the safety clamp to [lower, upper] then does what MuJoCo's ctrlrange
      clamping does on Humanoid (a_max = 1 against ctrlrange ±0.4, docs/algorithm.md#amplitude-bounds).
    * ``rescale``: lower + (a + 1)/2·(upper − lower), clipped: a = ±1 reaches the joint limits.

    The formula is :class:`symphony_ros.envs.gym_env.ActionMapping`'s (one definition for sim and robot).
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, mode: str = "paper") -> None:
        if mode not in COMMAND_MODES:
            raise ValueError(f"command_mode '{mode}' unknown; choose one of {', '.join(COMMAND_MODES)}")
        super().__init__(lower, upper, mode)
