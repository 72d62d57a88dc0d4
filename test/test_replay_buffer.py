"""Fading Replay Buffer (docs/algorithm.md#replay-buffer): exploration fill, inverse-CDF sampling at N = 512,000,
O(1) insertion, terminals."""
import math

import numpy as np
import pytest
import torch

from symphony_ros.core.rank_weights import replay_sampling_weights
from symphony_ros.core.replay_buffer import FadingReplayBuffer
from symphony_ros.core.storage import StorageRules


def _buf(n_exp=10, times=3, cycles=-1, dtype="float32", family="tanh", power=math.e, obs=2, act=1):
    return FadingReplayBuffer(obs, act, n_exp, times, family=family, power=power, terminal_survival_cycles=cycles,
                              dtype=dtype)


def _add(buf, s, a, r, s2, terminated):
    """One transition through the storage rules (as every caller stores them), then into the buffer."""
    rules = StorageRules(buf.obs_dim, buf.act_dim, dtype=buf.dtype_name)
    return buf.add(rules.check(s, a, r, s2, terminated))


def _ids(buf):
    """Transition ids (stored in s[0]) in age order, oldest first."""
    order = [(buf.ptr + j) % buf.capacity for j in range(buf.capacity)]
    return [int(round(float(buf.data[k, 0]))) for k in order]


def test_exploration_then_norm_fill():
    buf = _buf(n_exp=4, times=3)
    rewards = [1.0, -3.0, 2.0, 2.0]
    for i, r in enumerate(rewards):
        _add(buf, [i, 0], [0.1], r, [i + 1, 0], terminated=(i == 3))
    assert buf.length == buf.n_exp and not buf.filled               # the exploration block is complete
    assert buf.packed(slice(0, 4))[:, 3].tolist() == rewards        # stored raw during exploration
    scale = buf.norm_fill()
    assert scale == pytest.approx(2.0)                               # r̄ₙ = mean|r|
    assert buf.length == buf.capacity == 12 and buf.ptr == 0
    rows = buf.packed()
    assert torch.equal(rows[4:8], rows[:4]) and torch.equal(rows[8:], rows[:4])   # 3 copies
    assert rows[:4, 3].tolist() == [0.5, -1.5, 1.0, 1.0]
    assert buf.terminal.tolist() == [False, False, False, True] * 3
    assert rows[3, -1].item() == 0.0 and rows[0, -1].item() == pytest.approx(0.99)   # g = γ(1 − done)
    slot = _add(buf, [9, 0], [0.0], 4.0, [9, 0], False)
    assert buf.packed(slot)[3].item() == pytest.approx(2.0)         # later rewards divided by the frozen scale


