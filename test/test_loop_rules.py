"""One home for the loop rules (core/schedule.py via SymphonyAgent.observe): the headless trainer, the learner engine
(lockstep) and training from a bag, fed the same transition stream, store the same buffer and run the same updates.

No ROS needed: the bag is written with the package's own rosbag2 writer and read back with its reader.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from symphony_ros.core.agent import SymphonyAgent
from symphony_ros.core.config import load_preset
from symphony_ros.learner import LearnerEngine
from symphony_ros.training.headless import HeadlessTrainer

ENV, OBS, ACT = "InvertedPendulum-v5", 4, 1
N, SEED = 90, 5
CFG = dict(hidden_dim=16, heads_per_critic=4, batch_size=8, n_exp=30, buffer_times=2, eval_episodes=0,
           episode_limit=1000, zero_policy_window=0)


def _stream() -> list[tuple]:
    """N transitions of a few episodes (float32-exact values: a bag stores float32), two of them terminal, one
    truncated, one malformed (NaN reward: every path must reject it the same way)."""
    rng = np.random.default_rng(11)
    out, ep, t = [], 0, 0
    for i in range(N):
        s = rng.standard_normal(OBS).astype(np.float32)
        s2 = rng.standard_normal(OBS).astype(np.float32)
        a = rng.uniform(-1, 1, ACT).astype(np.float32)
        r = float(np.float32(rng.uniform(0, 2)))
        terminated, truncated = i in (23, 61), i == 44
        if i == 50:
            r = float("nan")
        out.append((s, a, r, s2, terminated, truncated, ep, t))
        t += 1
        if terminated or truncated:
            ep, t = ep + 1, 0
    return out


def _buffer(agent: SymphonyAgent) -> dict:
    """The buffer's whole state (contents, pointer, counters, reward scale), tensors copied."""
    return {k: v.clone() if torch.is_tensor(v) else v for k, v in agent.buffer.state_dict().items()}


def _same(a, b) -> bool:
    if torch.is_tensor(a) or torch.is_tensor(b):
        return torch.is_tensor(a) and torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def _params(agent: SymphonyAgent) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for m in (agent.actor, agent.critic, agent.critic_target)
                      for p in m.parameters()])


def _bag(path, stream) -> None:
    pytest.importorskip("rosbags", reason="rosbags not installed (pip extra 'bags')")
    pytest.importorskip("mcap", reason="mcap not installed (pip extra 'bags')")
    from symphony_ros.bags import typestore as T
    from symphony_ros.bags.recorder import BagRecorder
    with BagRecorder(path) as rec:
        rec.add_topic("/transitions", T.TRANSITION)
        for k, (s, a, r, s2, term, trunc, ep, t) in enumerate(stream):
            msg = T.make(T.TRANSITION, episode=ep, step=t, observation=s, action=a, reward=np.float32(r),
                         next_observation=s2, terminated=term, truncated=trunc)
            rec.write("/transitions", T.serialize(msg), 10**9 + k * 1_000_000)


def test_trainer_learner_engine_and_bag_store_the_same_buffer_and_run_the_same_updates(tmp_path):
    cfg = load_preset("s3", CFG)
    stream = _stream()

    trainer = HeadlessTrainer(ENV, cfg, tmp_path / "headless", max_steps=N, device="cpu", seed=SEED, progress=False,
                              checkpoint_at_exit=False)
    for s, a, r, s2, term, trunc, ep, t in stream:
        trainer.episodes = ep
        trainer.store_step(s, a, r, s2, term, trunc, t)

    engine = LearnerEngine(OBS, ACT, cfg, mode="lockstep", device="cpu", seed=SEED)
    engine.start()
    for k, (s, a, r, s2, term, trunc, ep, t) in enumerate(stream):
        engine.offer(s, a, r, s2, term, tag=k, truncated=trunc, episode=ep, step=t)
    assert engine.drain(60)
    engine.stop(10)

    from symphony_ros.bags.from_bag import LoadReport, load_transitions_into
    _bag(tmp_path / "bag", stream)
    from_bag = SymphonyAgent(OBS, ACT, cfg, device="cpu", seed=SEED)
    report = LoadReport()
    load_transitions_into(from_bag, tmp_path / "bag", learn=True, report=report)

    agents = {"headless": trainer.agent, "engine": engine.agent, "bag": from_bag}
    expected_updates = cfg.updates_per_step * (N - 1 - cfg.n_exp)      # one rejected; G per learning-phase step
    assert {k: a.updates for k, a in agents.items()} == dict.fromkeys(agents, expected_updates)
    assert trainer.rejected == engine.rejected == report.rejected == 1
    assert {k: a.buffer.length for k, a in agents.items()} == dict.fromkeys(agents, from_bag.buffer.length)
    assert from_bag.buffer.reward_scale == trainer.agent.buffer.reward_scale == engine.agent.buffer.reward_scale
    ref = _buffer(trainer.agent)
    for name in ("engine", "bag"):
        other = _buffer(agents[name])
        assert other.keys() == ref.keys()
        for key in ref:
            assert _same(other[key], ref[key]), f"{name}: buffer '{key}' differs from the headless trainer's"
        torch.testing.assert_close(_params(agents[name]), _params(trainer.agent), rtol=0, atol=0)
