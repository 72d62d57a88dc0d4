"""``symphony-ros`` bag subcommands: record, replay, analyze, rerun, info, repair (training from bags is in
:mod:`.train`: ``load-bag`` and ``train --from-bag``).

Exit codes: 0 ok; 2 a bag/checkpoint/argument error (one line on stderr); 3 ``analyze``/``info``/``rerun`` on a
damaged bag: the error is printed and the readable part was still analysed (report written).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..bags import BagError
from ..graph import ros_value as _ros_value
from .common import EXIT_DAMAGED, damage as _damage, err as _err



def record_argv(args) -> list[str]:
    """``--ros-args`` for the recorder node from the ``record`` options."""
    params = dict(output=args.output or "", storage=args.storage or "", all_topics=bool(args.all),
                  max_bag_size_mb=float(args.max_bag_size_mb), max_bag_duration_s=float(args.max_bag_duration_s),
                  flush_interval_s=float(args.flush_interval_s), fsync=bool(args.fsync),
                  compression=bool(args.compression))
    if getattr(args, "ros_distro", None):
        params["ros_distro"] = args.ros_distro
    if args.topics:
        params["topics"] = list(args.topics)
    if args.exclude:
        params["exclude"] = list(args.exclude)
    if args.min_interval is not None:
        params["min_interval"] = list(args.min_interval) or [""]
    argv = ["symphony-ros-record", "--ros-args"]
    try:
        from ..core.config import config_dir
        argv += ["--params-file", str(config_dir() / "recorder.yaml")]
    except Exception:  # config folder not found: the node's own defaults
        pass
    for k, v in params.items():
        argv += ["-p", f"{k}:={_ros_value(v)}"]
    if args.namespace:
        argv += ["-r", f"__ns:={args.namespace}"]
    return argv


def cmd_record(args) -> int:
    """Record the graph's topics until Ctrl-C (the recorder node, stand-alone)."""
    from ..nodes.recorder import main
    return main(record_argv(args))


# ---------------------------------------------------------------------------------------------- replay
def cmd_replay(args) -> int:
    from ..bags.replay import ReplayOptions
    from ..nodes.replay import replay
    remap = {}
    for r in args.remap or []:
        a, sep, b = r.partition(":=")
        if not sep or not a or not b:
            _err(f"--remap needs OLD:=NEW, got {r!r}")
            return 2
        remap[a] = b
    opts = ReplayOptions(rate=args.rate, loop=args.loop, topics=args.topics or None,
                         start_offset_s=args.start_offset, remap=remap,
                         wait_for_subscribers_s=args.wait_for_subscribers, delay_s=args.delay)
    try:
        opts.check()
        stats = replay(args.bag, opts)
    except (BagError, ValueError) as exc:
        _err(str(exc))
        return 2
    _damage(stats.damage)
    print(f"replayed {stats.total} messages in {stats.wall_s:.2f} s ({stats.loops} pass(es)); "
          f"worst lateness {stats.max_late_s * 1e3:.1f} ms")
    for t, n in sorted(stats.published.items()):
        print(f"  {t}: {n}")
    return 0


# ---------------------------------------------------------------------------------------------- analyze
def _parse_limits(args):
    if getattr(args, "limits_env", None):
        return args.limits_env
    if getattr(args, "limits", None):
        try:
            lo, hi = (float(x) for x in args.limits.split(","))
        except ValueError:
            raise ValueError(f"--limits needs LOW,HIGH (e.g. -1,1), got {args.limits!r}") from None
        return (lo, hi)
    return None


