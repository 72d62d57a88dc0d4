"""Shared test setup: network hygiene for every DDS participant, small torch thread pool, tiny configs."""
import os
import sys
from pathlib import Path

# Network hygiene (README: Tests): loopback-only discovery and a domain of our own, before rclpy loads.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
if os.environ.get("ROS_DISTRO", "").lower() == "humble":   # Humble predates the discovery range
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
os.environ.setdefault("ROS_DOMAIN_ID", str(20 + os.getpid() % 70))
os.environ.setdefault("MUJOCO_GL", "disable")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def tiny_overrides(**extra):
    """A scaled-down S3 for fast tests (same maths, small sizes)."""
    base = dict(hidden_dim=32, heads_per_critic=8, batch_size=24, n_exp=200, buffer_times=3, eval_every=500,
                eval_episodes=2)
    base.update(extra)
    return base


def filled_agent(cfg, obs=6, act=2, seed=0, device="cpu"):
    """A SymphonyAgent after its exploration phase: n_exp transitions acted by its own untrained actor (random
    observations, rewards around 1, a terminal every 37 steps), then norm_fill. Returns (agent, rng)."""
    import numpy as np
    from symphony_ros.core.agent import SymphonyAgent
    agent = SymphonyAgent(obs, act, cfg, device=device, seed=seed)
    rng = np.random.default_rng(seed)
    for i in range(cfg.n_exp):
        s = rng.normal(size=obs)
        agent.observe(agent.storage_rules.check(s, agent.act(s), rng.normal() + 1.0, rng.normal(size=obs),
                                                i % 37 == 36))
    assert agent.learning          # the n_exp-th transition ended the exploration phase
    return agent, rng


@pytest.fixture
def tiny_cfg():
    from symphony_ros.core.config import load_preset
    return load_preset("s3", tiny_overrides())


def pytest_sessionstart(session):
    """In CI (tools/test.sh sets SYMPHONY_ROS_REQUIRE_ROS=1) a missing ROS stack fails the run instead of skipping."""
    if os.environ.get("SYMPHONY_ROS_REQUIRE_ROS") == "1":
        import importlib
        for mod in ("rclpy", "symphony_ros_interfaces.msg", "rosbags"):
            importlib.import_module(mod)
