"""The paper's loop rules, in one place (docs/algorithm.md#training-loop): when exploration ends, how many updates a
stored transition owes, how the actor head's gains are set for a step (the simulation-only zero-policy window), and
when an evaluation is due.

Every front-end follows these rules by calling :class:`TrainingSchedule` (usually through
:meth:`symphony_ros.core.agent.SymphonyAgent.observe`): the headless trainer, the learner engine (lockstep and
async) and training from bags.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .config import SymphonyConfig


@dataclass(frozen=True)
class StepPlan:
    """What :meth:`SymphonyAgent.observe` asks the caller to do after storing one transition.

    ``learning_started``: this transition completed the exploration phase (the reward scale is now frozen and the
    buffer filled); ``updates``: gradient updates owed for it in lockstep (G once learning, 0 while exploring)."""
    learning_started: bool
    updates: int


class TrainingSchedule:
    """The loop rules of one :class:`SymphonyConfig`.

    * Exploration: the first ``n_exp`` stored transitions come from the untrained actor with noise; no updates. The
      transition that brings the buffer to ``n_exp`` ends exploration (norm_fill, frozen r̄ₙ).
    * Updates: lockstep owes G = ``updates_per_step`` updates per transition stored after exploration; async aims
      at ``utd_target`` updates per such transition (:meth:`updates_owed`).
    * Acting: :meth:`execution_gains` (the zero-policy window exists in simulation only).
    * Evaluation: :meth:`evaluation_due`.
    """

    def __init__(self, config: SymphonyConfig) -> None:
        self.config = config
        self.n_exp = int(config.n_exp)
        self.updates_per_step = int(config.updates_per_step)

    # ------------------------------------------------------------------ exploration and updates
    def exploration_over(self, stored_in_buffer: int) -> bool:
        """True once the buffer holds ``n_exp`` transitions (the exploration phase is complete)."""
        return stored_in_buffer >= self.n_exp

    def plan(self, learning_started: bool, learning: bool) -> StepPlan:
        """The plan for a transition just stored (``learning``: whether it was stored as a learning-phase one)."""
        return StepPlan(learning_started, self.updates_per_step if learning else 0)

    @staticmethod
    def updates_owed(stored_since_learning: int, utd_target: float) -> int:
        """Async mode: total updates owed after ``stored_since_learning`` transitions, ceil(utd_target·n)."""
        return int(math.ceil(utd_target * stored_since_learning - 1e-9))

    # ------------------------------------------------------------------ acting
    def execution_gains(self, step: int, *, learning: bool, simulation: bool, deterministic: bool,
                        deploy: bool = False, episode_limit: int | None = None) -> tuple[float, float]:
        """(act, noise) gains of ``a = a_max·tanh(act·σ⊙A + noise·ε)`` for the action taken at ``step`` (0 = the
        observation right after reset):

        * before learning (exploration with the untrained actor): (1, 1);
        * learning, SIMULATION ONLY, ``step + 1 ≥ episode_limit − zero_policy_window``: (0, 1), pure bounded noise
          so the agent falls and terminal transitions are collected. Never on hardware;
        * learning otherwise: (1, 0) if ``deterministic`` (noise-free execution for hardware) else (1, 1);
        * ``deploy`` (a fixed, exported policy, no learner): always (1, 0), the policy's mean action.

        The window rule is the reference's ``for steps in range(1, limit + 1): active = steps < limit − 50`` with
        its 1-based step: 51 noise-only steps for a window of 50 (docs/algorithm.md#zero-policy-window).

        ``episode_limit``: the episode's time limit in steps (None: ``config.episode_limit``; the headless trainer
        passes the environment's own limit). The window applies only when it is shorter than the limit (a 50-step
        Reacher episode with a 50-step window is acted by the policy, not by noise alone).
        """
        cfg = self.config
        if deploy:
            return 1.0, 0.0
        if not learning:
            return 1.0, 1.0
        window = cfg.zero_policy_window
        limit = cfg.episode_limit if episode_limit is None else int(episode_limit)
        if simulation and 0 < window < limit and step + 1 >= limit - window:
            return 0.0, 1.0
        return 1.0, 0.0 if deterministic else 1.0

    # ------------------------------------------------------------------ evaluation
    def evaluation_due(self, steps_done: int, learning: bool, last_evaluated_step: int | None) -> bool:
        """Whether a noise-free evaluation runs now, ``steps_done`` steps (or stored transitions) into the run: once
        learning, whenever a multiple of ``eval_every`` has been reached that no evaluation covered yet
        (``last_evaluated_step``: the step of the newest evaluation, None if none). As in the reference, whose step
        counter counts the step about to be taken, the evaluation runs before the step whose 1-based index is a
        multiple of ``eval_every`` (after 2,499 executed steps, then every 2,500; docs/algorithm.md#evaluation). A
        caller that checks before every step evaluates exactly there; one that polls (the embedded graph) at the
        first poll past it."""
        cfg = self.config
        k = (steps_done + 1) // cfg.eval_every
        if not learning or cfg.eval_episodes <= 0 or k < 1:
            return False
        return last_evaluated_step is None or k > (last_evaluated_step + 1) // cfg.eval_every

    def final_evaluation_due(self, steps_done: int, learning: bool, last_evaluated_step: int | None) -> bool:
        """At the end of a run that was not interrupted: one more evaluation unless one ran at this very step."""
        return learning and self.config.eval_episodes > 0 and last_evaluated_step != steps_done
