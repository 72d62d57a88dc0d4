"""Transition chaining: consecutive steps of one episode become (s, a, r, s', terminated) records.

An env step (episode e, step k) that follows the last step the policy acted on (e, k−1) closes the transition
(x_{k−1}, a_{k−1}, r_k, x_k, terminated_k, truncated_k). Anything else (a new episode, a skipped step, a safe command
in between) starts a new chain: no transition crosses it. With ``prev_action_in_obs`` the policy input x is the
previous action prepended to the observation (zeros at the start of a chain).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.observation import policy_input
from ..core.storage import Transition


@dataclass
class EnvStepInput:
    """One validated env step. obs: (obs_size,) float32 raw observation; x: (obs_dim,) float32 policy input (None
    until the policy is known); t_rx: time.perf_counter() when it arrived (for the command latency)."""
    episode: int
    step: int
    obs: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    x: np.ndarray | None = None
    t_rx: float = 0.0

    @property
    def key(self) -> tuple[int, int]:
        return self.episode, self.step

    @property
    def final(self) -> bool:
        return self.terminated or self.truncated


@dataclass
class Acted:
    """The last step acted on by the policy: its policy input x (obs_dim,) and policy action a (act_dim,)."""
    episode: int
    step: int
    x: np.ndarray
    a: np.ndarray


class TransitionChain:
    """The chain of the current episode. ``prev_action_in_obs`` and ``act_dim`` define the policy input."""

    def __init__(self, prev_action_in_obs: bool = False, act_dim: int | None = None) -> None:
        self.prev_action_in_obs = prev_action_in_obs
        self.act_dim = act_dim
        self.last: Acted | None = None

    def continues(self, step: EnvStepInput) -> bool:
        """True if ``step`` is the one right after the last acted step of the same episode."""
        p = self.last
        return p is not None and p.episode == step.episode and p.step + 1 == step.step

    def policy_input(self, step: EnvStepInput) -> np.ndarray:
        """x for ``step`` (needs ``act_dim`` when the previous action is part of the input)."""
        prev_a = None
        if self.prev_action_in_obs:
            assert self.act_dim is not None
            prev_a = self.last.a if self.continues(step) else np.zeros(self.act_dim, np.float32)
        return policy_input(step.obs, prev_a)

    def close(self, step: EnvStepInput, *, source: str = "", tag=None) -> Transition | None:
        """The transition that ``step`` completes, or None if it does not continue the chain (or has no x)."""
        p = self.last
        if not self.continues(step) or step.x is None:
            return None
        return Transition(p.x, p.a, float(step.reward), step.x, bool(step.terminated), bool(step.truncated),
                          p.episode, p.step, source, tag)

    def acted(self, step: EnvStepInput, a: np.ndarray) -> None:
        assert step.x is not None
        self.last = Acted(step.episode, step.step, step.x, np.asarray(a, dtype=np.float32))

    def cut(self) -> None:
        """No transition crosses this point (episode end, safe command)."""
        self.last = None
