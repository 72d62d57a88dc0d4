"""``symphony-ros train`` (the embedded ROS 2 graph, or ``--headless``) and ``symphony-ros load-bag``."""
from __future__ import annotations

from .common import add_config_args, count, damage, resolve_config


def cmd_train(args) -> int:
    from ..core.device import resolve_device
    resolve_device(args.device)                    # a device that does not exist here: one line, before any work
    cfg, overrides = resolve_config(args)          # the preset is resolved once for the whole process
    if args.robot:
        if args.headless:
            print("symphony-ros train: --robot runs the ROS 2 robot graph; it cannot be --headless")
            return 2
        from ..training.robot import run_robot
        return run_robot(args, cfg, overrides)
    if not args.headless:
        from ..training.embedded import run_embedded
        return run_embedded(args, cfg, overrides)
    from ..training.headless import HeadlessTrainer
    trainer = HeadlessTrainer(args.env, cfg, args.out, max_steps=args.max_steps, device=args.device, seed=args.seed,
                              action_mode=args.action_mode, resume=args.resume, progress=not args.no_progress,
                              stop_at_return=args.stop_at_return, paper_episode_limit=args.paper_episode_limit,
                              action_rate_penalty=args.action_rate_penalty)
    apply_from_bag(trainer, args)
    res = trainer.run()
    last = res.evaluations[-1] if res.evaluations else None
    summary = f"last evaluation {last['return_mean']:.1f} ± {last['return_std']:.1f}" if last else "(no evaluation yet)"
    print(f"steps {res.total_steps}  updates {res.updates}  episodes {res.episodes}  {summary}")
    print(f"outputs: {args.out}/evaluations.csv, {args.out}/learning_curve.png, checkpoint {res.checkpoint}")
    return 130 if res.interrupted else 0


def apply_from_bag(trainer, args) -> int:
    """Load ``--from-bag`` bags into a HeadlessTrainer's buffer (after --resume). Returns the number loaded."""
    bags = getattr(args, "from_bag", None)
    if not bags:
        return 0
    from ..bags.from_bag import LoadReport, bootstrap_trainer
    rep = LoadReport()
    n = bootstrap_trainer(trainer, bags, updates=getattr(args, "from_bag_updates", 0), report=rep)
    damage(rep.damage)
    print(f"loaded {n} transitions from {len(bags)} bag(s) into the replay buffer ({rep.rejected} rejected)")
    return n


def cmd_load_bag(args) -> int:
    """``load-bag``: a headless trainer's buffer filled from bags, optional offline updates, a checkpoint, then
    (``--max-steps`` beyond the bags' transitions) online training in the gymnasium env."""
    from ..bags.from_bag import LoadReport, bootstrap_trainer
    from ..training.headless import HeadlessTrainer
    cfg, _ = resolve_config(args)
    trainer = HeadlessTrainer(args.env, cfg, args.out, max_steps=args.max_steps, device=args.device,
                              seed=args.seed, resume=args.resume, progress=not args.no_progress)
    rep = LoadReport()
    n = bootstrap_trainer(trainer, args.bags, updates=args.updates, report=rep)
    damage(rep.damage)
    buf = trainer.agent.buffer
    print(f"loaded {n} transitions from {len(rep.bags)} bag(s) ({rep.rejected} rejected); buffer "
          f"{buf.length}/{buf.capacity}, learning {trainer.agent.learning}, updates {trainer.agent.updates}")
    if trainer.total_steps < trainer.max_steps:
        res = trainer.run()
        print(f"steps {res.total_steps}  updates {res.updates}  checkpoint {res.checkpoint}")
        return 130 if res.interrupted else 0
    path = trainer.save()
    print(f"checkpoint {path} (continue online with `symphony-ros train --headless --env {args.env} --out "
          f"{args.out} --resume`)")
    return 0