def cmd_analyze(args) -> int:
    from ..bags.analysis import write_report
    bags = [args.bag] + ([args.bag2] if args.bag2 else [])
    try:
        out = write_report(bags, args.out, limits=_parse_limits(args))
    except (BagError, ValueError) as exc:
        _err(str(exc))
        return 2
    _damage(out["damage"])
    for res in out["results"]:
        print(f"{res['bag']}: {res['duration_s']:.1f} s, {res['message_count']} messages, analysed in "
              f"{res['analysis_time_s']:.2f} s")
        for ns, r in res["robots"].items():
            e, c = r.get("episodes", {}), r.get("commands", {})
            if e.get("count"):
                print(f"  {ns}: {e['count']} episodes, return mean {e['return_mean']:.2f}, last "
                      f"{e['return_last']:.2f}, length mean {e['length_mean']:.1f}")
            if c.get("count"):
                print(f"  {ns}: {c['count']} commands at {c['control_rate_hz'] or 0:.1f} Hz, saturation "
                      f"{c['saturation_mean']:.1%}, mean |Δa| {c['mean_abs_delta_mean'] or 0:.4f}, HF share "
                      f"{c['hf_share_mean'] or 0:.1%}, dropped steps {r['timing']['dropped_steps']}")
    print(f"report: {out['html']}\nnumbers: {out['json']}")
    return EXIT_DAMAGED if out["damage"] else 0


# ---------------------------------------------------------------------------------------------- rerun
def cmd_rerun(args) -> int:
    from ..core.checkpoint import CheckpointError
    from ..bags.from_bag import rerun
    try:
        res = rerun(args.bags, args.checkpoint, robot=args.robot, device=args.device)
    except (BagError, CheckpointError, ValueError) as exc:
        _err(str(exc))
        return 2
    _damage(res.damage)
    print(res.table())
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res.as_dict(), indent=1), encoding="utf-8")
        print(f"numbers: {args.out}")
    return EXIT_DAMAGED if res.damage else 0


# ---------------------------------------------------------------------------------------------- info / repair
def cmd_info(args) -> int:
    from ..bags.reader import BagReader
    try:
        r = BagReader(args.bag)
    except BagError as exc:
        _err(str(exc))
        return 2
    print(r.summary())
    return EXIT_DAMAGED if r.damage else 0


def cmd_convert(args) -> int:
    """Rewrite a bag in another distro's rosbag2 format (atomic; refuses a non-empty --out)."""
    from ..bags.convert import convert_bag
    try:
        rep = convert_bag(args.bag, args.out, ros_distro=args.ros_distro, storage=args.storage,
                          from_distro=args.from_distro, keep_incompatible=args.keep_incompatible)
    except BagError as exc:
        _err(str(exc))
        return 2
    for w in rep.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(rep)
    for t, n in sorted(rep.topics.items()):
        print(f"  {t}: {n}")
    return 0


def recorder_parameters(args) -> dict:
    """Extra ROS parameters of the graph's recorder node from the ``train`` options (``ros_distro``)."""
    distro = getattr(args, "record_ros_distro", None)
    return {"ros_distro": distro} if distro else {}


def cmd_repair(args) -> int:
    from ..bags.reader import repair
    try:
        rep = repair(args.bag, keep_original=args.keep_original)
    except BagError as exc:
        _err(str(exc))
        return 2
    for n in rep.notes:
        print(f"found: {n}")
    print(rep)
    return 0


