"""``symphony-ros`` command line: train (headless or as the embedded ROS 2 graph), load-bag, export, and the bag tools
(record, replay, analyze, rerun, info, repair). Every subcommand lives in one module of this package; an error the
user can fix is one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import logging

from . import bags, demo, export, train
from .common import EXIT_ERROR, err


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symphony-ros", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    train.add_subcommands(sub)
    demo.add_subcommands(sub)
    export.add_subcommands(sub)
    bags.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(levelname)s] %(name)s: %(message)s")
    from ..bags import BagError
    from ..core.checkpoint import CheckpointError
    from ..core.config import ConfigError
    from ..training.embedded import StartupError
    try:
        return int(args.func(args) or 0)
    except (ConfigError, CheckpointError, ValueError, BagError, StartupError) as exc:
        err(str(exc))
        return EXIT_ERROR
    except OSError as exc:   # --out under a file, no permission, disk full: what and where
        err(f"{exc.strerror or exc}: {exc.filename}" if getattr(exc, "filename", None) else str(exc))
        return EXIT_ERROR