def add_subcommands(sub) -> None:
    t = sub.add_parser("train", help="train Symphony (the ROS 2 graph in one process, or --headless without ROS)")
    add_config_args(t)
    t.add_argument("--headless", action="store_true", help="plain gymnasium loop, no ROS")
    t.add_argument("--env", default="Humanoid-v5", help="gymnasium continuous-control environment id")
    t.add_argument("--out", default="runs/symphony", help="output directory (checkpoints, CSV, PNG)")
    t.add_argument("--max-steps", type=count(0), default=3_000_000,
                   help="total environment steps, exploration included")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    t.add_argument("--action-mode", default="paper", choices=("paper", "rescale"),
                   help="paper: a_max=1 sent as is (MuJoCo clamps); rescale: map [-1,1] onto the action bounds")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--stop-at-return", type=float, default=None, metavar="R",
                   help="(headless) stop once a noise-free evaluation reaches return R")
    t.add_argument("--paper-episode-limit", action="store_true",
                   help="(headless) end every episode at the config's episode_limit (1000; the paper's protocol) "
                        "instead of the environment's own time limit")
    t.add_argument("--action-rate-penalty", type=float, default=0.0, metavar="W",
                   help="(headless) subtract W*mean((delta command/range)^2) from each training reward (smoother "
                        "commands; evaluations report the task's own return)")
    t.add_argument("--robots", type=count(1), default=1, help="(graph) namespaced sim bridge + actor pairs")
    t.add_argument("--mode", default="lockstep", choices=("lockstep", "async"), help="(graph) learner mode")
    t.add_argument("--record", action="store_true", help="(graph) record the topics to a rosbag2 bag in --out")
    from ..bags.distro import DISTROS
    t.add_argument("--record-ros-distro", choices=DISTROS, default=None, metavar="DISTRO",
                   help="(graph, with --record) write the bag in this ROS distro's rosbag2 format: "
                        f"{', '.join(DISTROS)} (default $ROS_DISTRO, else kilted; humble: sqlite3, metadata "
                        "version 5, readable by Humble's ros2 bag)")
    t.add_argument("--from-bag", action="append", default=[], metavar="BAG",
                   help="pre-fill the replay buffer with the transitions of a bag recorded earlier (repeatable); "
                        "they count as experienced steps")
    r = t.add_argument_group("robot graph (task node + actor + learner on a robot's driver topics)")
    r.add_argument("--robot", default="", metavar="DESCRIPTION",
                   help="train on this robot description (config/robots/<name>.yaml or a path) instead of --env")
    r.add_argument("--task", default="humanoid_stand",
                   help="task plugin: humanoid_stand, humanoid_walk, pendulum_balance, an entry point, a path")
    r.add_argument("--task-params", default="", metavar="YAML", help="task parameters, e.g. '{max_angle: 0.3}'")
    r.add_argument("--sim", action="store_true",
                   help="start the simulated driver (mujoco_driver) in place of the robot's own driver")
    r.add_argument("--episode-time", type=float, default=20.0, metavar="S", help="episode time limit (s)")
    r.add_argument("--soft-start", type=float, default=0.5, metavar="S", help="actor soft start after activation")
    r.add_argument("--safe-ramp", type=float, default=1.0, metavar="S", help="actor ramp to the safe pose (s)")
    r.add_argument("--learner-threads", type=count(0), default=0, metavar="N",
                   help="torch threads of the learner process (0 = all cores but one, left to the robot side)")
    r.add_argument("--recovery-delay", type=float, default=1.0, metavar="S",
                   help="wait before the robot's recovery service after an episode (s)")
    t.add_argument("--from-bag-updates", type=count(0), default=0, metavar="N",
                   help="(headless) N offline gradient updates on the bag transitions before acting")
    t.set_defaults(func=cmd_train)

    p = sub.add_parser("load-bag", help="train from bags: load their transitions into a (headless) learner's "
                                        "buffer, optional offline updates, then continue training")
    p.add_argument("bags", nargs="+")
    add_config_args(p)
    p.add_argument("--env", default="Humanoid-v5", help="gymnasium env the bags were recorded on")
    p.add_argument("--out", required=True, help="output directory (checkpoints, CSV, PNG), as for train")
    p.add_argument("--updates", type=count(0), default=0, help="offline gradient updates after loading")
    p.add_argument("--max-steps", type=count(0), default=0,
                   help="continue online until this many steps (the bags' transitions count); 0 = offline only")
    p.add_argument("--resume", action="store_true", help="start from the newest checkpoint in --out")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_load_bag)
