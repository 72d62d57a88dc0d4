"""gymnasium environments for the headless trainer and the sim bridge: creation and the action mapping."""
from __future__ import annotations

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

    def inverse(self, command: np.ndarray) -> np.ndarray:
        """The policy action that maps to ``command`` (what the robot executed, in policy units)."""
        c = np.asarray(command, dtype=np.float64)
        if self.mode == "paper":
            return c
        span = np.where(self.high > self.low, self.high - self.low, 1.0)
        return 2.0 * (c - self.low) / span - 1.0


class ActionRatePenalty:
    """A gymnasium wrapper that subtracts an action-rate term from the reward (a remedy for bang-bang commands):

        r_t ← r_t − weight · mean_j ((c_t,j − c_{t−1},j) / (high_j − low_j))²

    with c the commands the env receives (command units) and [low, high] its action bounds, so the term is the mean
    squared share of the range crossed per step (a ±bound square wave costs ``weight``; a constant command 0). The
    first step of an episode has no previous command and costs nothing. ``info["action_rate_penalty"]`` holds the
    amount subtracted. Used on the TRAINING env only: evaluations report the task's own return. (A delegating
    wrapper rather than a gymnasium.Wrapper subclass, so that this module imports without gymnasium.)
    """

    def __init__(self, env, weight: float) -> None:
        w = float(weight)
        if not (np.isfinite(w) and w >= 0):
            raise ValueError(f"action-rate penalty weight must be a finite number >= 0, got {weight!r}")
        self.env, self.weight = env, w
        self.span = np.asarray(env.action_space.high, np.float64) - np.asarray(env.action_space.low, np.float64)
        self.prev: np.ndarray | None = None

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def reset(self, **kwargs):
        self.prev = None
        return self.env.reset(**kwargs)

    def step(self, command):
        c = np.asarray(command, np.float64)
        obs, r, terminated, truncated, info = self.env.step(command)
        pen = 0.0 if self.prev is None else self.weight * float(np.mean(((c - self.prev) / self.span) ** 2))
        self.prev = c.copy()
        info = dict(info, action_rate_penalty=pen)
        return obs, float(r) - pen, terminated, truncated, info
