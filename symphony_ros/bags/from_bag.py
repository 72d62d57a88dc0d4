"""Learn from bags: their Transition messages into a replay buffer (bootstrap a robot from its earlier sessions), and
re-run a checkpoint's actor on recorded observations to see how far the policy has moved.

Hooks for the trainers (every recorded transition passes the storage rules, core/storage.py, and is stored by the
same loop rules as a live one, :meth:`SymphonyAgent.observe`):

* :func:`checked_transitions` ``(bags, rules, on_reject)``: the bags' transitions as validated records (what the
  learner node's ``from_bag`` parameter preloads);
* :func:`load_transitions_into` ``(agent, bags, learn=False) -> int``: pre-fill a SymphonyAgent's buffer (and, with
  ``learn``, run the updates the loop rules owe, exactly as live training would);
* :func:`bootstrap_trainer` ``(trainer, bags, updates=0) -> int``: the same for a
  :class:`~symphony_ros.training.headless.HeadlessTrainer`, with its step/learning bookkeeping, optionally followed
  by offline updates; ``symphony-ros load-bag`` and ``symphony-ros train --headless --from-bag`` use it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..core.storage import InvalidTransition, Transition
from . import BagError
from .reader import BagReader
from .typestore import ENV_STEP, TRANSITION

log = logging.getLogger(__name__)


def _readers(bags, strict: bool = False) -> list[BagReader]:
    if isinstance(bags, (str, Path, BagReader)):
        bags = [bags]
    out = []
    for b in bags:
        r = b if isinstance(b, BagReader) else BagReader(b, strict=strict)
        for d in r.damage:
            log.warning("%s", d)
        out.append(r)
    if not out:
        raise BagError("no bag given")
    return out


@dataclass
class RecordedTransition:
    observation: np.ndarray
    action: np.ndarray
    reward: float
    next_observation: np.ndarray
    terminated: bool
    truncated: bool
    episode: int
    step: int
    robot: str
    timestamp: int


def iter_transitions(bags, *, topics: Iterable[str] | None = None, robot: str | None = None,
                     strict: bool = False) -> Iterator[RecordedTransition]:
    """Every Transition message of ``bags`` (one or several, in the order given), decoded. ``topics`` defaults to
    every topic of type Transition; ``robot`` keeps one robot's (``header.frame_id``)."""
    for r in _readers(bags, strict):
        names = list(topics) if topics is not None else r.topic_names(msgtype=TRANSITION)
        for m, msg in r.decoded(names):
            if m.msgtype != TRANSITION:
                continue
            fid = msg.header.frame_id
            if robot is not None and fid != robot:
                continue
            yield RecordedTransition(np.array(msg.observation, np.float32), np.array(msg.action, np.float32),
                                     float(msg.reward), np.array(msg.next_observation, np.float32),
                                     bool(msg.terminated), bool(msg.truncated), int(msg.episode), int(msg.step),
                                     fid, m.timestamp)


def read_transitions(bags, **kw) -> dict[str, np.ndarray]:
    """All transitions as arrays: observation (N,S), action (N,d), reward, next_observation, terminated,
    truncated, episode, step, timestamp (for tests and scripts; :func:`load_transitions_into` streams)."""
    rows = list(iter_transitions(bags, **kw))
    if not rows:
        return {k: np.zeros((0,)) for k in ("observation", "action", "reward", "next_observation", "terminated",
                                            "truncated", "episode", "step", "timestamp")}
    return dict(observation=np.stack([t.observation for t in rows]), action=np.stack([t.action for t in rows]),
                reward=np.array([t.reward for t in rows], np.float32),
                next_observation=np.stack([t.next_observation for t in rows]),
                terminated=np.array([t.terminated for t in rows]), truncated=np.array([t.truncated for t in rows]),
                episode=np.array([t.episode for t in rows]), step=np.array([t.step for t in rows]),
                timestamp=np.array([t.timestamp for t in rows], np.int64))


@dataclass
class LoadReport:
    stored: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    bags: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)

    def __int__(self) -> int:
        return self.stored