# ---------------------------------------------------------------------------------------------- parser
def add_subcommands(sub) -> None:
    """Add record, replay, analyze, rerun, info, repair and convert to an argparse subparsers object."""
    from ..bags.distro import DISTROS
    p = sub.add_parser("record", help="record the graph's topics to a rosbag2 bag (MCAP or sqlite3) until Ctrl-C")
    p.add_argument("-o", "--output", default="", help="bag directory (default ./bags/symphony_<date>_<time>)")
    p.add_argument("--storage", default=None, choices=("mcap", "sqlite3"),
                   help="default: sqlite3 for --ros-distro humble (as Humble's ros2 bag), else mcap")
    p.add_argument("--ros-distro", default=None, choices=DISTROS,
                   help="rosbag2 format to write (default $ROS_DISTRO, else kilted); humble: metadata version 5 "
                        "that Humble's ros2 bag reads (MCAP there needs ros-humble-rosbag2-storage-mcap)")
    p.add_argument("--topics", nargs="+", help="record these topics only (default: the contract topics in every "
                                                "namespace + /clock)")
    p.add_argument("--all", action="store_true", help="every topic whose type is known")
    p.add_argument("--exclude", nargs="+", help="never record these topics")
    p.add_argument("--max-bag-size-mb", type=float, default=0.0, help="split after this many MiB (0 = never)")
    p.add_argument("--max-bag-duration-s", type=float, default=0.0, help="split after this many s (0 = never)")
    p.add_argument("--flush-interval-s", type=float, default=1.0, help="a crash loses at most this much")
    p.add_argument("--min-interval", nargs="*", metavar="TOPIC:SECONDS",
                   help="keep at most one message per interval of a topic (default policy_weights:10.0; give the "
                        "option with no value to record every message)")
    p.add_argument("--fsync", action="store_true", help="fsync every chunk")
    p.add_argument("--compression", action="store_true", help="zstd-compress MCAP chunks")
    p.add_argument("--namespace", default="", help="the recorder node's namespace (relative --topics resolve in it)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("replay", help="republish a bag's topics with their recorded timing (like ros2 bag play)")
    p.add_argument("bag")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor (2 = twice as fast)")
    p.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    p.add_argument("--topics", nargs="+", help="replay only these topics")
    p.add_argument("--start-offset", type=float, default=0.0, metavar="S", help="skip the bag's first S seconds")
    p.add_argument("--remap", action="append", metavar="OLD:=NEW", help="publish a topic under another name")
    p.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for every topic to have a subscriber before starting")
    p.add_argument("--delay", type=float, default=0.0, metavar="S", help="pause S seconds before starting")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("analyze", help="report (HTML + JSON) of a bag: returns, commands, smoothness, σ/β, timing; "
                                       "two bags are compared side by side")
    p.add_argument("bag")
    p.add_argument("bag2", nargs="?", help="a second bag to compare with")
    p.add_argument("--out", required=True, help="output directory (report.html, analysis.json / comparison.json)")
    p.add_argument("--limits", help="joint command limits LOW,HIGH for the saturation (default -1,1: policy units)")
    p.add_argument("--limits-env", metavar="ENV", help="use a gymnasium env's action bounds as the limits")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("rerun", help="feed a bag's observations through a checkpoint's actor and compare its "
                                     "actions with the recorded ones, per joint")
    p.add_argument("bags", nargs="+")
    p.add_argument("--checkpoint", required=True, help="actor file (symphony-ros export) or training checkpoint")
    p.add_argument("--robot", help="only this robot's transitions (Transition.header.frame_id)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="also write the numbers as JSON to this file")
    p.set_defaults(func=cmd_rerun)

    p = sub.add_parser("info", help="topics, counts, duration and damage of a bag (like ros2 bag info)")
    p.add_argument("bag")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("repair", help="make a crashed/truncated bag whole again (readable messages kept, index and "
                                      "metadata.yaml rebuilt)")
    p.add_argument("bag")
    p.add_argument("--keep-original", action="store_true", help="keep damaged files as <name>.orig")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("convert", help="rewrite a bag in another ROS distro's rosbag2 format (e.g. a Kilted bag "
                                       "for Humble's ros2 bag); messages, timestamps and CDR bytes unchanged")
    p.add_argument("bag")
    p.add_argument("--ros-distro", required=True, choices=DISTROS, help="format to write")
    p.add_argument("--out", required=True, help="new bag directory (must not exist or be empty)")
    p.add_argument("--storage", default=None, choices=("mcap", "sqlite3"),
                   help="default: sqlite3 for humble, else mcap")
    p.add_argument("--from-distro", default=None, choices=DISTROS,
                   help="distro whose message definitions the source follows (default: from its metadata)")
    p.add_argument("--keep-incompatible", action="store_true",
                   help="also copy topics whose message layout differs between the two distros")
    p.set_defaults(func=cmd_convert)
