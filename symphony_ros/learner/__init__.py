"""The learner engine (no ROS): the replay buffer and updates behind a queue and a worker thread.

One module per job: :mod:`.worker` (queue + thread, safe points), :mod:`.storage` (the books of what was received,
stored, rejected), :mod:`.updates` (update loop, weight snapshots), :mod:`.stats` (counters and rates),
:mod:`.checkpoints` (checkpoint service), :mod:`.engine` (:class:`LearnerEngine`, which composes them).
"Learner" alone names the role; the ROS node is :class:`symphony_ros.nodes.learner.LearnerNode`.
"""
from .checkpoints import CHECKPOINT_KIND
from .engine import MODES, LearnerEngine
from .stats import LearnerStats

__all__ = ["CHECKPOINT_KIND", "MODES", "LearnerEngine", "LearnerStats"]
