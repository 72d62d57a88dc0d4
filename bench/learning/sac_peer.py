"""Stable-Baselines3 SAC (its default hyperparameters) under Symphony's evaluation protocol: the peer of the campaign.

What is shared with the headless trainer, by calling the package (no copies): the environment construction
(:func:`symphony_ros.envs.gym_env.make_env`, the env's own time limit unless ``--paper-episode-limit``), the
evaluation protocol and its columns (:class:`symphony_ros.training.evaluation.Evaluator`: evaluation env seed
``seed + 10000``, episode seeds, ``eval_episodes`` noise-free episodes, here SAC's deterministic action), the
evaluation steps (:meth:`symphony_ros.core.schedule.TrainingSchedule.evaluation_due`, with "learning" from step
``n_exp`` on, as for Symphony, so both curves have points at the same steps) and the command telemetry of training
(:class:`symphony_ros.control.telemetry.CommandTelemetry` on every action SB3 sends to the env, its exploration
noise included).

SAC is SB3's ``SAC("MlpPolicy", env, seed=seed)`` with every hyperparameter at its default (2x256 MLPs, batch 256,
lr 3e-4, buffer 1e6, learning_starts 100, train_freq 1, automatic entropy); torch uses one thread.

Usage: ``python bench/learning/sac_peer.py --env InvertedPendulum-v5 --seed 0 --max-steps 10000 --out DIR
[--set key=value ...]`` (the ``--set`` keys are Symphony config keys: only the protocol ones matter here,
``eval_every``, ``eval_episodes``, ``n_exp``, ``episode_limit``). Writes DIR/evaluations.csv, DIR/learning_curve.png
and DIR/run.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the checkout's package, not an installed copy

from symphony_ros.control.telemetry import CommandTelemetry  # noqa: E402
from symphony_ros.core.config import SymphonyConfig, load_preset, parse_overrides  # noqa: E402
from symphony_ros.core.schedule import TrainingSchedule  # noqa: E402
from symphony_ros.envs.gym_env import make_env  # noqa: E402
from symphony_ros.training.evaluation import Evaluator  # noqa: E402


def train_sac(env_id: str, cfg: SymphonyConfig, out: str | Path, *, seed: int, max_steps: int,
              paper_episode_limit: bool = False) -> dict[str, Any]:
    """Train SB3 SAC for ``max_steps`` env steps, evaluating by ``cfg``'s protocol; returns the run summary."""
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    imposed = cfg.episode_limit if paper_episode_limit else None
    env = make_env(env_id, episode_limit=imposed, seed=seed)
    space = env.action_space
    # SAC's deterministic action is already in env units: the evaluator passes it unchanged ("paper" mapping)
    evaluator = Evaluator(env_id, cfg, out, seed=seed, action_mode="paper", episode_limit=imposed,
                          title=f"SB3 SAC on {env_id}")
    schedule = TrainingSchedule(cfg)
    model = SAC("MlpPolicy", env, seed=seed, device="cpu", verbose=0)

    class Protocol(BaseCallback):
        """Per env step: the command into the telemetry; the evaluation when the protocol says so."""

        def __init__(self) -> None:
            super().__init__()
            self.telemetry = CommandTelemetry(space.low, space.high)
            self.new_episode = True
            self.t0 = time.perf_counter()

        def evaluate(self, step: int) -> None:
            evaluator.evaluate(step, int(model._n_updates), lambda x: model.predict(x, deterministic=True)[0],
                               train_step=max(0, step - model.learning_starts),
                               wall_time_s=time.perf_counter() - self.t0,
                               train_telemetry=self.telemetry.summary())
            self.telemetry.reset()

        def _on_step(self) -> bool:
            self.telemetry.add(np.asarray(self.locals["actions"])[0], new_episode=self.new_episode)
            self.new_episode = bool(np.asarray(self.locals["dones"])[0])
            steps = int(self.num_timesteps)
            if schedule.evaluation_due(steps, steps >= cfg.n_exp, evaluator.last_step):
                self.evaluate(steps)
            return True

    cb = Protocol()
    model.learn(total_timesteps=max_steps, callback=cb, progress_bar=False)
    if schedule.final_evaluation_due(max_steps, True, evaluator.last_step):
        cb.evaluate(max_steps)
    wall = time.perf_counter() - cb.t0
    summary = dict(algo="sac", env=env_id, seed=seed, steps=max_steps, updates=int(model._n_updates),
                   wall_time_s=round(wall, 2), wall_per_step_ms=round(1000 * wall / max(max_steps, 1), 3),
                   final_return=evaluator.last_return, sb3_defaults=True)
    (out / "run.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="s3", help="Symphony preset whose protocol keys apply (eval_every, ...)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--paper-episode-limit", action="store_true")
    a = p.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "disable")
    cfg = load_preset(a.preset, parse_overrides(a.overrides))
    s = train_sac(a.env, cfg, a.out, seed=a.seed, max_steps=a.max_steps, paper_episode_limit=a.paper_episode_limit)
    print(json.dumps(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
