"""What the ``symphony-ros`` subcommands share: the config options, one-line errors, ROS parameter values."""
from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_DAMAGED = 0, 2, 3


def err(text: str) -> None:
    """One line on stderr: ``symphony-ros: error: <text>``."""
    print(f"symphony-ros: error: {text}", file=sys.stderr)


def damage(lines: list[str]) -> None:
    for d in lines:
        err(f"damaged bag: {d}")


def add_config_args(p: argparse.ArgumentParser) -> None:
    """--preset, --set KEY=VALUE, --device, --seed."""
    p.add_argument("--preset", default=None, help="s3 (default; ed with --robot), se, s2, ed, s2_tilde, or a YAML file")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                   help="override one config field (repeatable), e.g. --set lr=5e-5 --set eval_episodes=10")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
    p.add_argument("--seed", type=count(0), default=0)


def resolve_config(args) -> tuple[Any, dict[str, Any]]:
    """The config of ``--preset`` + ``--set``, resolved once for the whole process, and the overrides."""
    from ..core.config import load_preset, parse_overrides
    overrides = parse_overrides(args.overrides)
    if args.preset is None:   # the embedded preset on a robot, the paper's S3 elsewhere
        args.preset = "ed" if getattr(args, "robot", "") else "s3"
    return load_preset(args.preset, overrides), overrides


def count(lo: int):
    """An argparse type: an integer >= ``lo`` (argparse prints one error line otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"{value} must be >= {lo}")
        return value
    parse.__name__ = f"integer >= {lo}"
    return parse
