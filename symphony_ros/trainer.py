"""Headless trainer: the paper's protocol (§2.10) on any gymnasium continuous-control environment, without ROS.

Per environment step: end exploration once N_exp transitions are stored (norm_fill); evaluate noise-free every
``eval_every`` steps once learning; act with the noisy actor (the policy term zeroed for the last
``zero_policy_window`` steps of an episode, simulation only); store (s, a, r, s', terminated); G updates, each on a
fresh batch. Outputs under ``out_dir``: evaluations.csv, learning_curve.png, checkpoints/ckpt_*.pt.
"""
from __future__ import annotations

import logging
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .core.agent import SymphonyAgent
from .core.checkpoint import CheckpointError, CheckpointManager
from .core.config import SymphonyConfig
from .envs.gym_env import ActionMapping, evaluate, make_env, policy_input
from .reporting import plot_learning_curve, write_evaluations_csv

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    total_steps: int
    updates: int
    episodes: int
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    checkpoint: Path | None = None


class _StopFlag:
    """SIGINT/SIGTERM set a flag checked between steps, so an update is never cut in half. A second SIGINT aborts."""

    def __init__(self) -> None:
        self.stop = False
        self._old: dict[int, Any] = {}

    def __enter__(self):
        def handler(signum, frame):
            if self.stop and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stop = True
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread: no signal handling
            pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class HeadlessTrainer:
    """Args: ``env_id`` (gymnasium id), ``config``, ``out_dir``; ``max_steps`` total environment steps (exploration
    included); ``device`` "auto" | "cpu" | "cuda"; ``action_mode`` "paper" | "rescale"; ``resume`` continues from the
    newest good checkpoint in ``out_dir/checkpoints``."""

    def __init__(self, env_id: str, config: SymphonyConfig, out_dir: str | Path, *, max_steps: int = 3_000_000,
                 device: str = "auto", seed: int = 0, action_mode: str = "paper", resume: bool = False,
                 progress: bool = True, checkpoint_every: int | None = None, keep_checkpoints: int = 2,
                 stop_at_return: float | None = None) -> None:
        self.env_id, self.cfg, self.out = env_id, config, Path(out_dir)
        self.max_steps, self.seed, self.progress = int(max_steps), int(seed), progress
        self.out.mkdir(parents=True, exist_ok=True)
        self.env = make_env(env_id, episode_limit=config.episode_limit, seed=seed)
        self.eval_env = make_env(env_id, episode_limit=config.episode_limit, seed=seed + 10_000)
        space = self.env.action_space
        self.act_dim = int(space.shape[0])
        self.mapping = ActionMapping(space.low, space.high, action_mode)
        obs_dim = int(np.prod(self.env.observation_space.shape))
        self.obs_dim = obs_dim + (self.act_dim if config.prev_action_in_obs else 0)
        random.seed(seed)
        np.random.seed(seed)
        self.agent = SymphonyAgent(self.obs_dim, self.act_dim, config, device=device, seed=seed)
        self.checkpoints = CheckpointManager(self.out / "checkpoints", keep=keep_checkpoints)
        self.checkpoint_every = checkpoint_every or config.eval_every
        self.total_steps = 0
        self.episodes = 0
        self.learning_start_step: int | None = None
        self.evaluations: list[dict[str, Any]] = []
        self.wall_time = 0.0
        self.action_mode = action_mode
        self.stop_at_return = stop_at_return
        if resume:
            self._resume()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return dict(kind="training", agent=self.agent.state_dict(),
                    trainer=dict(env_id=self.env_id, total_steps=self.total_steps, episodes=self.episodes,
                                 learning_start_step=self.learning_start_step, evaluations=self.evaluations,
                                 wall_time=self.wall_time, seed=self.seed, action_mode=self.action_mode),
                    rng=dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state()))

    def save(self) -> Path:
        path = self.checkpoints.save(self.total_steps, self.state_dict())
        log.info("checkpoint written: %s", path)
        return path

    def _validate(self, payload: dict[str, Any]) -> None:
        tr = payload["trainer"]
        if tr["env_id"] != self.env_id:
            raise ValueError(f"it was trained on '{tr['env_id']}', not '{self.env_id}'")
        sd = payload["agent"]
        if (sd["obs_dim"], sd["act_dim"]) != (self.obs_dim, self.act_dim):
            raise ValueError(f"its sizes (obs {sd['obs_dim']}, act {sd['act_dim']}) differ from the environment's")

    def _resume(self) -> None:
        found = self.checkpoints.load_latest(kind="training", validate=self._validate)
        if found is None:
            log.warning("--resume: no checkpoint in %s, starting fresh", self.checkpoints.directory)
            return
        path, payload = found
        try:
            self.agent.load_state_dict(payload["agent"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
        tr = payload["trainer"]
        self.total_steps, self.episodes = int(tr["total_steps"]), int(tr["episodes"])
        self.learning_start_step = tr["learning_start_step"]
        self.evaluations = list(tr["evaluations"])
        self.wall_time = float(tr["wall_time"])
        random.setstate(payload["rng"]["python"])
        np.random.set_state(payload["rng"]["numpy"])
        torch.set_rng_state(payload["rng"]["torch"])
        log.info("resumed from %s at step %d (%d updates)", path, self.total_steps, self.agent.updates)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, Any]:
        prev = self.cfg.prev_action_in_obs

        def act_fn(obs, prev_a):
            return self.agent.act(policy_input(obs, prev_a), act=1.0, noise=0.0)

        res = evaluate(self.eval_env, act_fn, self.mapping, self.cfg.eval_episodes, prev_action=prev,
                       seed=self.seed + 20_000 + self.total_steps)
        row = dict(step=self.total_steps,
                   train_step=self.total_steps - (self.learning_start_step or self.total_steps),
                   updates=self.agent.updates, return_mean=res.return_mean, return_std=res.return_std,
                   episode_length_mean=res.episode_length_mean, episodes=res.episodes,
                   wall_time_s=round(self.wall_time, 2))
        self.evaluations.append(row)
        write_evaluations_csv(self.out / "evaluations.csv", self.evaluations)
        plot_learning_curve(self.out / "learning_curve.png", self.evaluations,
                            f"Symphony {self.cfg.preset.upper()} on {self.env_id}")
        return row

    # ------------------------------------------------------------------ main loop
    def run(self) -> TrainResult:
        cfg, agent = self.cfg, self.agent
        limit, window = cfg.episode_limit, cfg.zero_policy_window
        bar = _Progress(self.max_steps, self.total_steps, enabled=self.progress)
        last_eval = self.evaluations[-1]["return_mean"] if self.evaluations else float("nan")
        stats = None
        interrupted = False
        t_start = time.perf_counter()
        wall0 = self.wall_time
        with _StopFlag() as flag:
            while self.total_steps < self.max_steps and not flag.stop:
                obs, _ = self.env.reset(seed=self.seed + self.episodes)
                prev = np.zeros(self.act_dim, np.float32) if cfg.prev_action_in_obs else None
                for t in range(limit):
                    if not agent.learning and agent.buffer.exploration_done:
                        scale = agent.start_learning()
                        self.learning_start_step = self.total_steps
                        log.info("exploration done at step %d: reward scale r_n = %.6g", self.total_steps, scale)
                    if agent.learning and self.total_steps % cfg.eval_every == 0 and cfg.eval_episodes > 0 \
                            and (not self.evaluations or self.evaluations[-1]["step"] != self.total_steps):
                        last_eval = self.evaluate()["return_mean"]
                        if self.stop_at_return is not None and last_eval >= self.stop_at_return:
                            log.info("evaluation return %.1f reached --stop-at-return %.1f", last_eval,
                                     self.stop_at_return)
                            self.max_steps = self.total_steps
                            break
                    if agent.learning and self.total_steps % self.checkpoint_every == 0:
                        self.save()
                    act = 1.0 if not agent.learning else float(t < limit - window)   # zero-policy window (sim only)
                    x = policy_input(obs, prev)
                    a = agent.act(x, act=act, noise=1.0)
                    obs2, r, terminated, truncated, _ = self.env.step(self.mapping(a))
                    x2 = policy_input(obs2, a if prev is not None else None)
                    agent.buffer.add(x, a, float(r), x2, bool(terminated))
                    self.total_steps += 1
                    if agent.learning:
                        for _ in range(cfg.updates_per_step):
                            stats = agent.update()
                    obs = obs2
                    if prev is not None:
                        prev = a
                    self.wall_time = wall0 + time.perf_counter() - t_start
                    bar.update(self.total_steps, agent.updates, last_eval, stats)
                    if terminated or truncated or flag.stop or self.total_steps >= self.max_steps:
                        break
                self.episodes += 1
            interrupted = flag.stop
        bar.close()
        if agent.learning and cfg.eval_episodes > 0 and not interrupted and \
                (not self.evaluations or self.evaluations[-1]["step"] != self.total_steps):
            self.evaluate()
        path = self.save()
        if interrupted:
            log.warning("interrupted: checkpoint saved to %s; continue with --resume", path)
        return TrainResult(self.total_steps, agent.updates, self.episodes, self.evaluations, interrupted, path)


class _Progress:
    """tqdm bar with steps/s, updates/s, last evaluation, mean σ and β (refreshed at most twice a second)."""

    def __init__(self, total: int, initial: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self._t = time.perf_counter()
        self._steps, self._updates = initial, None
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, smoothing=0.1)

    def update(self, steps: int, updates: int, last_eval: float, stats) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self._t < 0.5:
            return
        dt = now - self._t
        sps = (steps - self._steps) / dt
        ups = (updates - (self._updates if self._updates is not None else updates)) / dt
        post = dict(sps=f"{sps:.0f}", ups=f"{ups:.0f}", eval=f"{last_eval:.1f}")
        if stats is not None:
            post.update(sigma=f"{float(stats.sigma_mean):.3f}", beta=f"{float(stats.beta_mean):.3f}")
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(steps - self.bar.n)
        self._t, self._steps, self._updates = now, steps, updates

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
