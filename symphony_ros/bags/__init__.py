"""rosbag2 bags without rosbag2: record, read (tolerating crashed or truncated files), replay, train from bags,
re-run a policy on recorded observations, and analyse a run.

Writing and type descriptions use the pure-Python ``rosbags`` library (MCAP by default, sqlite3 on request); MCAP
files are read with the ``mcap`` library. Install with the ``bags`` extra: ``pip install symphony-ros[bags]``.

Modules: :mod:`.typestore` (message types, ours included), :mod:`.recorder` (split, crash-safe writer),
:mod:`.reader` (tolerant reader + repair), :mod:`.replay` (timed republishing), :mod:`.from_bag` (transitions into a
replay buffer, policy re-run), :mod:`.analysis` (report), :mod:`.cli` (``symphony-ros`` subcommands). None of them
imports rclpy at module level except :mod:`.replay`'s player and the recorder node (``symphony_ros.nodes.recorder``).
"""


class BagError(RuntimeError):
    """A bag cannot be read or written; the message names the bag/file and the reason."""


class BagDamagedError(BagError):
    """A bag is truncated or corrupt. ``readable`` tells how many messages could still be read."""

    def __init__(self, message: str, readable: int = 0) -> None:
        super().__init__(message)
        self.readable = readable


class BagWriteError(BagError):
    """Writing failed (disk full, I/O error). The bag was closed and holds everything written before the failure."""
