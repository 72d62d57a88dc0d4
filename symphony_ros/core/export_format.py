"""The exported-policy file contract, shared by the exporter (:mod:`symphony_ros.core.export`, torch) and the
runtime (:mod:`symphony_ros.control.inference`, no training code). Standard library only: no torch, no numpy.

Every exported graph has the inputs ``obs`` (B, S) float32, ``act_gain`` (1,), ``noise_gain`` (1,), ``eps`` (B, d)
(bounded noise drawn by the runtime, see docs/algorithm.md#actor-head) and the outputs ``action``, ``sigma``, ``beta``
(B, d each). Its metadata (a JSON object, :data:`METADATA_KEY` in ONNX ``metadata_props``,
:data:`TORCHSCRIPT_EXTRA_FILE` in a TorchScript archive, ``metadata`` in an actor file) holds at least
:data:`REQUIRED_KEYS`.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1                      # bump when inputs, outputs or metadata change incompatibly
FORMATS = ("pt", "torchscript", "onnx")
SUFFIX_FORMATS = {".onnx": "onnx", ".ts": "torchscript", ".torchscript": "torchscript", ".jit": "torchscript"}
METADATA_KEY = "symphony_ros"
TORCHSCRIPT_EXTRA_FILE = "symphony_ros.json"
INPUT_NAMES = ("obs", "act_gain", "noise_gain", "eps")
OUTPUT_NAMES = ("action", "sigma", "beta")
REQUIRED_KEYS = ("format_version", "format", "obs_dim", "act_dim", "hidden", "a_max", "noise_clip", "preset",
                 "prev_action_in_obs", "config", "source_version", "package_version")
KINDS = ("onnx", "torchscript", "checkpoint")   # what detect_format() tells apart


class PolicyFileError(ValueError):
    """A policy file is missing, of an unknown kind, corrupt or incompatible; the message names it and says why."""


def format_from_suffix(path: str | Path) -> str:
    """Export format implied by a file name: .onnx → onnx; .ts/.torchscript/.jit → torchscript; else pt."""
    return SUFFIX_FORMATS.get(Path(path).suffix.lower(), "pt")


def detect_format(path: str | Path) -> str:
    """What a file holds, from its content (never its name): 'onnx', 'torchscript' or 'checkpoint' (a torch.save
    file: an actor file or a training checkpoint, told apart by :func:`~symphony_ros.core.checkpoint.load_checkpoint`).

    ONNX is a protobuf ModelProto (first byte 0x08: field 1, ir_version); TorchScript and torch.save files are zip
    archives, TorchScript ones with a ``code/`` folder; 0x80 is a legacy (pickle) torch.save file.
    Raises :class:`PolicyFileError` for a missing, empty, damaged or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"policy file {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise PolicyFileError(f"policy file {path} is empty")
    if head == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise PolicyFileError(f"policy file {path} is a damaged archive, truncated or corrupt ({exc}); export "
                                  f"it again") from None
        scripted = any("/code/" in n or n.endswith("/constants.pkl") for n in names)
        return "torchscript" if scripted else "checkpoint"
    if head[0] == 0x80:
        return "checkpoint"
    if head[0] == 0x08 and len(head) > 1 and head[1] < 0x80:
        return "onnx"
    raise PolicyFileError(f"{path} is not a policy file (first bytes {head.hex()}): expected an ONNX or TorchScript "
                          f"export, a symphony_ros actor file or a training checkpoint")


def parse_metadata(text: str | None, source: str | Path) -> dict[str, Any]:
    """Validate an export's metadata JSON; :class:`PolicyFileError` if absent, malformed, newer or incomplete."""
    if not text:
        raise PolicyFileError(f"{source} holds no symphony_ros metadata: not exported by `symphony-ros export`")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyFileError(f"{source}: its symphony_ros metadata is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict):
        raise PolicyFileError(f"{source}: its symphony_ros metadata is not a JSON object")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise PolicyFileError(f"{source}: metadata has no valid format_version")
    if version > FORMAT_VERSION:
        raise PolicyFileError(f"{source} has export format {version}, this symphony_ros reads up to "
                              f"{FORMAT_VERSION}: upgrade symphony_ros on this machine or export with the older one")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise PolicyFileError(f"{source}: metadata lacks {', '.join(missing)}; export it again")
    for k in ("obs_dim", "act_dim"):
        if not isinstance(meta[k], int) or meta[k] < 1:
            raise PolicyFileError(f"{source}: metadata {k} = {meta[k]!r} is not a positive integer")
    return meta
