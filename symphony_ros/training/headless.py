"""Headless trainer: the paper's loop on any gymnasium continuous-control environment, without ROS.

Per environment step, by the loop rules (core/schedule.py, docs/algorithm.md#training-loop): evaluate noise-free when
due (:class:`~symphony_ros.training.evaluation.Evaluator`); act with the noisy actor (the policy term zeroed in the
zero-policy window: this is a simulation); the transition passes the storage rules and
:meth:`SymphonyAgent.observe` stores it (ending exploration after N_exp); then the G updates it owes, each on a
fresh batch. Outputs under ``out_dir``: evaluations.csv, learning_curve.png, checkpoints/ckpt_*.pt.

Time limit: by default an episode ends at the environment's own registered limit (its TimeLimit
``max_episode_steps``: 1000 for InvertedPendulum-v5 and Humanoid-v5, 50 for Reacher-v5), for training and evaluation
alike; ``paper_episode_limit=True`` imposes ``config.episode_limit`` (1,000 in every preset) on every env instead, as
the reference does. The zero-policy window counts back from whichever limit applies.

Every command sent to the training env goes to a :class:`~symphony_ros.control.telemetry.CommandTelemetry`; each
evaluation writes its figures since the previous evaluation (the ``train_*`` columns) and starts a new window.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.agent import SymphonyAgent
from ..core.checkpoint import AgentCheckpoints, CheckpointError
from ..core.config import SymphonyConfig
from ..core.observation import policy_input
from ..control.telemetry import CommandTelemetry
from ..core.storage import InvalidTransition
from ..envs.gym_env import ActionMapping, ActionRatePenalty, make_env
from .evaluation import Evaluator
from .progress import ProgressReporter
from .session import StopFlag

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    total_steps: int
    updates: int
    episodes: int
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    checkpoint: Path | None = None


def episode_limit_of(env) -> int:
    """The time limit (steps) of a gymnasium env: its spec's ``max_episode_steps`` (the TimeLimit wrapper)."""
    limit = getattr(getattr(env, "spec", None), "max_episode_steps", None)
    if limit is None:
        raise ValueError(f"environment {getattr(env.spec, 'id', env)} has no time limit; pass paper_episode_limit")
    return int(limit)


