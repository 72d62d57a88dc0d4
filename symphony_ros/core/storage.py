"""What may enter the Fading Replay Buffer: the :class:`Transition` record and the :class:`StorageRules` that
validate it, once (docs/algorithm.md#storage-rules).

A transition travels from an actor (or a gymnasium loop, or a bag) to the buffer as ONE record type. It is checked
exactly once, where it enters the learning side (the learner node's message conversion, the headless trainer's
loop, the bag reader), by :meth:`StorageRules.check`; everything downstream (:meth:`SymphonyAgent.observe`,
:meth:`FadingReplayBuffer.add`) trusts a :class:`Transition`. A rejected transition raises
:class:`InvalidTransition` with a one-line reason; callers count it and never store it.

The rules: the observation and next observation have ``obs_dim`` values, the action ``act_dim``; every value is a
finite number; the action lies inside the action bounds ``[-a_max, a_max]`` (policy units); observation and reward
magnitudes stay below ``abs_limit`` and what the storage float type can hold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_FLOAT_MAX = {"float32": float(np.finfo(np.float32).max), "float16": float(np.finfo(np.float16).max)}
ACTION_TOLERANCE = 1e-6   # float32 rounding of a_max·tanh(x) may overshoot a_max by one ulp


class InvalidTransition(ValueError):
    """A transition breaks a storage rule; the message is the one-line reason that gets logged and counted."""


@dataclass(frozen=True)
class Transition:
    """One (s, a, r, s', terminated) tuple on its way from an actor to the buffer.

    obs, next_obs: (S,) float32 policy inputs; action: (d,) float32 in policy units [-a_max, a_max] (the action that
    was executed); reward: the raw reward (the buffer divides it by the frozen r̄ₙ); terminated: a true terminal (no
    bootstrapping past it); truncated: a time limit (NOT stored as done). episode, step and source (the robot id)
    are bookkeeping; tag is opaque and handed back to whoever submitted it (the learner node's message header).
    Build it with :meth:`StorageRules.check`.
    """
    obs: np.ndarray
    action: np.ndarray
    reward: float
    next_obs: np.ndarray
    terminated: bool
    truncated: bool = False
    episode: int = 0
    step: int = 0
    source: str = ""
    tag: Any = field(default=None, compare=False)


def _vector(values: Any, size: int | None, what: str) -> np.ndarray:
    try:
        v = np.asarray(values, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise InvalidTransition(f"{what} is not numeric") from None
    if size is not None and v.size != size:
        raise InvalidTransition(f"{what} has {v.size} values, expected {size}")
    if not np.isfinite(v).all():
        raise InvalidTransition(f"{what} holds NaN/Inf")
    return v


@dataclass(frozen=True)
class StorageRules:
    """The storage rules for one learner: sizes (``obs_dim`` S, ``act_dim`` d), action bounds (``a_max``),
    magnitude limit ``abs_limit`` (observations and reward) and the buffer's storage dtype ("float32" or
    "float16", whose largest value also bounds the observations and actions)."""
    obs_dim: int
    act_dim: int
    a_max: float = 1.0
    abs_limit: float = math.inf
    dtype: str = "float32"

    @classmethod
    def from_config(cls, cfg: Any, obs_dim: int, act_dim: int) -> "StorageRules":
        """Rules of a :class:`~symphony_ros.core.config.SymphonyConfig` for a policy of these sizes."""
        return cls(int(obs_dim), int(act_dim), float(cfg.a_max), float(getattr(cfg, "storage_abs_limit", math.inf)),
                   str(cfg.buffer_dtype))

    @property
    def obs_limit(self) -> float:
        """Largest |value| an observation may hold."""
        return min(self.abs_limit, _FLOAT_MAX[self.dtype])

    def check_observation(self, values: Any, what: str = "observation", *, size: int | None | str = "obs_dim"
                          ) -> np.ndarray:
        """(obs_dim,) float32, or InvalidTransition. Also what an actor applies before acting on an observation
        (``size``: the number of values expected, default ``obs_dim``; None = any)."""
        v = _vector(values, self.obs_dim if size == "obs_dim" else size, what)
        big = float(np.abs(v).max()) if v.size else 0.0
        if big > self.obs_limit:
            raise InvalidTransition(f"{what} holds |{big:.3g}| beyond the limit {self.obs_limit:.3g}")
        return v

    def check_action(self, values: Any) -> np.ndarray:
        v = _vector(values, self.act_dim, "action")
        big = float(np.abs(v).max()) if v.size else 0.0
        if big > self.a_max * (1 + ACTION_TOLERANCE):
            raise InvalidTransition(f"action holds |{big:.6g}| outside the action bounds [-{self.a_max:g}, "
                                    f"{self.a_max:g}]")
        return v

    def check_reward(self, value: Any) -> float:
        try:
            r = float(value)
        except (TypeError, ValueError, OverflowError):
            raise InvalidTransition("reward is not numeric") from None
        if not math.isfinite(r):
            raise InvalidTransition("reward is NaN/Inf")
        if abs(r) > self.abs_limit:
            raise InvalidTransition(f"reward {r:.3g} is beyond the limit {self.abs_limit:.3g}")
        return r

    def check(self, obs: Any, action: Any, reward: Any, next_obs: Any, terminated: bool, *,
              truncated: bool = False, episode: int = 0, step: int = 0, source: str = "", tag: Any = None
              ) -> Transition:
        """Validate one transition and return it as a :class:`Transition`; InvalidTransition names the rule broken."""
        return Transition(self.check_observation(obs), self.check_action(action), self.check_reward(reward),
                          self.check_observation(next_obs, "next_observation"), bool(terminated), bool(truncated),
                          int(episode), int(step), str(source), tag)