def checked_transitions(bags, rules, on_reject: Callable[[str], None] | None = None, *,
                        topics: Iterable[str] | None = None, robot: str | None = None,
                        strict: bool = False) -> Iterator[Transition]:
    """The bags' transitions as records that passed ``rules`` (a :class:`StorageRules`). A transition whose sizes do
    not match raises ValueError on the first one (a bag of another robot/env); any other broken rule (NaN, out of
    bounds) is passed to ``on_reject(reason)`` and skipped."""
    first = True
    for t in iter_transitions(bags, topics=topics, robot=robot, strict=strict):
        if first:
            first = False
            if t.observation.size != rules.obs_dim or t.action.size != rules.act_dim:
                raise ValueError(f"the bag's transitions have obs_dim {t.observation.size}, act_dim {t.action.size}; "
                                 f"this learner has obs_dim {rules.obs_dim}, act_dim {rules.act_dim} (a bag of "
                                 "another environment, robot or prev_action_in_obs setting)")
        try:
            yield rules.check(t.observation, t.action, t.reward, t.next_observation, t.terminated,
                              truncated=t.truncated, episode=t.episode, step=t.step, source=t.robot)
        except InvalidTransition as exc:
            if on_reject is not None:
                on_reject(str(exc))


def load_transitions_into(agent, bags, *, topics: Iterable[str] | None = None, robot: str | None = None,
                          strict: bool = False, learn: bool = False, report: LoadReport | None = None) -> int:
    """Store every valid Transition of ``bags`` in ``agent`` (a SymphonyAgent) by the loop rules, exactly as the
    learner stores live ones (raw rewards; exploration ends after ``n_exp``). With ``learn`` the updates the rules owe
    are run too (G per stored learning-phase transition). Returns the number stored; rejected ones are counted in
    ``report``."""
    if getattr(agent, "buffer", None) is None or not hasattr(agent, "observe"):
        raise ValueError("load_transitions_into needs a SymphonyAgent with a buffer")
    rep = report if report is not None else LoadReport()
    readers = _readers(bags, strict)
    rep.bags += [str(r.path) for r in readers]
    rep.damage += [d for r in readers for d in r.damage]

    def rejected(reason: str) -> None:
        rep.rejected += 1
        rep.reasons[reason] = rep.reasons.get(reason, 0) + 1

    for t in checked_transitions(readers, agent.storage_rules, rejected, topics=topics, robot=robot):
        try:
            plan = agent.observe(t)
        except InvalidTransition as exc:
            rejected(str(exc))
            continue
        rep.stored += 1
        if learn:
            for _ in range(plan.updates):
                agent.update()
    if rep.rejected:
        log.warning("skipped %d malformed transitions: %s", rep.rejected, rep.reasons)
    return rep.stored


def bag_dims(bags) -> tuple[int, int]:
    """(obs_dim, act_dim) of the first Transition in ``bags``."""
    for t in iter_transitions(bags):
        return int(t.observation.size), int(t.action.size)
    raise BagError("the bag holds no Transition messages (was the 'transitions' topic recorded?)")


def bootstrap_trainer(trainer, bags, *, updates: int = 0, robot: str | None = None,
                      report: LoadReport | None = None) -> int:
    """Pre-fill a HeadlessTrainer's buffer from ``bags`` (by the loop rules) and count them as experienced steps;
    then ``updates`` offline gradient updates. Returns the number of transitions stored. Call before
    ``trainer.run()`` (after a ``--resume`` load, if any)."""
    agent = trainer.agent
    was_learning = agent.learning
    n = load_transitions_into(agent, bags, robot=robot, report=report)
    trainer.total_steps += n
    if agent.learning and not was_learning:
        trainer.learning_start_step = trainer.total_steps
        log.info("exploration completed from the bags: reward scale r_n = %.6g", agent.buffer.reward_scale)
    if updates:
        if not agent.learning:
            if agent.buffer.length == 0:
                raise BagError("no transitions to learn from")
            # offline training on fewer than n_exp transitions: end the exploration phase over what there is
            scale = agent.start_learning()
            trainer.learning_start_step = trainer.total_steps
            log.info("offline updates on %d transitions (fewer than n_exp): reward scale r_n = %.6g",
                     agent.buffer.length, scale)
        for _ in range(int(updates)):
            agent.update()
    return n


