"""Which torch device: one rule for the learner, the actor, the CLI and the launch arguments."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class DeviceError(ValueError):
    """A device that does not exist here or is not spelled as torch spells one; the message says what to use."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" → CUDA when available, else CPU. An unknown device or a CUDA request without CUDA is a DeviceError.
    torch is imported here, not with the module: a robot running an ONNX policy has no torch."""
    import torch
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"device '{device}' is not a device; use auto, cpu, cuda or cuda:<index>") from None
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"device '{device}' is not supported; use auto, cpu, cuda or cuda:<index>")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{device}' was requested but CUDA is not available here; use cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device '{device}': this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev
