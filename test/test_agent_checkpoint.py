"""Agent update paths, network shapes of every preset, and checkpoints (round trip = never stopped; atomic; corrupt)."""
import math
import os

import numpy as np
import pytest
import torch

from conftest import filled_agent, tiny_overrides
from symphony_ros.core.agent import SymphonyAgent
from symphony_ros.core.checkpoint import CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
from symphony_ros.core.config import PRESETS, load_preset


def _step(agent, rng, n):
    for _ in range(n):
        s = rng.normal(size=agent.obs_dim)
        plan = agent.observe(agent.storage_rules.check(s, agent.act(s), float(rng.normal()),
                                                       rng.normal(size=agent.obs_dim), False))
        for _ in range(plan.updates):
            agent.update()


def _params(agent):
    return torch.cat([p.detach().flatten() for p in list(agent.actor.parameters()) + list(agent.critic.parameters())
                      + list(agent.critic_target.parameters())])


@pytest.mark.parametrize("preset", PRESETS)
def test_network_shapes_for_every_preset_on_humanoid(preset):
    import gymnasium as gym
    env = gym.make("Humanoid-v5")
    S, d = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    cfg = load_preset(preset)
    S_in = S + (d if cfg.prev_action_in_obs else 0)
    agent = SymphonyAgent(S_in, d, cfg.replace(n_exp=400, buffer_times=1), device="cpu")
    h, k = cfg.hidden_dim, cfg.heads_per_critic
    assert agent.actor.net.net[0].weight.shape == (h, S_in)
    assert agent.actor.net.net[4].weight.shape == (3 * d, h)
    assert agent.critic.w1.shape == (3, S_in + d, h) and agent.critic.w3.shape == (3, h, k)
    assert agent.critic.n_q == cfg.batch_size == {"ed": 288}.get(preset, 384)
    s = torch.randn(5, S_in)
    a, sig, beta = agent.actor(s)
    assert a.shape == sig.shape == beta.shape == (5, d)
    assert agent.critic(s, a).shape == (5, cfg.n_q)
    n_actor = sum(p.numel() for p in agent.actor.parameters())
    n_critic = sum(p.numel() for p in agent.critic.parameters())
    # docs/algorithm.md#parameter-counts (v4 sizes, S = 376): actor 483k, critics 1.595M; v5 has S = 348
    if preset == "s3":
        assert n_actor == (S_in * h + h) + 2 * h + (h * h + h) + h + (h * 3 * d + 3 * d)
        assert 1.5e6 < n_critic < 1.6e6


def test_update_gradient_paths_and_ema(tiny_cfg):
    agent, rng = filled_agent(tiny_cfg)
    target_before = [p.detach().clone() for p in agent.critic_target.parameters()]
    critic_before = [p.detach().clone() for p in agent.critic.parameters()]
    stats = agent.update()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.actor.parameters())
    assert all(p.grad is not None for p in agent.critic.parameters())
    assert all(p.grad is None for p in agent.critic_target.parameters())     # target: Polyak only
    for tb, cb, t in zip(target_before, critic_before, agent.critic_target.parameters()):
        c_new = dict(zip([id(x) for x in agent.critic_target.parameters()], agent.critic.parameters()))[id(t)]
        assert torch.allclose(t, (1 - tiny_cfg.tau) * tb + tiny_cfg.tau * c_new.detach(), atol=1e-7)
    assert agent.m.item() == pytest.approx((1 - tiny_cfg.ema_alpha) * stats.q_mean.item(), rel=1e-5)
    assert all(math.isfinite(v) for v in stats.as_floats().values())


def test_checkpoint_round_trip_equals_continuing(tmp_path, tiny_cfg):
    a, rng_a = filled_agent(tiny_cfg, seed=1)
    _step(a, rng_a, 5)
    save_checkpoint(tmp_path / "c.pt", dict(kind="training", agent=a.state_dict(), rng=rng_a.bit_generator.state))
    _step(a, rng_a, 7)

    b = SymphonyAgent(6, 2, tiny_cfg, device="cpu", seed=99)              # different init, overwritten by load
    payload = load_checkpoint(tmp_path / "c.pt", kind="training")
    b.load_state_dict(payload["agent"])
    rng_b = np.random.default_rng()
    rng_b.bit_generator.state = payload["rng"]
    _step(b, rng_b, 7)
    assert torch.equal(_params(a), _params(b))
    assert torch.equal(a.buffer.packed(), b.buffer.packed()) and a.buffer.ptr == b.buffer.ptr
    assert a.updates == b.updates and torch.equal(a.m, b.m)
    assert b.buffer.reward_scale == a.buffer.reward_scale


def test_incompatible_checkpoint_is_a_clear_error(tmp_path, tiny_cfg):
    a, _ = filled_agent(tiny_cfg)
    other = SymphonyAgent(7, 2, tiny_cfg, device="cpu")
    with pytest.raises(ValueError, match="obs_dim=6"):
        other.load_state_dict(a.state_dict())
    wide = SymphonyAgent(6, 2, tiny_cfg.replace(hidden_dim=40), device="cpu")
    with pytest.raises(ValueError, match="hidden_dim"):
        wide.load_state_dict(a.state_dict())


def test_atomic_save_corrupt_detection_and_fallback(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=2)
    mgr.save(10, dict(kind="training", value=1))
    mgr.save(20, dict(kind="training", value=2))
    mgr.save(30, dict(kind="training", value=3))
    assert [p.name for p in mgr.paths()] == ["ckpt_000000000020.pt", "ckpt_000000000030.pt"]   # rotation
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]                     # no temp left
    newest = mgr.latest()
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])                                                # torn file
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(newest)
    path, payload = mgr.load_latest(kind="training")
    assert payload["value"] == 2 and path.name == "ckpt_000000000020.pt"                      # previous good one
    (tmp_path / "ckpt_000000000020.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        mgr.load_latest()
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "c.pt"
    save_checkpoint(target, dict(kind="training", value=1))

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_checkpoint(target, dict(kind="training", value=2))
    monkeypatch.undo()
    assert load_checkpoint(target)["value"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_bf16_autocast_update_runs_and_stays_finite():
    cfg = load_preset("s3", tiny_overrides(bf16_autocast=True))
    agent, rng = filled_agent(cfg)
    for _ in range(5):
        stats = agent.update()
    assert all(math.isfinite(v) for v in stats.as_floats().values())
    assert all(p.dtype == torch.float32 for p in agent.actor.parameters())
