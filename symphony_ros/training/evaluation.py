"""Evaluation, in one place: noise-free episodes of a policy on its own environment, the evaluation protocol (which
seeds, how many episodes; docs/algorithm.md#training-loop), and the outputs a person reads (evaluations.csv and
learning_curve.png, written atomically). Both front-ends (the headless trainer and the embedded ROS graph) use
:class:`Evaluator`.
"""
from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.checkpoint import atomic_write_bytes
from ..core.config import SymphonyConfig
from ..core.observation import policy_input
from ..envs.gym_env import ActionMapping, make_env

EVAL_FIELDS = ("step", "train_step", "updates", "return_mean", "return_std", "episode_length_mean", "episodes",
               "wall_time_s")
EVAL_ENV_SEED_OFFSET = 10_000      # the evaluation env's seed = run seed + this
EVAL_EPISODE_SEED_OFFSET = 20_000  # episode k of the evaluation at step t resets with run seed + this + t + k

ActFn = Callable[[np.ndarray], np.ndarray]   # policy input x (obs_dim,) -> noise-free action (act_dim,)


# ---------------------------------------------------------------------------------------------- files
def write_evaluations_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EVAL_FIELDS, extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow(row)
    atomic_write_bytes(path, buf.getvalue().encode())


def read_evaluations_csv(path: str | Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_learning_curve(path: str | Path, rows: Sequence[dict[str, Any]], title: str) -> None:
    """Evaluation return (mean ± std) against environment steps, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if rows:
        x = [r["step"] for r in rows]
        m = [r["return_mean"] for r in rows]
        s = [r["return_std"] for r in rows]
        ax.plot(x, m, marker="o", ms=3, label="evaluation return (mean)")
        ax.fill_between(x, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], alpha=0.25, label="± std")
        ax.legend(loc="lower right")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------- episodes
@dataclass
class EvalResult:
    return_mean: float
    return_std: float
    episode_length_mean: float
    episodes: int


def evaluate(env, act_fn: ActFn, mapping: ActionMapping, episodes: int, *, prev_action: bool = False,
             seed: int | None = None) -> EvalResult:
    """Run ``episodes`` noise-free episodes; ``act_fn(x)`` returns the policy action for the policy input x (the
    observation, with the previous action prepended when ``prev_action``). Episode k resets with ``seed + k``."""
    returns, lengths = [], []
    act_dim = env.action_space.shape[0]
    for ep in range(episodes):
        obs, _ = env.reset(seed=None if seed is None else seed + ep)
        prev = np.zeros(act_dim, np.float32) if prev_action else None
        total, n, done = 0.0, 0, False
        while not done:
            a = act_fn(policy_input(obs, prev))
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


class Evaluator:
    """The evaluation protocol of one run: ``cfg.eval_episodes`` noise-free episodes on a separate environment
    (seeded ``seed + EVAL_ENV_SEED_OFFSET``); the rows and the CSV/PNG in ``out``.

    ``evaluate(step, updates, act_fn, train_step=..., wall_time_s=...)`` runs one evaluation and returns its row."""

    def __init__(self, env_id: str, cfg: SymphonyConfig, out: str | Path, *, seed: int = 0,
                 action_mode: str = "paper", title: str = "", rows: list[dict[str, Any]] | None = None) -> None:
        self.env = make_env(env_id, episode_limit=cfg.episode_limit, seed=seed + EVAL_ENV_SEED_OFFSET)
        self.mapping = ActionMapping(self.env.action_space.low, self.env.action_space.high, action_mode)
        self.cfg, self.out, self.seed, self.env_id = cfg, Path(out), int(seed), env_id
        self.title = title or f"Symphony {cfg.preset.upper()} on {env_id}"
        self.rows: list[dict[str, Any]] = list(rows or [])
        self._t0 = time.perf_counter()

    @property
    def last_step(self) -> int | None:
        return int(self.rows[-1]["step"]) if self.rows else None

    @property
    def last_return(self) -> float:
        return float(self.rows[-1]["return_mean"]) if self.rows else float("nan")

    def evaluate(self, step: int, updates: int, act_fn: ActFn, *, train_step: int | None = None,
                 wall_time_s: float | None = None) -> dict[str, Any]:
        res = evaluate(self.env, act_fn, self.mapping, self.cfg.eval_episodes,
                       prev_action=self.cfg.prev_action_in_obs, seed=self.seed + EVAL_EPISODE_SEED_OFFSET + step)
        row = dict(step=step, train_step=step if train_step is None else train_step, updates=updates,
                   return_mean=res.return_mean, return_std=res.return_std,
                   episode_length_mean=res.episode_length_mean, episodes=res.episodes,
                   wall_time_s=round(time.perf_counter() - self._t0 if wall_time_s is None else wall_time_s, 2))
        self.rows.append(row)
        write_evaluations_csv(self.out / "evaluations.csv", self.rows)
        plot_learning_curve(self.out / "learning_curve.png", self.rows, self.title)
        return row

    def close(self) -> None:
        self.env.close()
