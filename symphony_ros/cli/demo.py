"""``symphony-ros demo``: watch Symphony learn within five minutes on a laptop CPU, through the same ROS 2 graph as
``symphony-ros train`` (sim bridge + actor + learner in one process over real DDS), on InvertedPendulum-v5 with a
scaled-down S3 (the preset of the fast learning test). It stops at an evaluation return of 900 (of 1000) or when the
time budget is used, then prints the curve's path and a one-line verdict."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

DEMO_ENV = "InvertedPendulum-v5"
DEMO_OVERRIDES = dict(hidden_dim=64, heads_per_critic=16, batch_size=48, lr=1e-3, n_exp=1000, buffer_times=5,
                      eval_every=1000, eval_episodes=5)
TARGET = 900.0


def cmd_demo(args) -> int:
    from ..core.config import load_preset, parse_overrides
    from ..core.device import resolve_device
    from ..training.embedded import run_embedded
    from ..training.evaluation import read_evaluations_csv
    resolve_device(args.device)
    overrides = dict(DEMO_OVERRIDES, **parse_overrides(args.overrides))
    cfg = load_preset("s3", overrides)
    out = Path(args.out)
    ns = argparse.Namespace(preset="s3", env=DEMO_ENV, out=str(out), device=args.device, mode="lockstep",
                            max_steps=30_000, robots=1, seed=args.seed, record=False, action_mode="rescale",
                            no_progress=args.no_progress, stop_at_return=TARGET, time_budget=args.minutes * 60,
                            from_bag=None, record_ros_distro=None)
    print(f"symphony-ros demo: {DEMO_ENV}, S3 scaled down ({', '.join(f'{k} {v}' for k, v in DEMO_OVERRIDES.items())}"
          f"), the ROS 2 graph in one process; evaluations every {cfg.eval_every} steps, stop at {TARGET:g} or "
          f"after {args.minutes:g} min")
    t0 = time.monotonic()
    rc = run_embedded(ns, cfg, overrides)
    wall = time.monotonic() - t0
    csv_path = out / "evaluations.csv"
    rows = read_evaluations_csv(csv_path) if csv_path.exists() else []
    if not rows:
        print(f"verdict: no evaluation yet after {wall:.0f} s (the first comes after {cfg.n_exp} exploration steps "
              f"+ {cfg.eval_every}); give it more --minutes")
        return rc or 1
    first, best = rows[0]["return_mean"], max(r["return_mean"] for r in rows)
    steps = int(max(rows, key=lambda r: r["return_mean"])["step"])
    verdict = ("LEARNED" if best >= TARGET else "LEARNING" if best >= 2 * max(first, 1.0) else "NOT LEARNED YET")
    print(f"verdict: {verdict}: evaluation return {first:.0f} -> {best:.0f} (of 1000) by step {steps} in {wall:.0f} s"
          f" through the ROS 2 graph; curve {out / 'learning_curve.png'}, data {csv_path}")
    return 0 if rc in (0, 130) else rc


def add_subcommands(sub) -> None:
    d = sub.add_parser("demo", help="watch it learn within 5 minutes on a CPU (InvertedPendulum, the ROS 2 graph)")
    d.add_argument("--out", default="runs/demo", help="output directory (evaluations.csv, learning_curve.png)")
    d.add_argument("--minutes", type=float, default=5.0, help="time budget (default 5)")
    d.add_argument("--device", default="cpu", help="cpu (default) or auto / cuda")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--no-progress", action="store_true")
    d.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                   help="change the demo preset (experiments, tests), e.g. --set eval_every=500")
    d.set_defaults(func=cmd_demo)
