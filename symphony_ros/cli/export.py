"""``symphony-ros export``: the actor of a checkpoint as a small file a robot can act with."""
from __future__ import annotations


def cmd_export(args) -> int:
    from ..core.policy import export_actor, load_actor_file
    actor, cfg, version = load_actor_file(args.checkpoint)
    path = export_actor(args.out, actor, cfg, version)
    print(f"actor ({sum(p.numel() for p in actor.parameters())} parameters, version {version}) written to {path}")
    return 0


def add_subcommands(sub) -> None:
    e = sub.add_parser("export", help="write the actor of a training checkpoint as a small actor file")
    e.add_argument("checkpoint")
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_export)
