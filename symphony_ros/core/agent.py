"""SymphonyAgent: the learner side of Symphony (networks, single-loss update, Fading Replay Buffer, state).

One update (docs/algorithm.md#loss), all three terms on the same fresh batch (s, a, r̂, s', g):

    a', σ', β' = actor(s')                 noisy, act = 1
    Q'  = Q_T(s', a')                      sorted, rank-weighted TARGET critic; gradient flows through a'
    y   = r̂ + g·stop_grad(Q')
    TA  = (Q' − m_t)/|m_t|,   m_t = α·m_{t−1} + (1−α)·stop_grad(Q')
    L   = −mean ReHAE(TA) + mean ReHSE(q(s, a) − y) + mean Swaddle(σ', β')

then one SymphonyAdam step on actor + critics and Polyak on the critics only.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .config import SymphonyConfig, from_dict
from .device import DeviceError, resolve_device  # noqa: F401 (re-exported)
from .losses import rehae, rehse, swaddling, swaddling_sigma_terms, temporal_advantage
from .networks import Actor, CriticEnsemble, GradientDropout, sorted_weighted_target
from .optimizer import SymphonyAdam
from .rank_weights import critic_target_weights
from .replay_buffer import FadingReplayBuffer
from .schedule import StepPlan, TrainingSchedule
from .storage import StorageRules, Transition


def _graphs_take_generators() -> bool:
    """Whether CUDA graphs can replay a user generator (PyTorch >= 2.4: CUDAGraph.register_generator_state)."""
    return hasattr(torch.cuda.CUDAGraph, "register_generator_state")


GOOD_STATE_EVERY = 500   # updates between copies of the last good state (taken only while healthy)


@dataclass
class UpdateStats:
    """Detached scalar tensors of the last update (converted to floats only when logged)."""
    critic_loss: torch.Tensor
    actor_loss: torch.Tensor
    swaddling_loss: torch.Tensor
    sigma_mean: torch.Tensor
    beta_mean: torch.Tensor
    q_mean: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


class SymphonyAgent:
    """Symphony learner. ``obs_dim``/``act_dim`` are the policy's sizes (with ``prev_action_in_obs`` the caller
    passes the augmented observation size). ``device``: "auto" | "cpu" | "cuda[:i]"."""

    def __init__(self, obs_dim: int, act_dim: int, config: SymphonyConfig, *, device: str | torch.device = "auto",
                 seed: int = 0, with_buffer: bool = True) -> None:
        self.config = cfg = config
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.device = resolve_device(device)
        torch.manual_seed(seed)  # network initialisation
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.actor = Actor(obs_dim, act_dim, cfg.hidden_dim, noise_clip=cfg.noise_clip,
                           grad_dropout_keep=cfg.grad_dropout_keep, sigma_beta_clamp=cfg.sigma_beta_clamp,
                           a_max=cfg.a_max).to(self.device)
        self.critic = CriticEnsemble(obs_dim + act_dim, cfg.hidden_dim, cfg.heads_per_critic, cfg.n_critics,
                                     cfg.grad_dropout_keep).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        if not cfg.target_grad_dropout:
            # no forward effect, and with target_grad_dropout off its masks would not touch the actor gradient
            # either: skip it in the target (docs/algorithm.md#target-grad-dropout)
            self.critic_target.dropout = None
        graph_rng = self.generator if _graphs_take_generators() else None   # else only the default CUDA RNG
        for m in list(self.actor.modules()) + list(self.critic.modules()) + list(self.critic_target.modules()):
            if isinstance(m, (GradientDropout, Actor)):
                m.generator = graph_rng if (cfg.cuda_graph and self.device.type == "cuda") else self.generator
        self.optimizer = SymphonyAdam(list(self.actor.parameters()) + list(self.critic.parameters()), lr=cfg.lr,
                                      betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps,
                                      weight_decay=cfg.weight_decay, anneal_eps=cfg.adam_eps_anneal)
        self._critic_params = list(self.critic.parameters())
        self._params = list(self.actor.parameters()) + self._critic_params
        self._target_params = list(self.critic_target.parameters())
        self.target_weights = critic_target_weights(self.critic.n_q, cfg.target_weight_family,
                                                    cfg.target_weight_power).float().to(self.device)
        self.m = torch.zeros((), device=self.device)   # EMA of the target value carried between updates
        # the update guard (docs/algorithm.md#optimizer): device-side counters, read by guard()
        self._skipped = torch.zeros((), dtype=torch.long, device=self.device)   # updates skipped (non-finite)
        self._bad_run = torch.zeros((), dtype=torch.long, device=self.device)   # skipped in a row, now
        self.restores = 0
        self._good: list[torch.Tensor] | None = None    # copies of the last state known good
        self._good_at = -GOOD_STATE_EVERY
        self._graph: "torch.cuda.CUDAGraph | None" = None
        self._graph_stats: UpdateStats | None = None
        if self._graph_mode and not _graphs_take_generators():
            torch.cuda.manual_seed(seed)   # the graph's fallback RNG is the device's default generator
        self.updates = 0
        self.schedule = TrainingSchedule(cfg)
        self.storage_rules = StorageRules.from_config(cfg, self.obs_dim, self.act_dim)
        self.buffer = FadingReplayBuffer(
            obs_dim, act_dim, cfg.n_exp, cfg.buffer_times, family=cfg.buffer_weight_family,
            power=cfg.buffer_weight_power, terminal_survival_cycles=cfg.terminal_survival_cycles,
            dtype=cfg.buffer_dtype, device=self.device, gamma=cfg.gamma,
            reward_scale_eps=cfg.reward_scale_eps) if with_buffer else None

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: Any, *, act: float = 1.0, noise: float = 1.0) -> np.ndarray:
        """One action for one observation (S,) → (d,) float32 in [−a_max, a_max]."""
        s = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device).reshape(1, -1)
        a, _, _ = self.actor(s, act=act, noise=noise)
        return a[0].cpu().numpy()

    @torch.no_grad()
    def sigma_beta(self, states: Any) -> tuple[float, float]:
        """The actor's mean σ and mean β (over states and action dims) for policy inputs ``states`` (n, S)."""
        s = torch.as_tensor(np.asarray(states, dtype=np.float32), device=self.device).reshape(-1, self.obs_dim)
        _, sigma, beta = self.actor(s, act=1.0, noise=0.0)
        return float(sigma.float().mean()), float(beta.float().mean())

    @property
    def learning(self) -> bool:
        """False during the exploration phase (no updates; the untrained actor explores with noise)."""
        return self.buffer is not None and self.buffer.filled

    def observe(self, t: Transition) -> StepPlan:
        """Store one validated transition by the loop rules (core/schedule.py) and say what is owed for it.

        During exploration the transition is stored raw; the one that brings the buffer to ``n_exp`` ends the
        exploration phase (:meth:`start_learning`). Once learning, the plan owes G updates (lockstep callers run
        them with :meth:`update`; async callers follow :meth:`TrainingSchedule.updates_owed` instead).
        :class:`~symphony_ros.core.storage.InvalidTransition` (float16 overflow) leaves everything unchanged."""
        assert self.buffer is not None, "this agent was built without a buffer"
        learning = self.learning
        self.buffer.add(t)
        started = False
        if not learning and self.schedule.exploration_over(self.buffer.length):
            self.start_learning()
            started = True
        return self.schedule.plan(started, learning)

    def start_learning(self) -> float:
        """End of exploration: freeze the reward scale and fill the buffer (docs/algorithm.md#norm-fill). Returns r̄ₙ."""
        assert self.buffer is not None
        return self.buffer.norm_fill()

    # ------------------------------------------------------------------ learning
    def _autocast(self):
        if self.config.bf16_autocast:
            # the autocast weight cache must be off inside CUDA graphs (cached casts would be stale on replay)
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                                  cache_enabled=not self._graph_mode)
        return contextlib.nullcontext()

    def update(self) -> UpdateStats:
        """One gradient update on a fresh batch (docs/algorithm.md#loss) + Polyak on the critics
        (docs/algorithm.md#optimizer).

        With ``cuda_graph`` on a CUDA device the whole update (sampling, forward, backward, optimizer, Polyak) is
        captured once and replayed: same maths, one launch instead of hundreds. The returned stats tensors are then
        overwritten by the next update; read them before calling ``update`` again."""
        if self._graph_mode:
            if self._graph is None:
                self._capture_update()
            self._graph.replay()
            stats = self._graph_stats
        else:
            stats = self._update_body(self.generator)
        self.updates += 1
        return stats

    def _update_body(self, generator: torch.Generator | None) -> UpdateStats:
        """The update itself, written only with tensor ops on persistent tensors (so it can be graph-captured)."""
        cfg = self.config
        assert self.buffer is not None
        s, a, r, s2, g = self.buffer.sample(cfg.batch_size, generator)
        with self._autocast():
            a2, sigma, beta = self.actor(s2, act=1.0, noise=1.0)
            q_next = sorted_weighted_target(self.critic_target(s2, a2).float(), self.target_weights)   # Q'(s', a')
            bootstrap = q_next.detach()
            if cfg.swaddling_in_target:   # opt-in: docs/algorithm.md#opt-swaddling-in-target
                bootstrap = bootstrap - swaddling_sigma_terms(sigma.float(), beta.float()).mean(-1, keepdim=True
                                                                                               ).detach()
            y = r + g * bootstrap                                                                       # TD target
            q = self.critic(s, a).float()
        ta, m_t = temporal_advantage(q_next, self.m, cfg.ema_alpha, cfg.ta_eps,
                                     scalar_denominator=cfg.ta_scalar_denominator)
        actor_loss = -rehae(ta).mean()
        critic_loss = rehse(q - y).mean()
        swaddling_loss = swaddling(sigma.float(), beta.float()).mean()
        loss = actor_loss + critic_loss + swaddling_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            # update guard: a NaN/Inf loss or gradient (absurd input, overflow) skips this update entirely
            grads = [p.grad for p in self._params if p.grad is not None]
            finite = torch.isfinite(loss) & torch.isfinite(torch.stack(torch._foreach_norm(grads)).sum())
            gate = finite.float()
            self.optimizer.step(gate=gate)
            torch._foreach_lerp_(self._target_params, self._critic_params,     # θ_T ← (1−τ)θ_T + τθ
                                 [gate * cfg.tau] * len(self._target_params))
            self.m.copy_(torch.where(finite, m_t.mean(), self.m))
            bad = (~finite).long()
            self._skipped.add_(bad)
            self._bad_run.mul_(bad).add_(bad)
        return UpdateStats(critic_loss.detach(), actor_loss.detach(), swaddling_loss.detach(),
                           sigma.detach().mean(), beta.detach().mean(), q_next.detach().mean())

    @property
    def _graph_mode(self) -> bool:
        return self.config.cuda_graph and self.device.type == "cuda"

    def _capture_update(self) -> None:
        """Warm up on a side stream, restore the exact pre-warm-up state, then capture one update.

        Random numbers inside the graph come from the agent's own generator, registered with the graph (PyTorch
        >= 2.4), or else from the device's default CUDA generator, seeded from the agent's seed; both are
        checkpointed with the agent."""
        gen = self.generator if _graphs_take_generators() else None
        params = [t for m in (self.actor, self.critic, self.critic_target) for t in m.state_dict().values()]
        saved = [t.detach().clone() for t in params]
        saved_m, saved_rng = self.m.clone(), torch.cuda.get_rng_state(self.device)
        saved_guard = self._skipped.clone(), self._bad_run.clone()
        saved_gen = self.generator.get_state()
        had_state = {id(p): {k: v.clone() for k, v in st.items() if torch.is_tensor(v)}
                     for p, st in self.optimizer.state.items()}
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self._update_body(gen)
        torch.cuda.current_stream(self.device).wait_stream(side)
        with torch.no_grad():
            for t, v in zip(params, saved):
                t.copy_(v)
            self.m.copy_(saved_m)
            self._skipped.copy_(saved_guard[0])
            self._bad_run.copy_(saved_guard[1])
            for p, st in self.optimizer.state.items():
                for k, v in st.items():
                    if torch.is_tensor(v):
                        v.copy_(had_state[id(p)][k]) if id(p) in had_state else v.zero_()
        torch.cuda.set_rng_state(saved_rng, self.device)
        self.generator.set_state(saved_gen)
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        if gen is not None:
            graph.register_generator_state(gen)
        with torch.cuda.graph(graph):
            self._graph_stats = self._update_body(gen)
        self._graph = graph

    # ------------------------------------------------------------------ update guard
    def health(self) -> tuple[int, int]:
        """(updates skipped because the loss or a gradient was NaN/Inf, how many of the latest were in a row).
        Reads device counters: one synchronisation."""
        return int(self._skipped), int(self._bad_run)

    def finite_parameters(self) -> bool:
        """True if every parameter of the actor and the critics (and their targets) is finite."""
        with torch.no_grad():
            return all(bool(torch.isfinite(p).all()) for p in self._guarded())

    def _guarded(self) -> list[torch.Tensor]:
        opt = [t for st in self.optimizer.state.values() for t in st.values() if torch.is_tensor(t)]
        return [p.data for p in self._params] + [p.data for p in self._target_params] + opt + [self.m]

    def guard(self, max_bad_run: int) -> str | None:
        """The update guard's host side (call it every few updates): after ``max_bad_run`` skipped updates in a row,
        restore the last good state (parameters, targets, optimizer moments, EMA) and return a line saying so; while
        healthy, remember the state every ``GOOD_STATE_EVERY`` updates. Returns None when there is nothing to say."""
        _, run = self.health()
        if run >= max(1, int(max_bad_run)):
            self._bad_run.zero_()
            if self._good is None:
                return (f"{run} updates in a row had a non-finite loss or gradient and no good state is known yet; "
                        "the updates stay skipped until the data is sane again")
            with torch.no_grad():
                for t, g in zip(self._guarded(), self._good):
                    t.copy_(g)
            self.restores += 1
            return (f"{run} updates in a row had a non-finite loss or gradient: restored the last good state (from "
                    f"update {self._good_at}); restores so far: {self.restores}")
        if run == 0 and self.updates - self._good_at >= GOOD_STATE_EVERY and self.finite_parameters():
            with torch.no_grad():
                self._good = [t.detach().clone() for t in self._guarded()]
            self._good_at = self.updates
        return None

    # ------------------------------------------------------------------ state
    def state_dict(self, *, include_buffer: bool = True) -> dict[str, Any]:
        """Everything needed to continue training as if never stopped: networks, optimizer, EMA, counters, random
        generators and (``include_buffer``) the whole replay buffer. Checkpoints leave the buffer out and save it
        incrementally instead (core/buffer_store.py)."""
        return dict(
            format="symphony_ros.agent/1", obs_dim=self.obs_dim, act_dim=self.act_dim,
            config=self.config.to_dict(), actor=self.actor.state_dict(), critic=self.critic.state_dict(),
            critic_target=self.critic_target.state_dict(), optimizer=self.optimizer.state_dict(),
            m=self.m.detach().cpu(), updates=self.updates, generator=self.generator.get_state(),
            guard=dict(skipped=int(self._skipped), bad_run=int(self._bad_run), restores=self.restores),
            cuda_rng=torch.cuda.get_rng_state(self.device) if self._graph_mode else None,
            buffer=self.buffer.state_dict() if self.buffer is not None and include_buffer else None,
        )

    def load_state_dict(self, sd: dict[str, Any], *, load_buffer: bool = True) -> None:
        if sd.get("format") != "symphony_ros.agent/1":
            raise ValueError(f"not a symphony_ros agent state (format {sd.get('format')!r})")
        if (sd["obs_dim"], sd["act_dim"]) != (self.obs_dim, self.act_dim):
            raise ValueError(f"checkpoint is for obs_dim={sd['obs_dim']}, act_dim={sd['act_dim']}; this agent has "
                             f"obs_dim={self.obs_dim}, act_dim={self.act_dim}")
        saved = from_dict(sd["config"])
        for key in ("hidden_dim", "heads_per_critic", "n_critics"):
            if getattr(saved, key) != getattr(self.config, key):
                raise ValueError(f"checkpoint network '{key}'={getattr(saved, key)} differs from the configured "
                                 f"{getattr(self.config, key)}; load it with the preset it was trained with")
        self.actor.load_state_dict(sd["actor"])
        self.critic.load_state_dict(sd["critic"])
        self.critic_target.load_state_dict(sd["critic_target"])
        self.optimizer.load_state_dict(sd["optimizer"])
        self.m.copy_(sd["m"].to(self.device))
        self.updates = int(sd["updates"])
        guard = sd.get("guard") or {}
        self._skipped.fill_(int(guard.get("skipped", 0)))
        self._bad_run.fill_(int(guard.get("bad_run", 0)))
        self.restores = int(guard.get("restores", 0))
        self._good, self._good_at = None, -GOOD_STATE_EVERY
        try:
            self.generator.set_state(sd["generator"])
        except RuntimeError:   # a checkpoint from another device type (CUDA <-> CPU): same seed lineage, new stream
            self.generator.manual_seed(int(torch.as_tensor(sd["generator"]).long().sum()))
        if self._graph_mode and sd.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(sd["cuda_rng"], self.device)
        self._graph = None   # optimizer.load_state_dict made new state tensors: capture again on the next update
        if load_buffer and self.buffer is not None and sd.get("buffer") is not None:
            self.buffer.load_state_dict(sd["buffer"])
