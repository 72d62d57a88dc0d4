"""gymnasium environments for the headless trainer and the sim bridge: creation, action mapping, evaluation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

ACTION_MODES = ("paper", "rescale")


def make_env(env_id: str, *, episode_limit: int | None = None, seed: int | None = None, **kwargs):
    """gymnasium.make with an explicit TimeLimit; raises ValueError for a non-continuous action space."""
    import gymnasium as gym
    try:
        env = gym.make(env_id, max_episode_steps=episode_limit, **kwargs)
    except gym.error.Error as exc:
        raise ValueError(f"cannot create environment '{env_id}': {exc}") from None
    if not isinstance(env.action_space, gym.spaces.Box) or len(env.action_space.shape) != 1:
        raise ValueError(f"environment '{env_id}' needs a 1-D continuous (Box) action space, has {env.action_space}")
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise ValueError(f"environment '{env_id}' needs a Box observation space, has {env.observation_space}")
    if seed is not None:
        env.action_space.seed(seed)
    return env


class ActionMapping:
    """Policy actions a ∈ [−a_max, a_max] → environment commands.

    * ``paper``: passed unchanged (the authors' protocol: a_max = 1 on Humanoid, whose ±0.4 ctrlrange MuJoCo clamps);
    * ``rescale``: affine map of [−1, 1] onto the Box bounds [low, high], then clipped to them.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, mode: str = "paper") -> None:
        if mode not in ACTION_MODES:
            raise ValueError(f"action mode '{mode}' unknown; choose one of {ACTION_MODES}")
        self.low, self.high, self.mode = np.asarray(low, np.float64), np.asarray(high, np.float64), mode

    def __call__(self, a: np.ndarray) -> np.ndarray:
        if self.mode == "paper":
            return np.asarray(a, dtype=np.float64)
        return np.clip(self.low + (np.asarray(a) + 1.0) * 0.5 * (self.high - self.low), self.low, self.high)


def policy_input(obs: np.ndarray, prev_action: np.ndarray | None) -> np.ndarray:
    """The actor's input: the observation, with the previous action prepended when configured (S2~)."""
    obs = np.asarray(obs, dtype=np.float32).reshape(-1)
    if prev_action is None:
        return obs
    return np.concatenate([np.asarray(prev_action, dtype=np.float32).reshape(-1), obs])


@dataclass
class EvalResult:
    return_mean: float
    return_std: float
    episode_length_mean: float
    episodes: int


def evaluate(env, act_fn: Callable[[np.ndarray, np.ndarray | None], np.ndarray], mapping: ActionMapping,
             episodes: int, *, prev_action: bool = False, seed: int | None = None) -> EvalResult:
    """Run ``episodes`` noise-free episodes; ``act_fn(obs, prev_action)`` returns the policy action."""
    returns, lengths = [], []
    act_dim = env.action_space.shape[0]
    for ep in range(episodes):
        obs, _ = env.reset(seed=None if seed is None else seed + ep)
        prev = np.zeros(act_dim, np.float32) if prev_action else None
        total, n, done = 0.0, 0, False
        while not done:
            a = act_fn(obs, prev)
            obs, r, terminated, truncated, _ = env.step(mapping(a))
            total += float(r)
            n += 1
            done = terminated or truncated
            if prev_action:
                prev = a
        returns.append(total)
        lengths.append(n)
    return EvalResult(float(np.mean(returns)) if returns else float("nan"),
                      float(np.std(returns)) if returns else float("nan"),
                      float(np.mean(lengths)) if lengths else float("nan"), episodes)