# ---------------------------------------------------------------------------------------------- policy re-run
@dataclass
class RerunResult:
    """Recorded actions vs the checkpoint actor's noise-free actions on the same observations."""
    samples: int
    act_dim: int
    checkpoint: str
    checkpoint_version: int
    source: str                              # "transitions" | "env_step+joint_commands"
    mean_abs_diff: list[float]
    rms_diff: list[float]
    max_abs_diff: list[float]
    mean_diff: list[float]                   # recorded - re-run (bias)
    correlation: list[float]
    policy_sigma: list[float]                # mean σ of the re-run actor per joint (its exploration scale)
    overall_mean_abs_diff: float
    damage: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def table(self) -> str:
        lines = [f"policy re-run: {self.samples} observations from {self.source}, checkpoint {self.checkpoint} "
                 f"(version {self.checkpoint_version})",
                 f"{'joint':>5} {'mean|Δ|':>9} {'rms Δ':>9} {'max|Δ|':>9} {'bias':>9} {'corr':>7} {'σ':>7}"]
        for j in range(self.act_dim):
            lines.append(f"{j:5d} {self.mean_abs_diff[j]:9.4f} {self.rms_diff[j]:9.4f} {self.max_abs_diff[j]:9.4f} "
                         f"{self.mean_diff[j]:9.4f} {self.correlation[j]:7.3f} {self.policy_sigma[j]:7.3f}")
        lines.append(f"overall mean |Δ| {self.overall_mean_abs_diff:.4f} (recorded actions include the exploration "
                     "noise of the policy that acted)")
        return "\n".join(lines)


def _observations_actions(bags, robot: str | None, obs_dim: int, act_dim: int
                          ) -> tuple[np.ndarray, np.ndarray, str, list[str]]:
    readers = _readers(bags)
    damage = [d for r in readers for d in r.damage]
    obs, acts = [], []
    for t in iter_transitions(readers, robot=robot):
        obs.append(t.observation)
        acts.append(t.action)
    if obs:
        return np.stack(obs), np.stack(acts), "transitions", damage
    # no transitions: pair each env_step with the next joint command of the same namespace
    for r in readers:
        for ns_step in r.topic_names(msgtype=ENV_STEP):
            ns = ns_step.rstrip("/").rsplit("/", 1)[0]
            cmd_topic = f"{ns}/joint_commands"
            if cmd_topic not in r.topics:
                continue
            pending = None
            prev_cmd = np.zeros(act_dim, np.float32)
            for m, msg in r.decoded([ns_step, cmd_topic]):
                if m.topic == ns_step:
                    if msg.step == 0:
                        prev_cmd = np.zeros(act_dim, np.float32)
                    if msg.terminated or msg.truncated:
                        pending = None
                        continue
                    pending = np.asarray(msg.observation, np.float32)
                elif pending is not None:
                    a = np.asarray(msg.data, np.float32)
                    x = pending if pending.size == obs_dim else np.concatenate([prev_cmd, pending])
                    if x.size == obs_dim and a.size == act_dim:
                        obs.append(x)
                        acts.append(a)
                    prev_cmd, pending = a, None
    if not obs:
        raise BagError("the bag holds neither Transition messages nor env_step + joint_commands pairs of the "
                       f"checkpoint's sizes (obs_dim {obs_dim}, act_dim {act_dim})")
    return np.stack(obs), np.stack(acts), "env_step+joint_commands", damage


def rerun(bags, checkpoint: str | Path, *, robot: str | None = None, device: str = "cpu",
          batch: int = 8192) -> RerunResult:
    """Feed the bags' observations through the actor of ``checkpoint`` (an exported actor file or a training
    checkpoint) without noise and compare its actions with the recorded ones, per joint."""
    import torch
    from ..core.policy import load_actor_file
    actor, cfg, version = load_actor_file(checkpoint, device=device)
    actor.eval()
    obs, rec, source, damage = _observations_actions(bags, robot, actor.obs_dim, actor.act_dim)
    if obs.shape[1] != actor.obs_dim or rec.shape[1] != actor.act_dim:
        raise ValueError(f"the bag's observations/actions have sizes {obs.shape[1]}/{rec.shape[1]}; the "
                         f"checkpoint's actor expects obs_dim {actor.obs_dim}, act_dim {actor.act_dim}")
    outs, sigmas = [], []
    with torch.no_grad():
        for i in range(0, len(obs), batch):
            x = torch.as_tensor(obs[i:i + batch], device=device)
            a, sigma, _ = actor(x, act=1.0, noise=0.0)
            outs.append(a.cpu().numpy())
            sigmas.append(sigma.cpu().numpy())
    new = np.concatenate(outs).astype(np.float64)
    sig = np.concatenate(sigmas)
    rec64 = rec.astype(np.float64)
    d = rec64 - new
    corr = []
    for j in range(d.shape[1]):
        a, b = rec64[:, j], new[:, j]
        corr.append(float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan"))
    return RerunResult(len(obs), actor.act_dim, str(checkpoint), int(version), source,
                       np.abs(d).mean(0).tolist(), np.sqrt((d ** 2).mean(0)).tolist(), np.abs(d).max(0).tolist(),
                       d.mean(0).tolist(), corr, sig.mean(0).astype(float).tolist(), float(np.abs(d).mean()),
                       damage)
