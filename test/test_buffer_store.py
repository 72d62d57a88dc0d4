"""Incremental checkpoints of the Fading Replay Buffer (core/buffer_store.py, core/checkpoint.py AgentCheckpoints):
every save writes only what changed, every restore rebuilds the buffer exactly, old files are collected, a torn
newest checkpoint (or buffer file) falls back to the previous one, stale temporary files go."""
import json

import numpy as np
import pytest
import torch

from conftest import tiny_overrides
from symphony_ros.core.agent import SymphonyAgent
from symphony_ros.core.buffer_store import BufferStore
from symphony_ros.core.checkpoint import AgentCheckpoints, CheckpointError
from symphony_ros.core.config import load_preset
from symphony_ros.core.replay_buffer import FadingReplayBuffer
from symphony_ros.core.storage import StorageRules


def _buffer(cycles=-1, dtype="float32", n_exp=16, times=4):
    return FadingReplayBuffer(3, 2, n_exp, times, terminal_survival_cycles=cycles, dtype=dtype)


def _feed(buf, rng, n, p_term=0.2):
    rules = StorageRules(buf.obs_dim, buf.act_dim, dtype=buf.dtype_name)
    for _ in range(n):
        if not buf.filled and buf.length == buf.n_exp:
            buf.norm_fill()
        buf.add(rules.check(rng.normal(size=3), rng.uniform(-1, 1, 2), rng.normal() + 1.0, rng.normal(size=3),
                            bool(rng.random() < p_term)))


def _same(a: FadingReplayBuffer, b: FadingReplayBuffer) -> None:
    assert torch.equal(a.packed(), b.packed())
    assert np.array_equal(a.terminal, b.terminal) and np.array_equal(a.skips, b.skips)
    assert a.meta() == b.meta()


@pytest.mark.parametrize("cycles, dtype", [(-1, "float32"), (4, "float32"), (-1, "float16")])
def test_every_save_restores_exactly_and_writes_only_what_changed(tmp_path, cycles, dtype):
    rng = np.random.default_rng(1)
    buf = _buffer(cycles, dtype)
    store = BufferStore(tmp_path / "buffer")
    manifests = []
    for n in (5, 9, 1, 30, 0, 64, 7, 200, 3):          # saves in exploration, right after the fill, and later
        _feed(buf, rng, n)
        m = store.save(buf)
        manifests.append(m)
        assert not buf.dirty.any() and buf.fill_block is None
        fresh = _buffer(cycles, dtype)
        BufferStore(tmp_path / "buffer").load(fresh, m)
        _same(buf, fresh)
        if n == 0:
            assert m["bytes_written"] == 0               # nothing changed: nothing written
    # an old manifest still restores what the buffer was then (its files are kept until collected)
    fresh = _buffer(cycles, dtype)
    BufferStore(tmp_path / "buffer").load(fresh, manifests[-2])
    assert fresh.inserted < buf.inserted


def test_a_save_writes_the_changed_rows_only(tmp_path):
    rng = np.random.default_rng(2)
    buf = _buffer(n_exp=64, times=50)                  # 3,200 slots
    store = BufferStore(tmp_path)
    _feed(buf, rng, 64 + 10, p_term=0.0)                # exploration, fill, 10 more
    first = store.save(buf)
    full = buf.capacity * buf.row_bytes()               # 3,200 slots: what a full save would write
    assert first["bytes_written"] < full / 4            # the exploration block once (+ 10 rows), not its 50 copies
    _feed(buf, rng, 7, p_term=0.0)
    m = store.save(buf)
    seg = torch.load(tmp_path / f"seg_{m['segments'][-1]:010d}.pt", weights_only=True)
    assert seg["slots"].numel() == 7                    # exactly the 7 new transitions
    assert m["bytes_written"] < 7 * buf.row_bytes() + 4096   # their rows + one file's framing


def test_segments_are_compacted_and_collected(tmp_path):
    rng = np.random.default_rng(3)
    buf = _buffer(cycles=-1, n_exp=16, times=2)         # 32 slots, terminals live forever (S3)
    store = BufferStore(tmp_path)
    for _ in range(60):
        _feed(buf, rng, 11, p_term=0.3)
        m = store.save(buf)
        store.collect([m])
        fresh = _buffer(cycles=-1, n_exp=16, times=2)
        BufferStore(tmp_path).load(fresh, m)
        _same(buf, fresh)
    assert len(m["segments"]) <= 12 and len(store.files()) <= 13   # bounded, although terminals never die


def _agent(seed=0):
    return SymphonyAgent(4, 2, load_preset("s3", tiny_overrides(n_exp=30, buffer_times=3)), device="cpu", seed=seed)


def _step(agent, rng, n):
    for _ in range(n):
        s = rng.normal(size=4)
        plan = agent.observe(agent.storage_rules.check(s, agent.act(s), float(rng.normal()), rng.normal(size=4),
                                                       bool(rng.random() < 0.1)))
        for _ in range(plan.updates):
            agent.update()


def test_agent_checkpoints_continue_bit_equal_and_fall_back(tmp_path):
    rng = np.random.default_rng(4)
    a = _agent()
    ck = AgentCheckpoints(tmp_path)
    steps = 0
    for n in (20, 15, 40):
        _step(a, rng, n)
        steps += n
        ck.save_agent(steps, dict(kind="training", agent=a.state_dict(include_buffer=False)), a.buffer)
    assert [p.name for p in ck.paths()] == ["ckpt_000000000035.pt", "ckpt_000000000075.pt"]   # keep 2
    assert json.loads((tmp_path / "ckpt_000000000075.buffer.json").read_text())["meta"]["inserted"] == 75

    def resume(into):
        return AgentCheckpoints(tmp_path).load_agent_latest(
            kind="training", validate=lambda p: None, buffer=into.buffer,
            apply=lambda path, p: into.load_state_dict(p["agent"], load_buffer=False))

    b = _agent(seed=99)
    path, _ = resume(b)
    assert path.name == "ckpt_000000000075.pt"
    _same(a.buffer, b.buffer)
    tail = np.random.default_rng(5)
    _step(a, np.random.default_rng(5), 12)
    _step(b, tail, 12)
    for x, y in zip(list(a.actor.parameters()) + list(a.critic.parameters()),
                    list(b.actor.parameters()) + list(b.critic.parameters())):
        assert torch.equal(x, y)                        # continued exactly as if never stopped
    _same(a.buffer, b.buffer)

    newest = tmp_path / "ckpt_000000000075.pt"          # torn newest checkpoint: the previous one is used
    newest.write_bytes(newest.read_bytes()[:100])
    c = _agent(seed=7)
    assert resume(c)[0].name == "ckpt_000000000035.pt" and c.buffer.inserted == 35
    seg = sorted((tmp_path / "buffer").glob("seg_*.pt"))[0]   # a buffer file the old one needs is torn: error
    seg.write_bytes(b"broken")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        resume(_agent(seed=8))


def test_stale_temporary_files_are_removed_at_start(tmp_path):
    (tmp_path / "buffer").mkdir()
    stale = [tmp_path / ".ckpt_000000000010.pt.abc.tmp", tmp_path / "buffer" / ".seg_0000000003.pt.x.tmp"]
    for p in stale:
        p.write_bytes(b"x" * 1000)
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    AgentCheckpoints(tmp_path)
    assert not any(p.exists() for p in stale) and keep.exists()
