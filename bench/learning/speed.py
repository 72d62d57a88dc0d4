"""Learning-phase speed of the headless trainer on this CPU: env steps/s once learning (G updates per step).

Usage: ``python bench/learning/speed.py --env HalfCheetah-v5 --seconds 60 [--set key=value ...]``. The exploration
phase is shortened to ``--n-exp`` steps (it does no updates, so it says nothing about speed); then the trainer runs
in chunks of 50 steps until ``--seconds`` have passed, no evaluation. Prints one JSON line (steps/s, ms/step).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from symphony_ros.core.config import load_preset, parse_overrides  # noqa: E402
from symphony_ros.training.headless import HeadlessTrainer  # noqa: E402


def measure(env_id: str, overrides: dict, seconds: float, n_exp: int = 1000) -> dict:
    """Learning-phase env steps per second of the headless trainer with ``overrides`` (S3 preset, CPU)."""
    import torch
    torch.set_num_threads(1)
    cfg = load_preset("s3", {**overrides, "n_exp": n_exp, "eval_episodes": 0})
    with tempfile.TemporaryDirectory() as d:
        tr = HeadlessTrainer(env_id, cfg, d, max_steps=n_exp + 1, device="cpu", progress=False,
                             checkpoint_every=10**9, checkpoint_at_exit=False)
        tr.run()
        t0, s0 = time.perf_counter(), tr.total_steps
        while time.perf_counter() - t0 < seconds:
            tr.max_steps = tr.total_steps + 50
            tr.run()
        dt, n = time.perf_counter() - t0, tr.total_steps - s0
    return dict(env=env_id, overrides=overrides, steps=n, seconds=round(dt, 1), steps_per_s=round(n / dt, 2),
                ms_per_step=round(1000 * dt / n, 2), updates_per_step=cfg.updates_per_step)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--n-exp", type=int, default=1000)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    print(json.dumps(measure(a.env, parse_overrides(a.overrides), a.seconds, a.n_exp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
