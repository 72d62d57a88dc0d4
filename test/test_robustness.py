"""No input can poison the learner: absurd but finite transitions are rejected by the storage rules, the update guard
skips non-finite updates (bit-exactly) and restores the last good state after too many in a row, non-finite weights
are never published or checkpointed, and every bad command-line input is one line, not a traceback."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import filled_agent, tiny_overrides
from symphony_ros.core.agent import GOOD_STATE_EVERY
from symphony_ros.core.checkpoint import CheckpointError
from symphony_ros.core.config import load_preset
from symphony_ros.learner import LearnerEngine

ROOT = Path(__file__).resolve().parents[1]
OBS, ACT = 5, 3
TINY = dict(hidden_dim=16, heads_per_critic=4, batch_size=12, n_exp=20, buffer_times=2)


def _params(agent) -> torch.Tensor:
    return torch.cat([t.flatten().clone() for t in agent._guarded()])


def test_absurd_transitions_are_rejected_and_the_learner_stays_healthy():
    versions = []
    learner = LearnerEngine(OBS, ACT, load_preset("s3", TINY), device="cpu", mode="lockstep",
                            on_weights=lambda v, lay, data: versions.append(data))
    learner.start()
    rng = np.random.default_rng(0)
    ok = lambda: (rng.normal(size=OBS), rng.uniform(-1, 1, ACT), float(rng.normal()), rng.normal(size=OBS))
    absurd = [dict(next_obs=np.full(OBS, 1e30)), dict(next_obs=np.full(OBS, 3.4e38)), dict(reward=1e30),
              dict(reward=-3.4e38), dict(obs=np.full(OBS, -1e7)), dict(action=np.full(ACT, 1.5)),
              dict(action=np.full(ACT, -7.0))]
    n_good = 0
    for i in range(60):
        s, a, r, s2 = ok()
        t = dict(obs=s, action=a, reward=r, next_obs=s2)
        if i % 8 == 3 and absurd:
            t.update(absurd.pop())
        else:
            n_good += 1
        learner.offer(t["obs"], t["action"], t["reward"], t["next_obs"], False, tag=i)
    assert learner.drain(60)
    learner.stop(10)
    st = learner.stats()
    assert (st.stored, st.rejected) == (n_good, 7) and not absurd
    assert set(st.rejected_reasons) >= {"action holds |1.5| outside the action bounds [-1, 1]",
                                         "reward 1e+30 is beyond the limit 1e+06"}
    assert st.healthy and st.updates_skipped == 0 and np.isfinite(st.critic_loss)
    assert versions and all(np.isfinite(v).all() for v in versions)
    assert bool(torch.isfinite(learner.agent.buffer.packed(slice(0, learner.agent.buffer.length))).all())


def test_update_guard_skips_non_finite_updates_exactly_and_restores_the_last_good_state():
    cfg = load_preset("s3", tiny_overrides(max_bad_updates=5))
    agent, _ = filled_agent(cfg)
    agent.update()
    assert agent.guard(cfg.max_bad_updates) is None          # healthy: the guard remembers this state ...
    good = _params(agent)
    for _ in range(GOOD_STATE_EVERY // 10):                  # ... and not again before GOOD_STATE_EVERY updates
        agent.update()
        assert agent.guard(cfg.max_bad_updates) is None
    assert agent.health() == (0, 0)
    now = _params(agent)
    buf = agent.buffer
    saved = buf.data.clone()
    buf.data.fill_(float("nan"))                            # a poisoned buffer (what the storage rules prevent)
    for k in range(4):
        agent.update()
        assert torch.equal(_params(agent), now)             # a skipped update changes nothing, bit for bit
        assert agent.health() == (k + 1, k + 1) and agent.guard(cfg.max_bad_updates) is None
    agent.update()
    said = agent.guard(cfg.max_bad_updates)                  # the 5th in a row: restore and say so
    assert said and "restored the last good state" in said and agent.restores == 1
    assert torch.equal(_params(agent), good) and agent.health() == (5, 0)
    buf.data.copy_(saved)                                   # sane data again: learning goes on
    agent.update()
    assert agent.health() == (5, 0) and not torch.equal(_params(agent), good) and agent.finite_parameters()


def test_non_finite_weights_are_never_published_or_checkpointed(tmp_path):
    published = []
    learner = LearnerEngine(OBS, ACT, load_preset("s3", TINY), device="cpu",
                            on_weights=lambda v, lay, data: published.append(v))
    with torch.no_grad():
        next(learner.agent.actor.parameters()).view(-1)[0] = float("nan")
    learner.start()
    rng = np.random.default_rng(1)
    for i in range(30):
        learner.offer(rng.normal(size=OBS), rng.uniform(-1, 1, ACT), 1.0, rng.normal(size=OBS), False, tag=i)
    assert learner.drain(60)
    with pytest.raises(CheckpointError, match="not finite"):
        learner.save(tmp_path / "x.pt", timeout=10)
    learner.stop(10)
    assert published == [] and learner.stats().weights_withheld >= 1
    assert not (tmp_path / "x.pt").exists()


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "symphony_ros.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


TINY_ARGS = ["--set", "hidden_dim=16", "--set", "heads_per_critic=4", "--set", "batch_size=12", "--set",
             "n_exp=40", "--set", "buffer_times=2", "--no-progress"]


@pytest.mark.parametrize("args, says", [
    (["--device", "cuda"], "CUDA is not available"),
    (["--device", "banana"], "'banana' is not a device"),
    (["--headless", "--device", "cuda"], "CUDA is not available"),
    (["--env", "NoSuchEnv-v0"], "NoSuchEnv"),
    (["--headless", "--env", "NoSuchEnv-v0"], "NoSuchEnv"),
    (["--max-steps", "-5"], "must be >= 0"),
    (["--robots", "0"], "must be >= 1"),
    (["--set", "gamma=banana"], "'gamma'"),
])
def test_bad_train_arguments_are_one_line(args, says, tmp_path):
    r = _cli("train", "--out", str(tmp_path / "run"), *TINY_ARGS, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert says in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert len([ln for ln in r.stderr.splitlines() if "error" in ln.lower()]) == 1, r.stderr


def test_out_under_a_file_is_one_line(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for mode in ([], ["--headless"]):
        r = _cli("train", "--env", "InvertedPendulum-v5", "--out", str(f / "run"), *TINY_ARGS, *mode)
        assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout, r.stderr
        assert str(f) in r.stderr


def test_embedded_train_with_a_corrupt_checkpoint_is_one_line(tmp_path):
    pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
    ck = tmp_path / "run" / "checkpoints"
    ck.mkdir(parents=True)
    (ck / "ckpt_000000000100.pt").write_bytes(b"not a checkpoint")
    r = _cli("train", "--env", "InvertedPendulum-v5", "--out", str(tmp_path / "run"), "--device", "cpu",
             "--max-steps", "50", *TINY_ARGS)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "corrupt" in r.stderr and "learner" in r.stderr and "Traceback" not in r.stderr + r.stdout


def test_the_progress_bar_after_a_resume_shows_the_runs_total_steps(tmp_path):
    pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
    out = tmp_path / "run"
    common = ["train", "--env", "InvertedPendulum-v5", "--out", str(out), "--device", "cpu", *TINY_ARGS[:-1]]
    r = _cli(*common, "--max-steps", "60", "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    r = _cli(*common, "--max-steps", "90")            # resumes from the checkpoint of the first run
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from" in r.stderr and "60/90" in r.stderr, r.stderr[-2000:]
