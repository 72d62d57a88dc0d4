"""``symphony-ros`` command line: train (headless or as the embedded ROS 2 graph), export, and the bag tools."""
from __future__ import annotations

import argparse
import logging
import sys


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="s3", help="s3 (default), se, s2, ed, s2_tilde, or a YAML file")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                   help="override one config field (repeatable), e.g. --set lr=5e-5 --set eval_episodes=10")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
    p.add_argument("--seed", type=int, default=0)


def _config(args):
    from .core.config import load_preset, parse_overrides
    return load_preset(args.preset, parse_overrides(args.overrides))


def cmd_train(args) -> int:
    cfg = _config(args)
    if args.headless:
        from .trainer import HeadlessTrainer
        trainer = HeadlessTrainer(args.env, cfg, args.out, max_steps=args.max_steps, device=args.device,
                                  seed=args.seed, action_mode=args.action_mode, resume=args.resume,
                                  progress=not args.no_progress, stop_at_return=args.stop_at_return)
        if args.from_bag:
            from .bags.cli import apply_from_bag
            apply_from_bag(trainer, args)
        res = trainer.run()
        last = res.evaluations[-1] if res.evaluations else None
        print(f"steps {res.total_steps}  updates {res.updates}  episodes {res.episodes}  "
              f"last evaluation {last['return_mean']:.1f} ± {last['return_std']:.1f}" if last else
              f"steps {res.total_steps}  updates {res.updates}  episodes {res.episodes}  (no evaluation yet)")
        print(f"outputs: {args.out}/evaluations.csv, {args.out}/learning_curve.png, checkpoint {res.checkpoint}")
        return 130 if res.interrupted else 0
    from .runner import run_embedded
    return run_embedded(args, cfg)


def cmd_export(args) -> int:
    from .core.policy import export_actor, load_actor_file
    actor, cfg, version = load_actor_file(args.checkpoint)
    path = export_actor(args.out, actor, cfg, version)
    print(f"actor ({sum(p.numel() for p in actor.parameters())} parameters, version {version}) written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symphony-ros", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train Symphony (the ROS 2 graph in one process, or --headless without ROS)")
    _add_config_args(t)
    t.add_argument("--headless", action="store_true", help="plain gymnasium loop, no ROS")
    t.add_argument("--env", default="Humanoid-v5", help="gymnasium continuous-control environment id")
    t.add_argument("--out", default="runs/symphony", help="output directory (checkpoints, CSV, PNG)")
    t.add_argument("--max-steps", type=int, default=3_000_000, help="total environment steps, exploration included")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    t.add_argument("--action-mode", default="paper", choices=("paper", "rescale"),
                   help="paper: a_max=1 sent as is (MuJoCo clamps); rescale: map [-1,1] onto the action bounds")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--stop-at-return", type=float, default=None, metavar="R",
                   help="stop once a noise-free evaluation reaches return R")
    t.add_argument("--robots", type=int, default=1, help="(graph) namespaced sim bridge + actor pairs")
    t.add_argument("--mode", default="lockstep", choices=("lockstep", "async"), help="(graph) learner mode")
    t.add_argument("--record", action="store_true", help="(graph) record the topics to a rosbag2 bag in --out")
    from .bags.cli import add_subcommands, add_train_options
    add_train_options(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="write the actor of a training checkpoint as a small actor file")
    e.add_argument("checkpoint")
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_export)

    add_subcommands(sub)   # record, replay, analyze, rerun, load-bag, info, repair
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(levelname)s] %(name)s: %(message)s")
    from .core.checkpoint import CheckpointError
    from .bags import BagError
    from .core.config import ConfigError
    try:
        return int(args.func(args) or 0)
    except (ConfigError, CheckpointError, ValueError, BagError) as exc:
        print(f"symphony-ros: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
