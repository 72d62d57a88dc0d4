"""The two public seams bench/bench_graph.py uses instead of patching: ``HeadlessTrainer(checkpoint_at_exit=False)``
(run() in chunks writes no checkpoint) and ``EmbeddedGraph(executor=...)`` (the graph spun by a given executor)."""
import time

import pytest

from symphony_ros.core.checkpoint import CheckpointManager
from symphony_ros.core.config import load_preset
from symphony_ros.training.headless import HeadlessTrainer

TINY = dict(hidden_dim=16, heads_per_critic=4, batch_size=12, n_exp=60, buffer_times=2, eval_episodes=0)


def test_headless_run_writes_no_checkpoint_without_checkpoint_at_exit(tmp_path):
    cfg = load_preset("s3", TINY)
    tr = HeadlessTrainer("InvertedPendulum-v5", cfg, tmp_path / "a", max_steps=70, device="cpu", progress=False,
                         checkpoint_every=10 ** 12, checkpoint_at_exit=False)
    first = tr.run()
    tr.max_steps = 75
    second = tr.run()
    assert first.checkpoint is None and second.checkpoint is None
    assert CheckpointManager(tmp_path / "a" / "checkpoints").paths() == []
    assert tr.total_steps == 75 and tr.agent.updates == 3 * (75 - 60)
    default = HeadlessTrainer("InvertedPendulum-v5", cfg, tmp_path / "b", max_steps=65, device="cpu", progress=False)
    assert default.run().checkpoint is not None          # the default still writes the checkpoint at exit


def test_embedded_graph_spins_on_the_executor_it_is_given(tmp_path):
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip extra 'ros')")
    pytest.importorskip("symphony_ros_interfaces.msg", reason="symphony_ros_interfaces not built")
    from rclpy.experimental import EventsExecutor
    from symphony_ros.training.embedded import EmbeddedGraph
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    ex = EventsExecutor(context=ctx)
    g = EmbeddedGraph(preset="s3", env="Humanoid-v5", out_dir=tmp_path / "g", device="cpu", mode="lockstep",
                      max_steps=80, overrides=dict(TINY), context=ctx, executor=ex)
    try:
        assert g.executor is ex
        learner = g.learner.learner
        deadline = time.monotonic() + 120
        while not learner.done and time.monotonic() < deadline:
            g.spin_once(0.01)
        assert learner.done, f"stored {learner.stored}"
        assert learner.stored == 80 and learner.updates == 3 * (80 - TINY["n_exp"])
    finally:
        g.shutdown()
        rclpy.try_shutdown(context=ctx)