def test_sampling_distribution_at_512k_matches_appendix_a():
    N = 512_000
    buf = _buf(n_exp=10_240, times=50, obs=1, act=1)
    buf.length, buf.filled = N, True                                 # contents are irrelevant to the rank law
    g = torch.Generator().manual_seed(0)
    ranks = torch.cat([buf.sample_ranks(2_000_000, g) for _ in range(5)]).numpy()   # 10M draws
    p = replay_sampling_weights(N, "tanh", math.e).numpy()
    newest = ranks >= N - N // 100                                    # newest 1% of slots
    expected_newest = p[N - N // 100:].sum()
    assert newest.mean() == pytest.approx(expected_newest, rel=0.01)
    assert newest.mean() * 100 == pytest.approx(1.34, abs=0.01)      # ≈ 1.34× the uniform rate
    assert (ranks < N // 10).mean() == pytest.approx(0.0015, rel=0.1)  # oldest 10% ≈ 0.15% of samples
    assert (N - 1 - ranks).mean() == pytest.approx(193.7e3, rel=0.005)  # mean sampled age ≈ 194k
    assert ranks.min() >= 1 and ranks.max() <= N - 1                 # p(oldest) = tanh(0) = 0


def test_insertion_is_o1_and_fifo_without_terminals():
    buf = _buf(n_exp=5, times=2)
    for i in range(5):
        _add(buf, [i, 0], [0], 1.0, [0, 0], False)
    buf.norm_fill()
    ptr_before = buf.data.data_ptr()
    before = buf.data.clone()
    slot = _add(buf, [100, 0], [0], 1.0, [0, 0], False)
    changed = (buf.data != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == [slot] and buf.data.data_ptr() == ptr_before   # one row written, nothing copied
    for i in range(101, 112):
        _add(buf, [i, 0], [0], 1.0, [0, 0], False)
    assert _ids(buf) == list(range(102, 112))                         # oldest first, newest last


def _reference_roll_survivors(events, N):
    """S3 reference (roll buffer): write at N−1, then roll left by 1, or by 2 if index 0 is terminal."""
    L = list(events[:N])
    L = L[1:] + L[:1] if not L[0][1] else L[2:] + L[:2]  # roll that follows the write that completed the fill
    for ev in events[N:]:
        L[-1] = ev
        shift = 2 if L[0][1] else 1
        L = L[shift:] + L[:shift]
    return sorted(e[0] for e in L[:-1])                                # index N−1 is the row evicted next


def test_terminals_live_forever_like_the_reference_roll_buffer():
    rng = np.random.default_rng(3)
    N = 40
    buf = _buf(n_exp=N, times=1, cycles=-1)
    events = [(i, bool(rng.random() < 0.15)) for i in range(600)]
    for i, term in events[:N]:
        _add(buf, [i, 0], [0], 1.0, [0, 0], term)
    buf.norm_fill()
    for i, term in events[N:]:
        _add(buf, [i, 0], [0], 1.0, [0, 0], term)
    ours = _ids(buf)
    assert ours[-1] == events[-1][0]                                  # newest at the newest rank
    old_terminals = {i for i, t in events[:-N] if t}
    assert len(old_terminals & set(ours)) >= 5                        # terminals outlive the FIFO window
    ref = _reference_roll_survivors(events, N)
    assert set(ref) <= set(ours) and len(set(ours) - set(ref)) == 1   # same survivors (+ the one the ref evicts next)


def _reference_float_trick_survivors(events, N):
    """S2~ (Mar-2026) circular buffer: if g[ptr].item() < 3e-8, g[ptr] += 1e-8 and skip once. The counter is
    float32, the comparison (``.item()``) in double precision: float32(3e-8) = 2.99999989e-8 < 3e-8 still."""
    ids = [e[0] for e in events[:N]]
    g = np.array([0.0 if t else 0.99 for _, t in events[:N]], dtype=np.float32)
    ptr = 0
    for i, t in events[N:]:
        if float(g[ptr]) < 3e-8:
            g[ptr] = np.float32(g[ptr] + np.float32(1e-8))
            ptr = (ptr + 1) % N
        ids[ptr], g[ptr] = i, np.float32(0.0 if t else 0.99)
        ptr = (ptr + 1) % N
    return sorted(ids)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_terminals_survive_four_skips_like_the_s2_tilde_float_trick(dtype):
    rng = np.random.default_rng(5)
    N = 30
    buf = _buf(n_exp=N, times=1, cycles=4, dtype=dtype)
    events = [(i, bool(rng.random() < 0.2)) for i in range(500)]
    for i, t in events[:N]:
        _add(buf, [i, 0], [0], 1.0, [0, 0], t)
    buf.norm_fill()
    for i, t in events[N:]:
        _add(buf, [i, 0], [0], 1.0, [0, 0], t)
    assert sorted(_ids(buf)) == _reference_float_trick_survivors(events, N)


def test_terminal_survival_zero_is_plain_fifo():
    buf = _buf(n_exp=4, times=1, cycles=0)
    for i in range(4):
        _add(buf, [i, 0], [0], 1.0, [0, 0], True)
    buf.norm_fill()
    for i in range(4, 8):
        _add(buf, [i, 0], [0], 1.0, [0, 0], False)
    assert _ids(buf) == [4, 5, 6, 7]


@pytest.mark.parametrize("bad", [dict(s=[np.nan, 0]), dict(s=[0, 0, 0]), dict(a=[0, 0]), dict(r=float("inf")),
                                 dict(s2=[1e6, 0])])
def test_bad_transitions_are_refused_and_change_nothing(bad):
    buf = _buf(n_exp=3, times=2, dtype="float16")
    for i in range(3):
        _add(buf, [i, 0], [0], 1.0, [0, 0], False)
    buf.norm_fill()
    snap = (buf.packed().clone(), buf.terminal.copy(), buf.ptr, buf.inserted)
    kw = dict(s=[1, 1], a=[0.5], r=1.0, s2=[1, 1], terminated=False)
    kw.update(bad)
    with pytest.raises(ValueError):
        _add(buf, kw["s"], kw["a"], kw["r"], kw["s2"], kw["terminated"])
    assert torch.equal(buf.packed(), snap[0]) and (buf.terminal == snap[1]).all()
    assert (buf.ptr, buf.inserted) == snap[2:]


def test_state_dict_round_trip_and_sample_dtype():
    buf = _buf(n_exp=6, times=2, dtype="float16", cycles=2)
    for i in range(6):
        _add(buf, [i, 1], [0.25], float(i), [i, 2], i == 2)
    buf.norm_fill()
    _add(buf, [7, 7], [0.5], 3.0, [7, 8], True)
    other = _buf(n_exp=6, times=2, dtype="float16", cycles=2)
    other.load_state_dict(buf.state_dict())
    assert torch.equal(other.packed(), buf.packed()) and (other.terminal == buf.terminal).all()
    assert (other.ptr, other.reward_scale, other.filled) == (buf.ptr, buf.reward_scale, True)
    s, a, r, s2, g = other.sample(5, torch.Generator().manual_seed(0))
    assert s.dtype == torch.float32 and s.shape == (5, 2) and a.shape == (5, 1) and r.shape == g.shape == (5, 1)
    with pytest.raises(ValueError, match="obs_dim"):
        _buf(n_exp=6, times=2, dtype="float16", obs=3).load_state_dict(buf.state_dict())
