"""Pure-PyTorch Symphony core (never imports rclpy).

The names below are imported on first use (PEP 562), so a deploy-only import (``core.noise``,
``core.export_format``) pulls in neither the agent, nor the replay buffer, nor torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "SymphonyAgent": "agent", "UpdateStats": "agent", "resolve_device": "device",
    "AgentCheckpoints": "checkpoint", "CheckpointError": "checkpoint", "CheckpointManager": "checkpoint",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "PRESETS": "config", "ConfigError": "config", "SymphonyConfig": "config", "load_preset": "config",
    "parse_overrides": "config",
    "Actor": "networks", "CriticEnsemble": "networks", "FeedForward": "networks",
    "FadingReplayBuffer": "replay_buffer",
}

__all__ = ["SymphonyAgent", "UpdateStats", "resolve_device", "AgentCheckpoints", "CheckpointError",
           "CheckpointManager", "load_checkpoint", "save_checkpoint", "PRESETS", "ConfigError", "SymphonyConfig",
           "load_preset", "parse_overrides", "Actor", "CriticEnsemble", "FeedForward", "FadingReplayBuffer"]

if TYPE_CHECKING:
    from .agent import SymphonyAgent, UpdateStats
    from .checkpoint import AgentCheckpoints, CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
    from .config import PRESETS, ConfigError, SymphonyConfig, load_preset, parse_overrides
    from .device import resolve_device
    from .networks import Actor, CriticEnsemble, FeedForward
    from .replay_buffer import FadingReplayBuffer


def __getattr__(name: str) -> Any:
    """``core.X`` for an exported name X, or for a submodule (``core.agent``), imported on first access."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise    # the submodule exists, one of its own imports is missing
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value
