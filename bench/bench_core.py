#!/usr/bin/env python3
"""Benchmark of the Symphony learner core (symphony_ros.core) at Humanoid-v5 sizes (obs 348, act 17).

What it measures (all in one run, see bench/README.md):

1. Per environment step with a FULL replay buffer: insertion + G × (sampling + update), for S3 and ED, side by side
   with a PLAIN implementation of the same maths that lives in this file only (three separate FeedForward critics,
   torch.multinomial over all N buffer probabilities per batch, a reference-style torch.roll of the whole storage on
   every insert, a per-parameter Python-loop Adam without foreach and a per-parameter Polyak loop).
   Breakdown per component (insert, sample, update) and the ratio plain/ours (= speed-up of ours).
2. Updates/s (batch 384 for S3, 288 for ED) in float32, with bf16 autocast (config field ``bf16_autocast``) and,
   unless --no-compile, with torch.compile of the networks (on CUDA also the package's ``cuda_graph`` update when
   the config has that field); achieved GFLOP/s and its fraction of this machine's
   matmul peak, measured in the same run (torch.mm of 2048×2048 on CPU, 8192×8192 on CUDA; median of several).
3. Component micro-benchmarks: fused critic ensemble vs three separate critics (forward+backward), inverse-CDF vs
   multinomial sampling, foreach SymphonyAdam vs Python-loop Adam, foreach Polyak vs loop.
4. Memory of the S3 buffer (float32) and the ED buffer (float16) for Humanoid-v5.
5. A correctness check (always run first; --check runs only it): from the same weights, the same batch and the same
   noise tensor, one SymphonyAgent.update() and one plain update give the same loss (to 1e-4) and the same weights.

FLOP count (analytic, matmuls only; a multiply-add counts 2 FLOP; LayerNorm, ReSine, sort and the optimizer are
not counted). With F(f_in, h, f_out) = 2·(f_in·h + h·h + h·f_out) the forward FLOP of one FeedForward per sample,
F_actor = F(S, h, 3d) and F_critics = n·F(S+d, h, k):

    conventional (docs/algorithm.md#parameter-counts, backward ≈ 2× forward):  FLOP/update = 3·B·(F_actor + 2·F_critics)
    tight (the target critic needs only input gradients):       FLOP/update = B·(3·F_actor + 2·F_critics + 3·F_critics)

GFLOP/s and "% of peak" use the conventional count; the tight count is in the JSON.

Usage:  python bench/bench_core.py [--device auto|cpu|cuda] [--presets s3,ed] [--steps 5] [--quick]
                                   [--json PATH] [--check] [--no-compile]
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # lets the bench run from a plain checkout (e.g. the GPU machine) too
    sys.path.insert(0, str(ROOT))

from symphony_ros.core import FeedForward, SymphonyAgent, load_preset, resolve_device  # noqa: E402
from symphony_ros.core.noise import bounded_noise  # noqa: E402

OBS_DIM, ACT_DIM = 348, 17           # Humanoid-v5
TERMINAL_RATE = 0.02                 # share of terminal transitions in the synthetic data


# ================================================================================================================
# PLAIN IMPLEMENTATION — bench-only reference, NOT used by the package.
# The same maths as symphony_ros.core (docs/algorithm.md), written the straightforward way of the reference code
# (SuspensionRailway/symphony): separate modules, per-parameter loops, a rolled buffer and a multinomial sampler.
# ================================================================================================================

class PlainRollBuffer:
    """Five separate storage tensors; a new transition is written at N−1 and every tensor is torch.roll'ed left by 1
    (by 2 when the oldest transition is terminal) on every insert; sampling is torch.multinomial over N weights."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, dtype: torch.dtype, device: torch.device,
                 power: float = math.e) -> None:
        self.capacity, self.dtype, self.device = capacity, dtype, device
        z = lambda w: torch.zeros((capacity, w), dtype=dtype, device=device)  # noqa: E731
        self.states, self.actions, self.rewards = z(obs_dim), z(act_dim), z(1)
        self.next_states, self.not_dones_gamma = z(obs_dim), z(1)
        k = torch.arange(capacity, device=device) / capacity                       # oldest k = 0
        weights = torch.tanh((math.pi * k) ** power)
        self.probs = weights / weights.sum()                                       # float32, like the reference
        self.norm = 1.0
        self.gamma = 0.99

    def load_packed(self, packed: torch.Tensor, cols: tuple[slice, ...], ptr: int) -> None:
        """Copy the content of a filled packed buffer, re-ordered oldest-first."""
        order = (torch.arange(self.capacity, device=packed.device) + ptr) % self.capacity
        rows = packed.index_select(0, order)
        for dst, c in zip((self.states, self.actions, self.rewards, self.next_states, self.not_dones_gamma), cols):
            dst.copy_(rows[:, c])
        del rows

    def add(self, state, action, reward: float, next_state, terminated: bool) -> None:
        idx, dev, dt = self.capacity - 1, self.device, self.dtype
        self.states[idx, :] = torch.tensor(state, dtype=dt, device=dev)
        self.actions[idx, :] = torch.tensor(action, dtype=dt, device=dev)
        self.rewards[idx, :] = torch.tensor([reward / self.norm], dtype=dt, device=dev)
        self.next_states[idx, :] = torch.tensor(next_state, dtype=dt, device=dev)
        self.not_dones_gamma[idx, :] = torch.tensor([self.gamma * (1.0 - float(terminated))], dtype=dt, device=dev)
        shift = 2 if self.not_dones_gamma[0, :].item() == 0.0 else 1
        self.states = torch.roll(self.states, shifts=-shift, dims=0)
        self.actions = torch.roll(self.actions, shifts=-shift, dims=0)
        self.rewards = torch.roll(self.rewards, shifts=-shift, dims=0)
        self.next_states = torch.roll(self.next_states, shifts=-shift, dims=0)
        self.not_dones_gamma = torch.roll(self.not_dones_gamma, shifts=-shift, dims=0)

    def sample(self, batch_size: int, generator: torch.Generator | None = None):
        idx = torch.multinomial(self.probs, num_samples=batch_size, replacement=True, generator=generator)
        return (self.states[idx].float(), self.actions[idx].float(), self.rewards[idx].float(),
                self.next_states[idx].float(), self.not_dones_gamma[idx].float())


