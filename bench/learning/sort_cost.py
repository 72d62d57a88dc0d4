"""What the sorted target costs in one Symphony update on this CPU, and what bf16 autocast does to the update time.

For each network size: the median wall time of one ``SymphonyAgent.update()`` (one torch thread, HalfCheetah sizes:
17 observations, 6 actions, a random filled buffer), (a) as shipped, (b) with the target's sort removed (the same
weighted sum over the unsorted heads: wrong maths, only to price the sort), (c) with ``bf16_autocast``; plus the
share of ``aten::sort`` in the torch profiler's CPU self time of the shipped update.

Usage: ``python bench/learning/sort_cost.py [--updates 40] [--out bench/results/learning/sort_cost.json]``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import symphony_ros.core.agent as agent_module  # noqa: E402
from symphony_ros.core.agent import SymphonyAgent  # noqa: E402
from symphony_ros.core.config import load_preset  # noqa: E402

SIZES = {   # name -> overrides of S3
    "campaign (h128, 3x32 heads, B96)": dict(hidden_dim=128, heads_per_critic=32, batch_size=96),
    "small (h128, 3x128 heads, B384: a 384x384 sort)": dict(hidden_dim=128, heads_per_critic=128, batch_size=384),
    "S3 (h512, 3x128 heads, B384)": dict(hidden_dim=512, heads_per_critic=128, batch_size=384),
}
OBS, ACT = 17, 6


def make_agent(overrides: dict, **extra) -> SymphonyAgent:
    cfg = load_preset("s3", dict(overrides, n_exp=512, buffer_times=2, **extra))
    ag = SymphonyAgent(OBS, ACT, cfg, device="cpu", seed=0)
    rng = np.random.default_rng(0)
    for i in range(cfg.n_exp):
        x, x2 = rng.normal(size=OBS).astype(np.float32), rng.normal(size=OBS).astype(np.float32)
        a = np.tanh(rng.normal(size=ACT)).astype(np.float32)
        ag.observe(ag.storage_rules.check(x, a, float(rng.normal()), x2, False, truncated=False, episode=0, step=i))
    assert ag.learning
    return ag


def time_updates(ag: SymphonyAgent, n: int) -> float:
    """Median ms of one update over n (after 5 warm-up updates)."""
    for _ in range(5):
        ag.update()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        ag.update()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def sort_share(ag: SymphonyAgent, n: int) -> float:
    """aten::sort's share of the CPU self time of n updates (torch profiler)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            ag.update()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    sort = sum(e.self_cpu_time_total for e in events if e.key == "aten::sort")
    return sort / total if total else float("nan")


def unsorted_target(q: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (q * weights).sum(dim=-1, keepdim=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=40)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "bench" / "results" / "learning"
                   / "sort_cost.json")
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, ov in SIZES.items():
        n = max(8, a.updates // (4 if "S3" in name else 1))
        shipped = time_updates(make_agent(ov), n)
        share = sort_share(make_agent(ov), max(4, n // 4))
        original = agent_module.sorted_weighted_target
        agent_module.sorted_weighted_target = unsorted_target
        try:
            no_sort = time_updates(make_agent(ov), n)
        finally:
            agent_module.sorted_weighted_target = original
        bf16 = time_updates(make_agent(ov, bf16_autocast=True), n)
        rows.append(dict(size=name, updates_timed=n, update_ms=round(shipped, 3),
                         update_ms_without_sort=round(no_sort, 3),
                         sort_share_by_removal=round(1 - no_sort / shipped, 4), sort_share_profiler=round(share, 4),
                         update_ms_bf16_autocast=round(bf16, 3), bf16_speedup=round(shipped / bf16, 3)))
        print(json.dumps(rows[-1]), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(dict(torch=torch.__version__, threads=1, obs=OBS, act=ACT, rows=rows), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
