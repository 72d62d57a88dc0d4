"""Inside a trained Symphony policy: the action direction A, the amplitude σ and what the env receives.

For each finished campaign run directory: rebuild the trainer from its run.json command, load the newest checkpoint
(read-only use of ``--resume``), run ``--episodes`` noise-free episodes on the evaluation env (the final
evaluation's episode seeds) and report per run: mean |A| and the share of |A| > 0.9 (A = tanh(A_raw/2), the
direction; |A| → 1 with σ fixed is a bang-bang policy at ±a_max·tanh(σ)), σ mean, the bound the policy can reach at
all (a_max·tanh(max σ) relative to the command half-range), and the command figures of control/telemetry.

Usage: ``python bench/learning/inspect_policy.py RUN_DIR [RUN_DIR ...] [--episodes 3] [--out FILE.json]``.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from symphony_ros.control.telemetry import command_metrics  # noqa: E402
from symphony_ros.core.config import load_preset, parse_overrides  # noqa: E402
from symphony_ros.core.observation import policy_input  # noqa: E402
from symphony_ros.training.evaluation import EVAL_EPISODE_SEED_OFFSET  # noqa: E402
from symphony_ros.training.headless import HeadlessTrainer  # noqa: E402


def parse_command(command: str) -> dict:
    """env, seed, action mode and config overrides of a campaign Symphony command line."""
    argv = shlex.split(command)
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    get = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("--") and not argv[i + 1].startswith("--")}
    return dict(env=get["--env"], seed=int(get["--seed"]), action_mode=get.get("--action-mode", "paper"),
                overrides=parse_overrides(sets))


def load_trained(run_dir: Path) -> tuple[HeadlessTrainer, dict]:
    """The run's trainer at its newest checkpoint (built from run.json's command; the run directory is not written)
    and the parsed command."""
    info = json.loads((run_dir / "run.json").read_text())
    c = parse_command(info["command"])
    cfg = load_preset("s3", c["overrides"])
    with tempfile.TemporaryDirectory() as tmp:    # a copy of the checkpoints
        tmp = Path(tmp)
        shutil.copytree(run_dir / "checkpoints", tmp / "checkpoints")
        tr = HeadlessTrainer(c["env"], cfg, tmp, max_steps=0, device="cpu", seed=c["seed"],
                             action_mode=c["action_mode"], resume=True, progress=False, checkpoint_at_exit=False)
    return tr, c


@torch.no_grad()
def inspect(run_dir: Path, episodes: int) -> dict:
    tr, c = load_trained(run_dir)
    cfg = tr.cfg
    env, mapping, actor = tr.evaluator.env, tr.evaluator.mapping, tr.agent.actor
    cmds, starts, amps, sigmas = [], [], [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=c["seed"] + EVAL_EPISODE_SEED_OFFSET + tr.total_steps + k)
        done, t = False, 0
        while not done:
            s = torch.as_tensor(policy_input(obs, None), dtype=torch.float32).reshape(1, -1)
            a_raw, s_raw, _ = actor.net(s).chunk(3, dim=-1)
            amps.append(torch.tanh(a_raw / 2)[0].numpy())
            sigmas.append(torch.tanh(s_raw / 2).abs()[0].numpy())
            a = tr.agent.act(policy_input(obs, None), act=1.0, noise=0.0)
            cmd = mapping(a)
            cmds.append(cmd)
            starts.append(t == 0)
            obs, _, term, trunc, _ = env.step(cmd)
            done, t = term or trunc, t + 1
    A, S = np.abs(np.array(amps)), np.array(sigmas)
    m = command_metrics(np.array(cmds), env.action_space.low, env.action_space.high, np.array(starts)).means()
    return dict(run=run_dir.name, step=tr.total_steps, a_max=cfg.a_max, steps=len(cmds), A_abs_mean=float(A.mean()),
                A_saturated_share=float((A > 0.9).mean()), sigma_mean=float(S.mean()), sigma_max=float(S.max()),
                reachable=float(min(1.0, cfg.a_max * math.tanh(float(S.max())))) if c["action_mode"] == "rescale"
                else float("nan"), **{f"cmd_{k}": v for k, v in m.items()})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for d in a.runs:
        rows.append(inspect(d, a.episodes))
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