class PlainAdam:
    """AdamW without bias correction (docs/algorithm.md#optimizer), one parameter at a time, no foreach:
    m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  θ ← θ − lr·(m/(√v + ε) + λ·θ)."""

    def __init__(self, params, lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> None:
        self.params = list(params)
        self.lr, (self.beta1, self.beta2), self.eps, self.wd = lr, betas, eps, weight_decay
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            g = p.grad
            if id(p) not in self.state:
                self.state[id(p)] = (torch.zeros_like(p), torch.zeros_like(p))
            m, v = self.state[id(p)]
            m.mul_(self.beta1).add_(g, alpha=1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            p.add_(m / (v.sqrt() + self.eps) + self.wd * p, alpha=-self.lr)


class PlainSymphony:
    """Actor FeedForward(S, h, 3d), three separate critics FeedForward(S+d, h, k) and their target copies, the
    single loss (docs/algorithm.md#loss) written out term by term, PlainAdam and a per-parameter Polyak loop."""

    def __init__(self, obs_dim: int, act_dim: int, cfg, device: torch.device, buffer: PlainRollBuffer | None) -> None:
        if cfg.grad_dropout_keep is not None:
            raise ValueError("the plain reference implements presets without gradient dropout only (s3, se, ed)")
        self.cfg, self.device, self.buffer, self.act_dim = cfg, device, buffer, act_dim
        h = cfg.hidden_dim
        self.actor = FeedForward(obs_dim, h, 3 * act_dim).to(device)
        self.critics = [FeedForward(obs_dim + act_dim, h, cfg.heads_per_critic).to(device)
                        for _ in range(cfg.n_critics)]
        self.targets = [copy.deepcopy(c).requires_grad_(False) for c in self.critics]
        n_q = cfg.n_critics * cfg.heads_per_critic
        i = torch.arange(n_q, dtype=torch.float64) / n_q
        w = torch.tanh((math.pi * (1 - i)) ** cfg.target_weight_power)           # tanh family (s3, se, ed)
        self.probs = (w / w.sum()).float().to(device)
        self.m = torch.zeros((), device=device)
        params = list(self.actor.parameters()) + [p for c in self.critics for p in c.parameters()]
        self.optimizer = PlainAdam(params, cfg.lr, (cfg.adam_beta1, cfg.adam_beta2), cfg.adam_eps, cfg.weight_decay)

    def copy_into(self, agent: SymphonyAgent) -> None:
        """Give a SymphonyAgent exactly these weights (actor, fused online critics, fused target critics)."""
        agent.actor.net.load_state_dict(self.actor.state_dict())
        agent.critic.load_blocks(self.critics)
        agent.critic_target.load_blocks(self.targets)

    def noise(self, generator: torch.Generator | None) -> torch.Tensor:
        k = self.cfg.noise_clip
        return torch.randn((self.cfg.batch_size, self.act_dim), device=self.device, generator=generator
                           ).clamp(-k, k) / k

    def actor_forward(self, s: torch.Tensor, eps: torch.Tensor):
        """a = a_max·tanh(σ⊙A + ε) with act = 1 and the given noise ε; returns a, clamped σ, clamped β."""
        asb = torch.tanh(self.actor(s) / 2)
        d, c = self.act_dim, self.cfg.sigma_beta_clamp
        A, S, B = asb[:, :d], asb[:, d:2 * d].abs(), asb[:, 2 * d:].abs()
        a = self.cfg.a_max * torch.tanh(S * A + eps)
        return a, S.clamp(c, 1 - c), B.clamp(c, 1 - c)

    @staticmethod
    def critic_forward(nets, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = torch.cat([s, a], -1)
        return torch.cat([net(x) for net in nets], dim=-1)

    def loss(self, batch, eps: torch.Tensor):
        """The single loss (docs/algorithm.md#loss); returns (loss, actor term, critic term, swaddling term, m_t)."""
        cfg = self.cfg
        s, a, r, s2, g = batch
        a2, sigma, beta = self.actor_forward(s2, eps)
        q_next = (torch.sort(self.critic_forward(self.targets, s2, a2), dim=-1).values * self.probs
                  ).sum(-1, keepdim=True)
        y = r + g * q_next.detach()
        q = self.critic_forward(self.critics, s, a)
        m_t = cfg.ema_alpha * self.m + (1 - cfg.ema_alpha) * q_next.detach()
        ta = (q_next - m_t) / m_t.abs().clamp_min(cfg.ta_eps)
        actor_term = -(ta.abs() * torch.tanh(ta / 2)).mean()                      # −ReHAE
        e = q - y
        critic_term = (e * torch.tanh(e / 2)).mean()                             # ReHSE
        Omega = lambda x: torch.log((1 + x) / (1 - x))                           # noqa: E731
        sw_term = (Omega(sigma ** (1 / beta.detach())) + beta * sigma * torch.log(sigma) + Omega(beta ** 2)).mean()
        return actor_term + critic_term + sw_term, actor_term, critic_term, sw_term, m_t

    def update_on(self, batch, eps: torch.Tensor) -> torch.Tensor:
        loss, *_, m_t = self.loss(batch, eps)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.polyak()
        self.m = m_t.mean().detach()
        return loss.detach()

    @torch.no_grad()
    def polyak(self) -> None:
        tau = self.cfg.tau
        for tnet, net in zip(self.targets, self.critics):
            for tp, p in zip(tnet.parameters(), net.parameters()):
                tp.copy_((1 - tau) * tp + tau * p)

    def update(self, generator: torch.Generator | None = None) -> torch.Tensor:
        assert self.buffer is not None
        batch = self.buffer.sample(self.cfg.batch_size, generator)
        return self.update_on(batch, self.noise(generator))

# ================================================================================================================
# end of the plain reference
# ================================================================================================================


# ---------------------------------------------------------------------------------------------------------------- utils
class Clock:
    """perf_counter with a CUDA synchronize before each reading (regions are timed end to end)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


def median_time(clock: Clock, fn: Callable[[], Any], reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = clock()
        fn()
        ts.append(clock() - t0)
    return statistics.median(ts)


def paired_times(clock: Clock, fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 1
                 ) -> dict[str, list[float]]:
    """Time several functions round-robin (a, b, a, b, ...) so that bursts of load from other processes on a
    shared machine hit all of them alike. Returns the list of times (s) per function."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = clock()
            fn()
            ts[k].append(clock() - t0)
    return ts


def machine_info(device: torch.device) -> dict[str, Any]:
    from _machine import cpu_model
    cpu = cpu_model()
    info = dict(cpu_model=cpu, cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
                torch_version=torch.__version__, python=platform.python_version(), platform=platform.platform(),
                cpu_capability=getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")(),
                device=str(device), device_name=cpu)
    try:
        info["mem_total_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError):
        pass
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(device_name=p.name, cuda_version=torch.version.cuda, gpu_mem_gib=round(p.total_memory / 2 ** 30, 1),
                    gpu_sm_count=p.multi_processor_count,
                    allow_tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
    return info


def matmul_peak(device: torch.device, clock: Clock, reps: int) -> dict[str, float]:
    """Median GFLOP/s of a large square torch.mm in float32 and bfloat16."""
    n = 8192 if device.type == "cuda" else 2048
    out: dict[str, float] = dict(n=n)
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b, c = (torch.randn(n, n, device=device, dtype=dt) for _ in range(3))
        t = median_time(clock, lambda: torch.mm(a, b, out=c), reps, warmup=2)
        out[f"{name}_gflops"] = 2 * n ** 3 / t / 1e9
    return out


def ff_flops(f_in: int, h: int, f_out: int) -> int:
    """Forward matmul FLOP of one FeedForward per sample (multiply-add = 2)."""
    return 2 * (f_in * h + h * h + h * f_out)


def update_flops(cfg, S: int = OBS_DIM, d: int = ACT_DIM) -> dict[str, float]:
    h, k, n, B = cfg.hidden_dim, cfg.heads_per_critic, cfg.n_critics, cfg.batch_size
    fa, fc = ff_flops(S, h, 3 * d), n * ff_flops(S + d, h, k)
    conv = 3 * (fa + 2 * fc)
    tight = 3 * fa + 2 * fc + 3 * fc
    return dict(actor_fwd_per_sample=fa, critics_fwd_per_sample=fc, per_sample_conventional=conv,
                per_sample_tight=tight, per_update_conventional=B * conv, per_update_tight=B * tight,
                per_env_step_conventional=cfg.updates_per_step * B * conv)


def buffer_bytes(cfg, S: int = OBS_DIM, d: int = ACT_DIM) -> int:
    itemsize = 2 if cfg.buffer_dtype == "float16" else 4
    return cfg.buffer_capacity * (2 * S + d + 2) * itemsize


def fill_buffer(agent: SymphonyAgent, rng: np.random.Generator) -> None:
    """n_exp synthetic exploration transitions through the public API, then norm_fill (full buffer)."""
    buf = agent.buffer
    n = buf.n_exp
    S = rng.standard_normal((n, OBS_DIM), dtype=np.float32)
    A = rng.uniform(-1, 1, (n, ACT_DIM)).astype(np.float32)
    R = rng.uniform(0.5, 5.0, n)
    S2 = rng.standard_normal((n, OBS_DIM), dtype=np.float32)
    T = rng.random(n) < TERMINAL_RATE
    rules = agent.storage_rules
    for i in range(n):
        agent.observe(rules.check(S[i], A[i], R[i], S2[i], bool(T[i])))   # the n-th one ends exploration
    assert buf.filled


def make_transitions(rng: np.random.Generator, n: int) -> list[tuple]:
    return [(rng.standard_normal(OBS_DIM, dtype=np.float32), rng.uniform(-1, 1, ACT_DIM).astype(np.float32),
             float(rng.uniform(0.5, 5.0)), rng.standard_normal(OBS_DIM, dtype=np.float32),
             bool(rng.random() < TERMINAL_RATE)) for _ in range(n)]


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------------------------- check
def run_check(preset: str, device: torch.device, n_updates: int = 2) -> dict[str, Any]:
    """Same weights, same batch, same noise: SymphonyAgent.update() vs the plain update, n_updates times in a row
    (the second one also checks the EMA carry-over and the optimizer state). Small buffer, real network sizes."""
    cfg = load_preset(preset, dict(n_exp=600, buffer_times=2))
    agent = SymphonyAgent(OBS_DIM, ACT_DIM, cfg, device=device, seed=123)
    fill_buffer(agent, np.random.default_rng(7))
    torch.manual_seed(321)
    plain = PlainSymphony(OBS_DIM, ACT_DIM, cfg, device, buffer=None)
    plain.copy_into(agent)
    rows = []
    for _ in range(n_updates):
        state = agent.generator.get_state()
        batch = agent.buffer.sample(cfg.batch_size, agent.generator)     # the very draws update() will make
        eps = bounded_noise((cfg.batch_size, ACT_DIM), cfg.noise_clip, device=device, generator=agent.generator)
        agent.generator.set_state(state)
        st = agent.update()
        ours = dict(actor=float(st.actor_loss), critic=float(st.critic_loss), swaddling=float(st.swaddling_loss))
        ours["total"] = ours["actor"] + ours["critic"] + ours["swaddling"]
        loss, a_t, c_t, s_t, m_t = plain.loss(batch, eps)
        plain_vals = {k: v.item() for k, v in (("actor", a_t), ("critic", c_t), ("swaddling", s_t), ("total", loss))}
        plain.update_on(batch, eps)
        rows.append(dict(ours=ours, plain=plain_vals,
                         abs_diff=max(abs(ours[k] - plain_vals[k]) for k in ours)))
    # weights after n_updates (fused critic compared block by block)
    with torch.no_grad():
        ref = SymphonyAgent(OBS_DIM, ACT_DIM, cfg, device=device, with_buffer=False)
        plain.copy_into(ref)
        diffs = []
        for mine, theirs in ((agent.actor, ref.actor), (agent.critic, ref.critic),
                             (agent.critic_target, ref.critic_target)):
            for p, q in zip(mine.parameters(), theirs.parameters()):
                diffs.append((p - q).abs().max().item())
    tol = 1e-4
    loss_ok = all(r["abs_diff"] <= tol * max(1.0, abs(r["plain"]["total"])) for r in rows)
    w_diff = max(diffs)
    # one SymphonyAdam step moves a weight by at most ≈ lr·(1−β1)/√(1−β2) ≈ 5.4·lr; rounding-level gradient
    # differences on near-zero gradients can flip such a step, so the weight tolerance is a fraction of lr.
    w_ok = w_diff <= 0.5 * cfg.lr
    return dict(preset=preset, updates=rows, loss_tolerance=tol, loss_ok=loss_ok, max_weight_diff=w_diff,
                weight_tolerance=0.5 * cfg.lr, weights_ok=w_ok, ok=loss_ok and w_ok)


# ---------------------------------------------------------------------------------------------------------------- bench
def env_step_bench(agent: SymphonyAgent, plain: PlainSymphony, clock: Clock, warmup: int, steps: int,
                   rng: np.random.Generator) -> dict[str, Any]:
    """Per env step: insert + G × (sample + update). Timed steps of ours and plain alternate (shared, noisy CPU)."""
    cfg = agent.config
    G = cfg.updates_per_step
    acc = {"ours": 0.0, "plain": 0.0}

    def timed(fn, key):
        def wrapper(*a, **k):
            t0 = clock()
            out = fn(*a, **k)
            acc[key] += clock() - t0
            return out
        return wrapper

    orig_ours_sample = agent.buffer.sample
    agent.buffer.sample = timed(orig_ours_sample, "ours")              # instance attribute, bench-only
    plain.buffer.sample = timed(plain.buffer.sample, "plain")
    gen_plain = torch.Generator(device=agent.device)
    gen_plain.manual_seed(5)
    transitions = make_transitions(rng, warmup + steps)
    impls = {
        "ours": (lambda tr: agent.buffer.add(agent.storage_rules.check(*tr)), lambda: agent.update()),
        "plain": (lambda tr: plain.buffer.add(*tr), lambda: plain.update(gen_plain)),
    }
    rec: dict[str, list[dict[str, float]]] = {"ours": [], "plain": []}
    try:
        for i, tr in enumerate(transitions):
            for name, (insert, update) in impls.items():
                acc[name] = 0.0
                t0 = clock()
                insert(tr)
                t1 = clock()
                for _ in range(G):
                    update()
                t2 = clock()
                if i >= warmup:
                    rec[name].append(dict(insert=t1 - t0, sample=acc[name], update=t2 - t1 - acc[name],
                                          total=t2 - t0))
    finally:
        del agent.buffer.sample                                              # back to the class method
    out: dict[str, Any] = {}
    for name, rows in rec.items():
        out[name] = {k + "_ms": 1e3 * statistics.median(r[k] for r in rows) for k in ("insert", "sample", "update",
                                                                                      "total")}
        out[name]["total_mean_ms"] = 1e3 * statistics.fmean(r["total"] for r in rows)
        out[name]["total_min_ms"] = 1e3 * min(r["total"] for r in rows)
        out[name]["steps_ms"] = [round(1e3 * r["total"], 3) for r in rows]
    out["speedup_total"] = out["plain"]["total_ms"] / out["ours"]["total_ms"]
    out["speedup_total_of_minima"] = out["plain"]["total_min_ms"] / out["ours"]["total_min_ms"]
    for k in ("insert", "sample", "update"):
        out[f"speedup_{k}"] = out["plain"][f"{k}_ms"] / max(out["ours"][f"{k}_ms"], 1e-12)
    out.update(warmup=warmup, steps=steps, G=G)
    return out


def updates_bench(agent: SymphonyAgent, clock: Clock, reps: int, flops: dict[str, float], peak: dict[str, float],
                  compile_modes: bool) -> dict[str, Any]:
    """Time agent.update() (sampling included) in fp32, bf16 autocast and optionally with torch.compile'd networks
    (the actor's FeedForward and both critic ensembles). Each mode is warmed up first (its first 2 updates are
    timed: that includes compilation), then the modes are timed round-robin, one update each per round. On CUDA,
    when the package's config has ``cuda_graph``, the graph-replayed update is timed too (after the others)."""
    orig = (agent.actor.net, agent.critic, agent.critic_target)
    modes: dict[str, tuple[bool, tuple]] = {"fp32": (False, orig), "bf16_autocast": (True, orig)}
    if compile_modes:
        compiled = tuple(torch.compile(m) for m in orig)
        modes.update(compile_fp32=(False, compiled), compile_bf16=(True, compiled))

    def set_mode(bf16: bool, nets: tuple) -> None:
        agent.config.bf16_autocast = bf16
        agent.actor.net, agent.critic, agent.critic_target = nets

    out: dict[str, Any] = {}
    fns: dict[str, Callable[[], Any]] = {}
    try:
        for name, (bf16, nets) in modes.items():
            set_mode(bf16, nets)
            try:
                t0 = clock()
                for _ in range(2):
                    agent.update()
                out[name] = dict(first_2_updates_s=clock() - t0)   # includes compilation when compiled
            except Exception as exc:  # compile can fail on some setups: report it, keep going
                out[name] = dict(error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}")
                continue

            def run(bf16=bf16, nets=nets):
                set_mode(bf16, nets)
                agent.update()
            fns[name] = run
        times = paired_times(clock, fns, reps, warmup=1)
    finally:
        set_mode(False, orig)
    if agent.device.type == "cuda" and hasattr(agent.config, "cuda_graph"):
        # the package's optional CUDA-graph update (config field cuda_graph), when this version has it: captured
        # once on the first update, then replayed. Timed last and on its own (the capture stays with the agent).
        try:
            agent.config.cuda_graph = True
            t0 = clock()
            for _ in range(2):
                agent.update()
            out["cuda_graph_fp32"] = dict(first_2_updates_s=clock() - t0)   # includes warm-up and capture
            times["cuda_graph_fp32"] = paired_times(clock, {"g": agent.update}, reps, warmup=1)["g"]
            modes["cuda_graph_fp32"] = (False, orig)
        except Exception as exc:
            out["cuda_graph_fp32"] = dict(error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}")
        finally:
            agent.config.cuda_graph = False
    fl = flops["per_update_conventional"]
    for name, ts in times.items():
        t, t_min = statistics.median(ts), min(ts)
        gf = fl / t / 1e9
        row = out[name]
        row.update(ms=1e3 * t, ms_min=1e3 * t_min, updates_per_s=1.0 / t, gflops=gf,
                   frac_fp32_peak=gf / peak["fp32_gflops"], gflops_at_min=fl / t_min / 1e9,
                   gflops_tight=flops["per_update_tight"] / t / 1e9)
        if modes[name][0]:
            row["frac_bf16_peak"] = gf / peak["bf16_gflops"]
    return out


def micro_bench(agent: SymphonyAgent, plain: PlainSymphony, clock: Clock, reps: int) -> dict[str, Any]:
    """Component comparisons at the preset's batch size (ms, medians; each pair timed alternately)."""
    cfg, dev = agent.config, agent.device
    B = cfg.batch_size
    gen = torch.Generator(device=dev)
    gen.manual_seed(11)
    s = torch.randn(B, OBS_DIM, device=dev, generator=gen)
    a = torch.rand(B, ACT_DIM, device=dev, generator=gen) * 2 - 1
    out: dict[str, Any] = {}

    def record(prefix: str, fns: dict[str, Callable[[], Any]], n: int) -> None:
        for k, ts in paired_times(clock, fns, n).items():
            out[f"{prefix}_{k}_ms"] = 1e3 * statistics.median(ts)

    def fused_fwd():
        with torch.no_grad():
            agent.critic(s, a)

    def separate_fwd():
        with torch.no_grad():
            plain.critic_forward(plain.critics, s, a)

    record("critic_fwd", dict(fused=fused_fwd, separate=separate_fwd), reps)
    record("critic_fwdbwd", dict(fused=lambda: agent.critic(s, a).sum().backward(),
                                 separate=lambda: plain.critic_forward(plain.critics, s, a).sum().backward()), reps)
    # samplers (ranks only): inverse CDF vs multinomial over the N probabilities
    record("sample_ranks", dict(icdf=lambda: agent.buffer.sample_ranks(B, gen),
                                multinomial=lambda: torch.multinomial(plain.buffer.probs, B, replacement=True,
                                                                      generator=gen)), reps * 4)
    # optimizer step with a gradient on every parameter (actor + critics)
    agent.optimizer.zero_grad(set_to_none=True)
    plain.optimizer.zero_grad()
    for p in list(agent.actor.parameters()) + list(agent.critic.parameters()):
        p.grad = torch.randn_like(p) * 1e-3
    for p in plain.optimizer.params:
        p.grad = torch.randn_like(p) * 1e-3
    record("adam", dict(foreach=agent.optimizer.step, loop=plain.optimizer.step), reps)
    agent.optimizer.zero_grad(set_to_none=True)
    plain.optimizer.zero_grad()

    def polyak_foreach():
        with torch.no_grad():
            torch._foreach_lerp_(agent._target_params, agent._critic_params, cfg.tau)

    record("polyak", dict(foreach=polyak_foreach, loop=plain.polyak), reps)
    return out


def bench_preset(preset: str, args, device: torch.device, clock: Clock, peak: dict[str, float]) -> dict[str, Any]:
    overrides = dict(n_exp=1000, buffer_times=10) if args.quick else {}
    cfg = load_preset(preset, overrides)
    res: dict[str, Any] = dict(preset=preset, batch_size=cfg.batch_size, G=cfg.updates_per_step,
                               hidden_dim=cfg.hidden_dim, n_q=cfg.n_q, buffer_slots=cfg.buffer_capacity,
                               buffer_dtype=cfg.buffer_dtype)
    flops = update_flops(cfg)
    res["flops"] = flops
    t0 = time.perf_counter()
    agent = SymphonyAgent(OBS_DIM, ACT_DIM, cfg, device=device, seed=0)
    fill_buffer(agent, np.random.default_rng(1))
    plain_buf = PlainRollBuffer(cfg.buffer_capacity, OBS_DIM, ACT_DIM, agent.buffer.dtype, device,
                                cfg.buffer_weight_power)
    S, d = OBS_DIM, ACT_DIM
    packed_cols = (slice(0, S), slice(S, S + d), slice(S + d, S + d + 1), slice(S + d + 1, 2 * S + d + 1),
                   slice(2 * S + d + 1, 2 * S + d + 2))   # the plain layout [s, a, r, s', g]
    plain_buf.load_packed(agent.buffer.packed(), packed_cols, agent.buffer.ptr)
    plain_buf.norm = agent.buffer.reward_scale
    plain = PlainSymphony(OBS_DIM, ACT_DIM, cfg, device, plain_buf)
    plain.copy_into(agent)
    res["buffer_bytes_ours"] = agent.buffer.nbytes()
    res["buffer_bytes_plain"] = sum(t.numel() * t.element_size() for t in (
        plain_buf.states, plain_buf.actions, plain_buf.rewards, plain_buf.next_states, plain_buf.not_dones_gamma))
    res["setup_s"] = time.perf_counter() - t0
    print(f"  [{preset}] setup (fill {cfg.buffer_capacity:,} slots ×2 implementations) {res['setup_s']:.1f} s",
          flush=True)

    t0 = time.perf_counter()
    res["env_step"] = env_step_bench(agent, plain, clock, args.warmup, args.steps, np.random.default_rng(2))
    es = res["env_step"]
    print(f"  [{preset}] env step: ours {es['ours']['total_ms']:.1f} ms, plain {es['plain']['total_ms']:.1f} ms "
          f"→ ×{es['speedup_total']:.2f} ({time.perf_counter() - t0:.1f} s)", flush=True)

    t0 = time.perf_counter()
    res["micro"] = micro_bench(agent, plain, clock, args.micro_reps)
    print(f"  [{preset}] micro-benchmarks ({time.perf_counter() - t0:.1f} s)", flush=True)
    # the plain buffer is no longer needed: free its memory before the update benchmarks
    plain.buffer = None
    del plain_buf
    free_memory(device)

    t0 = time.perf_counter()
    res["updates"] = updates_bench(agent, clock, args.update_reps, flops, peak, args.compile)
    print(f"  [{preset}] updates/s ({time.perf_counter() - t0:.1f} s)", flush=True)
    del agent, plain
    free_memory(device)
    return res


# ---------------------------------------------------------------------------------------------------------------- print
def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join(f"{h:>{w}}" if i else f"{h:<{w}}" for i, (h, w) in enumerate(zip(header, widths)))
    print(f"\n{title}\n{line}\n{'-' * len(line)}")
    for r in rows:
        print("  ".join(f"{x:>{w}}" if i else f"{x:<{w}}" for i, (x, w) in enumerate(zip(r, widths))))


def report(results: dict[str, Any]) -> None:
    m, pk = results["machine"], results["peak"]
    print("\n" + "=" * 100)
    print(f"Symphony core benchmark — Humanoid-v5 sizes (obs {OBS_DIM}, act {ACT_DIM}); device {m['device']} "
          f"({m['device_name']}); torch {m['torch_version']}, {m['torch_threads']} threads; CPU {m['cpu_model']} "
          f"× {m['cpu_count']}")
    la0, la1 = results["loadavg_start"], results["loadavg_end"]
    print(f"load average (1/5/15 min): start {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f}, "
          f"end {la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f}   (shared machine: absolute timings are noisy)")
    print(f"matmul peak (torch.mm {pk['n']}×{pk['n']}, median): fp32 {pk['fp32_gflops']:.1f} GFLOP/s, "
          f"bf16 {pk['bf16_gflops']:.1f} GFLOP/s  [start fp32 {pk['start_fp32_gflops']:.1f}, end fp32 "
          f"{pk['end_fp32_gflops']:.1f}; the higher median is used]")
    for c in results.get("check", []):
        rows = "; ".join(f"update {i + 1}: ours {u['ours']['total']:.6f} plain {u['plain']['total']:.6f} "
                         f"|Δ|max {u['abs_diff']:.1e}" for i, u in enumerate(c["updates"]))
        print(f"check [{c['preset']}] {'PASS' if c['ok'] else 'FAIL'}: {rows}; max |Δθ| after "
              f"{len(c['updates'])} updates {c['max_weight_diff']:.1e} (tol {c['weight_tolerance']:.0e})")

    P = results["presets"]
    rows = []
    for name, r in P.items():
        es = r["env_step"]
        for impl in ("ours", "plain"):
            e = es[impl]
            rows.append([f"{name} {impl}", f"{r['buffer_slots']:,} {r['buffer_dtype']}", f"{r['G']}",
                         f"{e['insert_ms']:.3f}", f"{e['sample_ms']:.3f}", f"{e['update_ms']:.1f}",
                         f"{e['total_ms']:.1f}", f"{1e3 / e['total_ms']:.2f}"])
        rows.append([f"{name} speed-up (plain/ours)", "", "", f"×{es['speedup_insert']:.0f}",
                     f"×{es['speedup_sample']:.1f}", f"×{es['speedup_update']:.2f}", f"×{es['speedup_total']:.2f}",
                     f"min: ×{es['speedup_total_of_minima']:.2f}"])
    print_table("Per environment step, full buffer (insert + G×(sample + update)); medians of "
                f"{next(iter(P.values()))['env_step']['steps']} timed steps after "
                f"{next(iter(P.values()))['env_step']['warmup']} warm-up, ms",
                ["preset / impl", "buffer", "G", "insert", "sample (G×)", "update (G×)", "total", "steps/s"], rows)
    print("  (sample and update are summed over the G updates of a step; 'min' = ratio of the fastest steps)")

    rows = []
    for name, r in P.items():
        for mode, u in r["updates"].items():
            if "error" in u:
                rows.append([f"{name} {mode}", "failed: " + u["error"], "", "", "", "", "", "", ""])
                continue
            frac = f"{100 * u['frac_fp32_peak']:.0f}%"
            if "frac_bf16_peak" in u:
                frac += f" ({100 * u['frac_bf16_peak']:.0f}% of bf16)"
            rows.append([f"{name} {mode}", f"{r['batch_size']}", f"{u['ms']:.1f}", f"{u['ms_min']:.1f}",
                         f"{u['updates_per_s']:.1f}", f"{u['gflops']:.1f}", frac, f"{u['gflops_at_min']:.1f}",
                         f"{u['first_2_updates_s']:.1f}"])
    print_table("Updates (sampling included), modes timed round-robin; GFLOP/s by the conventional count "
                "3·B·(F_actor + 2·F_critics)",
                ["preset / mode", "batch", "ms/update", "min ms", "updates/s", "GFLOP/s", "of fp32 peak",
                 "GFLOP/s at min", "first 2 updates s"], rows)
    print("  ('first 2 updates s' includes a cold torch.compile for the compile modes; updates/s and GFLOP/s use "
          "the median)")
    for name, r in P.items():
        f = r["flops"]
        print(f"  {name}: {f['per_sample_conventional'] / 1e6:.2f} MFLOP/sample/update conventional "
              f"({f['per_sample_tight'] / 1e6:.2f} tight), {f['per_update_conventional'] / 1e9:.2f} GFLOP/update, "
              f"{f['per_env_step_conventional'] / 1e9:.1f} GFLOP/env step")

    rows = []
    for name, r in P.items():
        mi = r["micro"]
        for label, a, b in (("critic fwd (3 critics)", "critic_fwd_fused_ms", "critic_fwd_separate_ms"),
                            ("critic fwd+bwd (3 critics)", "critic_fwdbwd_fused_ms", "critic_fwdbwd_separate_ms"),
                            ("sample B ranks: icdf | multinomial", "sample_ranks_icdf_ms",
                             "sample_ranks_multinomial_ms"),
                            ("Adam step: foreach | loop", "adam_foreach_ms", "adam_loop_ms"),
                            ("Polyak: foreach | loop", "polyak_foreach_ms", "polyak_loop_ms")):
            rows.append([f"{name} {label}", f"{mi[a]:.3f}", f"{mi[b]:.3f}", f"×{mi[b] / max(mi[a], 1e-12):.2f}"])
    print_table("Components, ms (medians); fused = CriticEnsemble (batched matmuls), separate = 3 × FeedForward",
                ["component", "ours / fused", "plain / separate", "plain/ours"], rows)

    rows = [[f"{k} ({v['dtype']})", f"{v['slots']:,}", f"{v['bytes']:,}", f"{v['bytes'] / 2 ** 30:.3f}",
             f"{v['bytes'] / 1e9:.3f}"] for k, v in results["memory"].items()]
    print_table(f"Replay buffer memory, Humanoid-v5 (row = 2·{OBS_DIM}+{ACT_DIM}+2 = {2 * OBS_DIM + ACT_DIM + 2} "
                "values; the plain roll allocates one more copy of a tensor on every insert)",
                ["buffer", "slots", "bytes", "GiB", "GB"], rows)
    print("=" * 100)


# ---------------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (default auto)")
    ap.add_argument("--presets", default="s3,ed", help="comma-separated presets without gradient dropout "
                                                       "(default s3,ed)")
    ap.add_argument("--steps", type=int, default=None, help="timed env steps per implementation (default 5; quick 1)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up env steps (default 3; quick 1)")
    ap.add_argument("--update-reps", type=int, default=None, help="timed updates per mode (default 15; quick 2)")
    ap.add_argument("--micro-reps", type=int, default=None, help="repetitions per micro-benchmark (default 15; "
                                                                 "quick 3)")
    ap.add_argument("--quick", action="store_true", help="small buffer (10,000 slots), few steps, no compile: a "
                                                         "CI smoke run under a minute")
    ap.add_argument("--compile", dest="compile", action="store_true", default=None,
                    help="also time torch.compile'd networks (default on, off with --quick)")
    ap.add_argument("--no-compile", dest="compile", action="store_false")
    ap.add_argument("--check", action="store_true", help="run only the plain-vs-agent equality check and exit")
    ap.add_argument("--no-check", action="store_true", help="skip the equality check")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default os.cpu_count())")
    ap.add_argument("--json", default=None, metavar="PATH", help="write all figures to this JSON file")
    args = ap.parse_args(argv)
    q = args.quick
    args.steps = args.steps if args.steps is not None else (1 if q else 5)
    args.warmup = args.warmup if args.warmup is not None else (1 if q else 3)
    args.update_reps = args.update_reps if args.update_reps is not None else (2 if q else 15)
    args.micro_reps = args.micro_reps if args.micro_reps is not None else (3 if q else 15)
    args.compile = (not q) if args.compile is None else args.compile
    if args.steps < 1:
        ap.error("--steps must be >= 1")

    tmp_cache = None
    if args.compile and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        # a private, empty compile cache: 'first 2 updates' then measures a cold torch.compile
        tmp_cache = tempfile.mkdtemp(prefix="bench_core_inductor_")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tmp_cache
        os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(tmp_cache, "triton"))
    try:
        return _run(args)
    finally:
        if tmp_cache:
            shutil.rmtree(tmp_cache, ignore_errors=True)


def _run(args) -> int:
    q = args.quick
    torch.set_num_threads(max(1, args.threads))
    device = resolve_device(args.device)
    clock = Clock(device)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    results: dict[str, Any] = dict(loadavg_start=list(os.getloadavg()), machine=machine_info(device),
                                   args=vars(args), started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    t_start = time.perf_counter()
    la = results["loadavg_start"]
    print(f"bench_core: device {device} ({results['machine']['device_name']}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}", flush=True)

    if not args.no_check:
        results["check"] = []
        for p in presets:
            c = run_check(p, device)
            results["check"].append(c)
            print(f"  check [{p}]: {'PASS' if c['ok'] else 'FAIL'} — loss |Δ| "
                  f"{max(u['abs_diff'] for u in c['updates']):.1e} (tol {c['loss_tolerance']:.0e}), max |Δθ| "
                  f"{c['max_weight_diff']:.1e} (tol {c['weight_tolerance']:.0e})", flush=True)
        free_memory(device)
        if args.check:
            return 0 if all(c["ok"] for c in results["check"]) else 1

    peak_reps = 3 if q else 7
    peak = matmul_peak(device, clock, peak_reps)
    print(f"  matmul peak fp32 {peak['fp32_gflops']:.1f} GFLOP/s, bf16 {peak['bf16_gflops']:.1f} GFLOP/s", flush=True)
    peak["start_fp32_gflops"] = peak["fp32_gflops"]
    results["peak"] = peak
    results["presets"] = {}
    for p in presets:
        results["presets"][p] = bench_preset(p, args, device, clock, peak)
    end = matmul_peak(device, clock, peak_reps)
    peak["end_fp32_gflops"] = end["fp32_gflops"]
    if end["fp32_gflops"] > peak["fp32_gflops"] or end["bf16_gflops"] > peak["bf16_gflops"]:
        # use the less-contended measurement as the machine's peak and recompute the fractions
        peak["fp32_gflops"] = max(peak["fp32_gflops"], end["fp32_gflops"])
        peak["bf16_gflops"] = max(peak["bf16_gflops"], end["bf16_gflops"])
        for r in results["presets"].values():
            for u in r["updates"].values():
                if "gflops" in u:
                    u["frac_fp32_peak"] = u["gflops"] / peak["fp32_gflops"]
                    if "frac_bf16_peak" in u:
                        u["frac_bf16_peak"] = u["gflops"] / peak["bf16_gflops"]
    results["memory"] = {}
    for p in ("s3", "ed"):
        cfg = load_preset(p)
        results["memory"][p] = dict(dtype=cfg.buffer_dtype, slots=cfg.buffer_capacity, bytes=buffer_bytes(cfg))
    results["loadavg_end"] = list(os.getloadavg())
    results["wall_s"] = time.perf_counter() - t_start
    if "check" not in results:
        results["check"] = []
    report(results)
    print(f"wall time {results['wall_s']:.1f} s")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"figures written to {path}")
    else:
        print("(no --json PATH given: figures not saved)")
    return 0 if all(c["ok"] for c in results["check"]) else 1


if __name__ == "__main__":
    sys.exit(main())
