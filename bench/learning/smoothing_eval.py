"""The safety pipeline's smoothing stage on a trained policy: noise-free episodes with the commands low-passed
(:class:`symphony_ros.control.pipeline.LowPass`, the actor node's ``smoothing: lowpass`` stage, reset at each
episode start), at several cutoffs, against the unfiltered policy; return and the command figures of
control/telemetry for each.

The policy is not retrained with the filter: this measures what the deployment stage alone does to a policy
trained without it (a first-order low-pass adds lag, f_c = cutoff in Hz at the env's control period ``env.dt``).

Usage: ``python bench/learning/smoothing_eval.py RUN_DIR [...] [--cutoffs 8 4 2] [--episodes 5] [--out F.json]``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inspect_policy import load_trained  # noqa: E402

from symphony_ros.control.pipeline import LowPass  # noqa: E402
from symphony_ros.control.telemetry import command_metrics  # noqa: E402
from symphony_ros.core.observation import policy_input  # noqa: E402
from symphony_ros.training.evaluation import EVAL_EPISODE_SEED_OFFSET  # noqa: E402


@torch.no_grad()
def run(run_dir: Path, cutoffs: list[float | None], episodes: int) -> list[dict]:
    tr, c = load_trained(run_dir)
    env, mapping = tr.evaluator.env, tr.evaluator.mapping
    dt = float(env.unwrapped.dt)
    out = []
    for fc in cutoffs:
        filt = LowPass(fc, dt) if fc else None
        cmds, starts, returns = [], [], []
        for k in range(episodes):
            obs, _ = env.reset(seed=c["seed"] + EVAL_EPISODE_SEED_OFFSET + tr.total_steps + k)
            if filt is not None:
                filt.reset()
            done, t, total = False, 0, 0.0
            while not done:
                cmd = mapping(tr.agent.act(policy_input(obs, None), act=1.0, noise=0.0))
                if filt is not None:
                    cmd = filt(np.asarray(cmd, np.float64))
                cmds.append(cmd)
                starts.append(t == 0)
                obs, r, term, trunc, _ = env.step(cmd)
                done, t, total = term or trunc, t + 1, total + float(r)
            returns.append(total)
        m = command_metrics(np.array(cmds), env.action_space.low, env.action_space.high, np.array(starts)).means()
        out.append(dict(run=run_dir.name, step=tr.total_steps, cutoff_hz=fc, control_hz=round(1 / dt, 2),
                        return_mean=float(np.mean(returns)), return_min=float(np.min(returns)), episodes=episodes,
                        **{k: round(v, 4) for k, v in m.items()}))
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--cutoffs", nargs="+", type=float, default=[8.0, 4.0, 2.0])
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = [r for d in a.runs for r in run(d, [None, *a.cutoffs], a.episodes)]
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
