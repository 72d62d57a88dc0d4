"""``symphony-ros export``: the actor of a checkpoint as a small file a robot can act with (ONNX, TorchScript or the
.pt actor file; :mod:`symphony_ros.core.export`)."""
from __future__ import annotations


def cmd_export(args) -> int:
    from ..core.export import export_cli
    return export_cli(args)


def add_subcommands(sub) -> None:
    from ..core.export_format import FORMATS
    e = sub.add_parser("export", help="write the actor of a checkpoint for inference: onnx, torchscript or pt")
    e.add_argument("checkpoint", help="training checkpoint or .pt actor file")
    e.add_argument("--format", choices=FORMATS, default=None,
                   help="default: from the --out suffix (.onnx; .ts/.torchscript/.jit), else pt (actor file)")
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_export)
