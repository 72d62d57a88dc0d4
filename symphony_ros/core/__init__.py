"""Pure-PyTorch Symphony core (never imports rclpy)."""
from .agent import SymphonyAgent, UpdateStats, resolve_device
from .checkpoint import AgentCheckpoints, CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
from .config import PRESETS, ConfigError, SymphonyConfig, load_preset, parse_overrides
from .networks import Actor, CriticEnsemble, FeedForward
from .replay_buffer import FadingReplayBuffer

__all__ = ["SymphonyAgent", "UpdateStats", "resolve_device", "AgentCheckpoints", "CheckpointError",
           "CheckpointManager", "load_checkpoint", "save_checkpoint", "PRESETS", "ConfigError", "SymphonyConfig",
           "load_preset", "parse_overrides", "Actor", "CriticEnsemble", "FeedForward", "FadingReplayBuffer"]
