"""Evaluation, in one place: noise-free episodes of a policy on its own environment, the evaluation protocol (which
seeds, how many episodes; docs/algorithm.md#training-loop), and the outputs a person reads (evaluations.csv and
learning_curve.png, written atomically). Both front-ends (the headless trainer and the embedded ROS graph) use
:class:`Evaluator`; the learning campaign's SAC peer (bench/learning/sac_peer.py) uses it too, so both algorithms are
evaluated by one protocol and one set of columns.

Command telemetry columns (definitions: :mod:`symphony_ros.control.telemetry`, means over joints, in the env's
command units against its action bounds): ``train_*`` the commands the training environment received since the
previous evaluation (noise, exploration and the zero-policy window included), ``eval_*`` the noise-free commands of
this evaluation's episodes. ``sigma_mean``/``beta_mean``: the actor's σ and β means over the states of this
evaluation (empty for a policy without them).
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
from ..control.telemetry import CommandMetrics, CommandTelemetry
from ..core.observation import policy_input
from ..envs.gym_env import ActionMapping, make_env

TELEMETRY_FIGURES = ("saturation", "abs_delta", "hf_share", "reach", "sign_flips")
EVAL_FIELDS = ("step", "train_step", "updates", "return_mean", "return_std", "episode_length_mean", "episodes",
               "wall_time_s") + tuple(f"{w}_{k}" for w in ("train", "eval") for k in TELEMETRY_FIGURES) + (
               "sigma_mean", "beta_mean")
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
    """The rows as floats; an empty cell (a column an older file or a policy lacks) reads as NaN."""
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()}
                for row in csv.DictReader(f)]


def telemetry_columns(prefix: str, metrics: CommandMetrics | None) -> dict[str, float]:
    """``{prefix}_{figure}``: the per-joint means of ``metrics`` for the evaluations.csv columns (NaN if None)."""
    means = metrics.means() if metrics is not None and metrics.count else {}
    return {f"{prefix}_{k}": round(means.get(k, float("nan")), 6) for k in TELEMETRY_FIGURES}


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
             seed: int | None = None, telemetry: CommandTelemetry | None = None) -> EvalResult:
    """Run ``episodes`` noise-free episodes; ``act_fn(x)`` returns the policy action for the policy input x (the
    observation, with the previous action prepended when ``prev_action``). Episode k resets with ``seed + k``.
    ``telemetry``: each command the env receives is added to it (the first of an episode as a new episode)."""
    returns, lengths = [], []
    act_dim = env.action_space.shape[0]
    for ep in range(episodes):
        obs, _ = env.reset(seed=None if seed is None else seed + ep)
        prev = np.zeros(act_dim, np.float32) if prev_action else None
        total, n, done = 0.0, 0, False
        while not done:
            a = act_fn(policy_input(obs, prev))
            command = mapping(a)
            if telemetry is not None:
                telemetry.add(command, new_episode=n == 0)
            obs, r, terminated, truncated, _ = env.step(command)
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
    (seeded ``seed + EVAL_ENV_SEED_OFFSET``); the rows and the CSV/PNG in ``out``. ``episode_limit``: the
    evaluation episodes' time limit in steps (None: the environment's own registered limit).

    ``evaluate(step, updates, act_fn, train_step=..., wall_time_s=..., train_telemetry=..., extra=...)`` runs one
    evaluation and returns its row."""

    def __init__(self, env_id: str, cfg: SymphonyConfig, out: str | Path, *, seed: int = 0,
                 action_mode: str = "paper", title: str = "", rows: list[dict[str, Any]] | None = None,
                 episode_limit: int | None = None) -> None:
        self.env = make_env(env_id, episode_limit=episode_limit, seed=seed + EVAL_ENV_SEED_OFFSET)
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
                 wall_time_s: float | None = None, train_telemetry: CommandMetrics | None = None,
                 extra: Callable[[], dict[str, float]] | None = None) -> dict[str, Any]:
        """One evaluation at ``step``. ``train_telemetry``: the training commands since the previous evaluation
        (the ``train_*`` columns; NaN when None); ``extra()``, called after the episodes, adds columns (e.g. the
        actor's ``sigma_mean``/``beta_mean`` over the evaluation states)."""
        tel = CommandTelemetry(self.env.action_space.low, self.env.action_space.high)
        res = evaluate(self.env, act_fn, self.mapping, self.cfg.eval_episodes,
                       prev_action=self.cfg.prev_action_in_obs, seed=self.seed + EVAL_EPISODE_SEED_OFFSET + step,
                       telemetry=tel)
        row = dict(step=step, train_step=step if train_step is None else train_step, updates=updates,
                   return_mean=res.return_mean, return_std=res.return_std,
                   episode_length_mean=res.episode_length_mean, episodes=res.episodes,
                   wall_time_s=round(time.perf_counter() - self._t0 if wall_time_s is None else wall_time_s, 2),
                   **telemetry_columns("train", train_telemetry), **telemetry_columns("eval", tel.summary()),
                   sigma_mean=float("nan"), beta_mean=float("nan"))
        if extra is not None:
            row.update(extra())
        self.rows.append(row)
        write_evaluations_csv(self.out / "evaluations.csv", self.rows)
        plot_learning_curve(self.out / "learning_curve.png", self.rows, self.title)
        return row

    def close(self) -> None:
        self.env.close()
