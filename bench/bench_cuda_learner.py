"""Learner speed on a CUDA device: updates/s and per-environment-step cost for S3 and ED at Humanoid-v5 sizes
(obs 348, act 17) with full buffers, in float32 and bf16 autocast, eager and CUDA-graph replay.

    python bench/bench_cuda_learner.py [--json out.json] [--updates 200]

Prints a table and (with --json) all figures. Needs a CUDA device (exits with a message otherwise).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from symphony_ros.core.agent import SymphonyAgent  # noqa: E402
from symphony_ros.core.config import load_preset  # noqa: E402

OBS, ACT = 348, 17
DEVICE = "cuda"


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def full_agent(preset: str, **over) -> SymphonyAgent:
    cfg = load_preset(preset, over)
    agent = SymphonyAgent(OBS, ACT, cfg, device=DEVICE, seed=0)
    buf = agent.buffer
    n = cfg.n_exp
    # exploration block written directly (random, finite), then the real norm_fill: a full buffer, as after exploration
    buf.data[:n] = torch.randn(n, buf.width, device=DEVICE).to(buf.data.dtype)
    buf.scalars[:n, 0] = torch.randn(n, device=DEVICE)
    buf.scalars[:n, 1] = 0.99
    buf.length = n
    agent.start_learning()
    return agent


def time_updates(agent: SymphonyAgent, n: int) -> float:
    for _ in range(5):
        agent.update()
    sync()
    t = time.perf_counter()
    for _ in range(n):
        agent.update()
    sync()
    return (time.perf_counter() - t) / n


def time_env_step(agent: SymphonyAgent, steps: int) -> float:
    """G updates + one insertion + one action, per environment step."""
    G = agent.config.updates_per_step
    rng = np.random.default_rng(0)
    obs = rng.normal(size=OBS).astype(np.float32)
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        a = agent.act(obs)
        nxt = rng.normal(size=OBS).astype(np.float32)
        agent.buffer.add(agent.storage_rules.check(obs, a, 1.0, nxt, False))
        for _ in range(G):
            agent.update()
        obs = nxt
    sync()
    return (time.perf_counter() - t) / steps


def flops_per_update(cfg, obs=OBS, act=ACT) -> float:
    """Matmul FLOPs of one update (2 per multiply-add): actor fwd on B (s'), target critics fwd on B, online critics
    fwd on B; backward ≈ 2× forward for actor + online critics, and for the target critics' input gradient only."""
    B, h, k, n = cfg.batch_size, cfg.hidden_dim, cfg.heads_per_critic, cfg.n_critics
    actor = 2 * B * (obs * h + h * h + h * 3 * act)
    critic = 2 * B * n * ((obs + act) * h + h * h + h * k)
    return 3 * actor + critic + 2 * critic + 3 * critic   # actor f+b, target f+b(input), online f+b


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--json")
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--cpu-dry-run", action="store_true", help="exercise the script on the CPU (no graph, tiny counts)")
    args = p.parse_args()
    global DEVICE
    if args.cpu_dry_run:
        DEVICE = "cpu"
        agent = full_agent("ed", cuda_graph=True)
        print(f"cpu dry run: {time_updates(agent, 2) * 1e3:.0f} ms/update, {time_env_step(agent, 1) * 1e3:.0f} ms/step")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = True
    dev = torch.cuda.get_device_name()
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    peak_bf16 = 10 * 2 * 8192 ** 3 / (time.perf_counter() - t) / 1e12
    del a
    rows = []
    for preset in ("s3", "ed"):
        for bf16 in (False, True):
            for graph in (False, True):
                agent = full_agent(preset, bf16_autocast=bf16, cuda_graph=graph)
                u = time_updates(agent, args.updates)
                st = time_env_step(agent, args.steps)
                fl = flops_per_update(agent.config)
                rows.append(dict(preset=preset, bf16=bf16, cuda_graph=graph, ms_per_update=u * 1e3,
                                 updates_per_s=1 / u, ms_per_env_step=st * 1e3, env_steps_per_s=1 / st,
                                 tflops=fl / u / 1e12, buffer_gib=agent.buffer.nbytes() / 2 ** 30))
                del agent
                torch.cuda.empty_cache()
    print(f"device: {dev}; torch {torch.__version__}; measured bf16 matmul peak {peak_bf16:.0f} TFLOP/s")
    print(f"{'preset':6} {'bf16':5} {'graph':5} {'ms/upd':>8} {'upd/s':>8} {'ms/env-step':>12} {'steps/s':>8} "
          f"{'TFLOP/s':>8} {'buffer GiB':>10}")
    for r in rows:
        print(f"{r['preset']:6} {str(r['bf16']):5} {str(r['cuda_graph']):5} {r['ms_per_update']:8.2f} "
              f"{r['updates_per_s']:8.0f} {r['ms_per_env_step']:12.2f} {r['env_steps_per_s']:8.1f} "
              f"{r['tflops']:8.2f} {r['buffer_gib']:10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(device=dev, torch=torch.__version__, peak_bf16_tflops=peak_bf16,
                                                   rows=rows), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