class HeadlessTrainer:
    """Args: ``env_id`` (gymnasium id), ``config``, ``out_dir``; ``max_steps`` total environment steps (exploration
    included); ``device`` "auto" | "cpu" | "cuda"; ``action_mode`` "paper" | "rescale"; ``resume`` continues from the
    newest good checkpoint in ``out_dir/checkpoints``; ``checkpoint_at_exit`` False: :meth:`run` writes no checkpoint
    when it returns (only the periodic ones; for a caller that runs it in chunks, e.g. bench/bench_graph.py);
    ``paper_episode_limit`` True: episodes last ``config.episode_limit`` steps on every env instead of the env's own
    time limit (the module docstring); ``action_rate_penalty`` w > 0: the training reward pays
    w·mean((Δcommand/range)²) per step (:class:`~symphony_ros.envs.gym_env.ActionRatePenalty`; evaluations are not
    penalised)."""

    def __init__(self, env_id: str, config: SymphonyConfig, out_dir: str | Path, *, max_steps: int = 3_000_000,
                 device: str = "auto", seed: int = 0, action_mode: str = "paper", resume: bool = False,
                 progress: bool = True, checkpoint_every: int | None = None, keep_checkpoints: int = 2,
                 stop_at_return: float | None = None, checkpoint_at_exit: bool = True,
                 paper_episode_limit: bool = False, action_rate_penalty: float = 0.0) -> None:
        self.env_id, self.cfg, self.out = env_id, config, Path(out_dir)
        self.max_steps, self.seed, self.progress = int(max_steps), int(seed), progress
        self.out.mkdir(parents=True, exist_ok=True)
        imposed = config.episode_limit if paper_episode_limit else None
        self.env = make_env(env_id, episode_limit=imposed, seed=seed)
        self.episode_limit = episode_limit_of(self.env)
        if action_rate_penalty > 0:    # the training env only: evaluations report the task's own return
            self.env = ActionRatePenalty(self.env, action_rate_penalty)
        space = self.env.action_space
        self.act_dim = int(space.shape[0])
        self.mapping = ActionMapping(space.low, space.high, action_mode)
        obs_dim = int(np.prod(self.env.observation_space.shape))
        self.obs_dim = obs_dim + (self.act_dim if config.prev_action_in_obs else 0)
        random.seed(seed)
        np.random.seed(seed)
        self.agent = SymphonyAgent(self.obs_dim, self.act_dim, config, device=device, seed=seed)
        self.evaluator = Evaluator(env_id, config, self.out, seed=seed, action_mode=action_mode,
                                   episode_limit=imposed)
        self.telemetry = CommandTelemetry(space.low, space.high)   # training commands since the last evaluation
        self.checkpoints = AgentCheckpoints(self.out / "checkpoints", keep=keep_checkpoints)
        self.checkpoint_every = checkpoint_every or config.eval_every
        self.total_steps = 0
        self.episodes = 0
        self.rejected = 0
        self.learning_start_step: int | None = None
        self.wall_time = 0.0
        self.action_mode = action_mode
        self.stop_at_return = stop_at_return
        self.checkpoint_at_exit = checkpoint_at_exit
        if resume:
            self._resume()

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        return self.evaluator.rows

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, *, include_buffer: bool = True) -> dict[str, Any]:
        return dict(kind="training", agent=self.agent.state_dict(include_buffer=include_buffer),
                    trainer=dict(env_id=self.env_id, total_steps=self.total_steps, episodes=self.episodes,
                                 learning_start_step=self.learning_start_step, evaluations=self.evaluations,
                                 wall_time=self.wall_time, seed=self.seed, action_mode=self.action_mode),
                    rng=dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state()))

    def save(self) -> Path | None:
        """Checkpoint (the buffer incrementally: only what changed since the previous save). Never of non-finite
        parameters: then nothing is written (the previous checkpoint stays) and None is returned."""
        if not self.agent.finite_parameters():
            log.error("the agent's parameters are not finite: no checkpoint written (the previous one is kept)")
            return self.checkpoints.latest()
        path = self.checkpoints.save_agent(self.total_steps, self.state_dict(include_buffer=False), self.agent.buffer)
        s = self.checkpoints.last_save
        log.info("checkpoint written: %s (%.2f s, buffer %.1f MiB, state %.1f MiB)", path, s["seconds"],
                 s["buffer_bytes"] / 2**20, s["state_bytes"] / 2**20)
        return path

    def _validate(self, payload: dict[str, Any]) -> None:
        tr = payload["trainer"]
        if tr["env_id"] != self.env_id:
            raise ValueError(f"it was trained on '{tr['env_id']}', not '{self.env_id}'")
        sd = payload["agent"]
        if (sd["obs_dim"], sd["act_dim"]) != (self.obs_dim, self.act_dim):
            raise ValueError(f"its sizes (obs {sd['obs_dim']}, act {sd['act_dim']}) differ from the environment's")

    def _resume(self) -> None:
        found = self.checkpoints.load_agent_latest(kind="training", validate=self._validate, apply=self._apply,
                                                   buffer=self.agent.buffer)
        if found is None:
            log.warning("--resume: no checkpoint in %s, starting fresh", self.checkpoints.directory)

    def _apply(self, path: Path, payload: dict[str, Any]) -> None:
        try:
            self.agent.load_state_dict(payload["agent"], load_buffer=payload["agent"].get("buffer") is not None)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
        tr = payload["trainer"]
        self.total_steps, self.episodes = int(tr["total_steps"]), int(tr["episodes"])
        self.learning_start_step = tr["learning_start_step"]
        self.evaluator.rows = list(tr["evaluations"])
        self.wall_time = float(tr["wall_time"])
        random.setstate(payload["rng"]["python"])
        np.random.set_state(payload["rng"]["numpy"])
        torch.set_rng_state(payload["rng"]["torch"])
        log.info("resumed from %s at step %d (%d updates)", path, self.total_steps, self.agent.updates)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, Any]:
        """One noise-free evaluation; its row carries the training-command telemetry since the previous one (then
        reset) and the actor's σ/β means over the evaluation states."""
        states: list[np.ndarray] = []

        def act_fn(x: np.ndarray) -> np.ndarray:
            states.append(x)
            return self.agent.act(x, act=1.0, noise=0.0)

        def sigma_beta() -> dict[str, float]:
            if not states:
                return {}
            sigma, beta = self.agent.sigma_beta(np.stack(states))
            return dict(sigma_mean=round(sigma, 6), beta_mean=round(beta, 6))

        row = self.evaluator.evaluate(
            self.total_steps, self.agent.updates, act_fn,
            train_step=self.total_steps - (self.learning_start_step or self.total_steps),
            wall_time_s=self.wall_time, train_telemetry=self.telemetry.summary(), extra=sigma_beta)
        self.telemetry.reset()
        return row

    # ------------------------------------------------------------------ main loop
    def run(self) -> TrainResult:
        cfg, agent, schedule = self.cfg, self.agent, self.agent.schedule
        bar = ProgressReporter(self.max_steps, self.total_steps, enabled=self.progress)
        stats = None
        t_start = time.perf_counter()
        wall0 = self.wall_time
        with StopFlag() as flag:
            while self.total_steps < self.max_steps and not flag.stop:
                obs, _ = self.env.reset(seed=self.seed + self.episodes)
                prev = np.zeros(self.act_dim, np.float32) if cfg.prev_action_in_obs else None
                for t in range(self.episode_limit):
                    if schedule.evaluation_due(self.total_steps, agent.learning, self.evaluator.last_step):
                        ret = self.evaluate()["return_mean"]
                        if self.stop_at_return is not None and ret >= self.stop_at_return:
                            log.info("evaluation return %.1f reached --stop-at-return %.1f", ret, self.stop_at_return)
                            self.max_steps = self.total_steps
                            break
                    if agent.learning and self.total_steps % self.checkpoint_every == 0:
                        self.save()
                    act, noise = schedule.execution_gains(t, learning=agent.learning, simulation=True,
                                                          deterministic=False, episode_limit=self.episode_limit)
                    x = policy_input(obs, prev)
                    a = agent.act(x, act=act, noise=noise)
                    command = self.mapping(a)
                    self.telemetry.add(command, new_episode=t == 0)
                    obs2, r, terminated, truncated, _ = self.env.step(command)
                    x2 = policy_input(obs2, a if prev is not None else None)
                    self.total_steps += 1
                    stats = self.store_step(x, a, r, x2, terminated, truncated, t) or stats
                    obs = obs2
                    if prev is not None:
                        prev = a
                    self.wall_time = wall0 + time.perf_counter() - t_start
                    bar.update(self.total_steps, agent.updates, eval=self.evaluator.last_return,
                               **({} if stats is None else dict(sigma=float(stats.sigma_mean),
                                                                beta=float(stats.beta_mean))))
                    if terminated or truncated or flag.stop or self.total_steps >= self.max_steps:
                        break
                self.episodes += 1
        bar.close()
        if not flag.stop and schedule.final_evaluation_due(self.total_steps, agent.learning, self.evaluator.last_step):
            self.evaluate()
        path = self.save() if self.checkpoint_at_exit else None
        if flag.stop and path is not None:
            log.warning("interrupted: checkpoint saved to %s; continue with --resume", path)
        return TrainResult(self.total_steps, agent.updates, self.episodes, self.evaluations, flag.stop, path)

    def store_step(self, x, a, r, x2, terminated, truncated, t):
        """One experienced step: the transition (policy inputs x, x2 (obs_dim,), action a (act_dim,) in policy units,
        raw reward r, flags, step t of the episode) through the storage rules and the loop rules, then the updates
        it owes. Returns the last update's statistics, or None (no update, or the transition was rejected)."""
        agent = self.agent
        try:
            plan = agent.observe(agent.storage_rules.check(x, a, float(r), x2, bool(terminated),
                                                           truncated=bool(truncated), episode=self.episodes, step=t))
        except InvalidTransition as exc:
            self.rejected += 1
            log.warning("step %d: transition not stored: %s (%d rejected so far)", self.total_steps, exc,
                        self.rejected)
            return None
        if plan.learning_started:
            self.learning_start_step = self.total_steps
            log.info("exploration done at step %d: reward scale r_n = %.6g", self.total_steps,
                     agent.buffer.reward_scale)
        stats = None
        for _ in range(plan.updates):
            stats = agent.update()
        if plan.updates:
            said = agent.guard(self.cfg.max_bad_updates)   # the update guard's host side
            if said:
                log.warning("step %d: %s", self.total_steps, said)
        return stats
