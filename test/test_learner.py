"""LearnerEngine (pure logic) and LearnerNode (real DDS, no mocks).

LearnerEngine: lockstep does exactly G updates per stored transition after exploration; bad transitions are rejected,
counted and never stored; weights every K updates; async reaches its UTD target; checkpoints round-trip (buffer,
counters, parameters, and training continues identically).
LearnerNode: a test node plays a lockstep actor (publish, wait for the ack, repeat) and a burst sender; acks, latched
weights and status arrive; every valid transition is stored; malformed ones are rejected and acknowledged; a new node
resumes from checkpoint_dir; `main()` writes its final checkpoint on SIGTERM.

Run: cd /work/main && unshare -n bash -c 'ip link set lo up; . .venv/bin/activate; \
     ROS_DOMAIN_ID=63 python -m pytest -q test/test_learner.py'
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from symphony_ros.core.checkpoint import CheckpointManager
from symphony_ros.core.config import load_preset
from symphony_ros.learner import LearnerEngine

OBS, ACT = 5, 3
TINY = dict(hidden_dim=16, heads_per_critic=4, batch_size=12, n_exp=20, buffer_times=2)
G = 3   # s3's updates_per_step
DEVICE = os.environ.get("SYMPHONY_TEST_DEVICE", "cpu")   # the Learner tests also run on "cuda" (GPU box)


def tiny_cfg(**extra):
    return load_preset("s3", {**TINY, **extra})


@dataclass
class Experience:
    """A raw transition as an actor would send it (checked by the storage rules when offered)."""
    obs: Any
    action: Any
    reward: float
    next_obs: Any
    terminated: bool
    tag: Any = None

    def offer_to(self, learner: LearnerEngine):
        return learner.offer(self.obs, self.action, self.reward, self.next_obs, self.terminated, tag=self.tag)


def experience(rng: np.random.Generator, tag=None, terminated: bool = False) -> Experience:
    return Experience(rng.normal(size=OBS).astype(np.float32), rng.uniform(-1, 1, ACT).astype(np.float32),
                      float(rng.normal() + 0.5), rng.normal(size=OBS).astype(np.float32), terminated, tag)


def make_learner(**kw) -> tuple[LearnerEngine, list, list]:
    """A CPU learner recording (tag, stored, stored_count, updates, weights_version) per ack and weight versions."""
    acks: list = []
    versions: list = []
    cfg = kw.pop("cfg", None) or tiny_cfg()
    learner = LearnerEngine(OBS, ACT, cfg, device=DEVICE, **kw)
    learner.on_processed = lambda tag, stored: acks.append(
        (tag, stored, learner.stored, learner.updates, learner.weights_version))
    learner.on_weights = lambda v, layout, data: versions.append((v, layout, data))
    return learner, acks, versions


def all_params(learner: LearnerEngine) -> torch.Tensor:
    a = learner.agent
    return torch.cat([p.detach().flatten() for m in (a.actor, a.critic, a.critic_target) for p in m.parameters()])


# ============================================================================================== Learner
def test_lockstep_does_exactly_G_updates_per_stored_transition():
    learner, acks, versions = make_learner(mode="lockstep")
    learner.start()
    rng = np.random.default_rng(0)
    N = 50
    for i in range(N):
        experience(rng, tag=i, terminated=(i % 17 == 16)).offer_to(learner)
    assert learner.drain(30)
    learner.stop(10)
    assert learner.updates == G * (N - TINY["n_exp"]) == 90
    assert [a[0] for a in acks] == list(range(N)) and all(a[1] for a in acks)
    for tag, _, stored, updates, wv in acks:   # at each ack: exactly G per transition after exploration, fresh weights
        assert stored == tag + 1
        assert updates == G * max(0, stored - TINY["n_exp"])
        assert wv == updates   # K = G: the weights of exactly these updates were published before the ack
    assert [v for v, _, _ in versions] == list(range(0, 91, G))   # version 0 = untrained actor, then every K
    s = learner.stats()
    assert (s.received, s.stored, s.rejected, s.queued) == (N, N, 0, 0)
    assert s.learning and s.utd == pytest.approx(G) and s.buffer_fill == s.buffer_capacity == 40
    assert all(math.isfinite(x) for x in (s.critic_loss, s.actor_loss, s.sigma_mean, s.beta_mean))


def test_bad_transitions_are_rejected_counted_and_never_stored():
    learner, acks, _ = make_learner(mode="lockstep")
    learner.start()
    rng = np.random.default_rng(1)
    nan_obs = experience(rng, tag="nan_obs")
    nan_obs.obs[2] = np.nan
    inf_reward = experience(rng, tag="inf_reward")
    inf_reward.reward = float("inf")
    short_action = experience(rng, tag="short_action")
    short_action.action = short_action.action[:2]
    long_next = experience(rng, tag="long_next")
    long_next.next_obs = np.zeros(OBS + 1, np.float32)
    bad = [nan_obs, inf_reward, short_action, long_next]
    N = 30
    for i in range(N):
        experience(rng, tag=i).offer_to(learner)
        if i % 7 == 3 and bad:
            bad.pop().offer_to(learner)
    learner.reject("unconvertible", "observation has 4 values, expected 5")   # what the node does on BadMessage
    assert learner.drain(30)
    learner.stop(10)
    s = learner.stats()
    assert (s.received, s.stored, s.rejected) == (N + 5, N, 5)
    assert s.received == s.stored + s.rejected
    assert sum(s.rejected_reasons.values()) == 5
    buf = learner.agent.buffer
    assert buf.inserted == N and bool(torch.isfinite(buf.packed(slice(0, buf.length))).all())
    assert learner.updates == G * (N - TINY["n_exp"])
    by_tag = {a[0]: a[1] for a in acks}
    assert len(acks) == N + 5
    assert not any(by_tag[t] for t in ("nan_obs", "inf_reward", "short_action", "long_next", "unconvertible"))
    assert all(by_tag[i] for i in range(N))


@pytest.mark.parametrize("K", [2, 5])
def test_weights_every_K_updates_with_rising_versions(K):
    learner, acks, versions = make_learner(mode="lockstep", weights_every=K)
    learner.start()
    rng = np.random.default_rng(2)
    for i in range(30):
        experience(rng, tag=i).offer_to(learner)
    assert learner.drain(30)
    learner.stop(10)
    got = [v for v, _, _ in versions]
    assert got == list(range(0, learner.updates + 1, K))   # strictly rising, every K updates
    for _, _, _, updates, wv in acks:
        assert 0 <= updates - wv < K                          # an acknowledged actor is fewer than K updates behind
    _, layout, data = versions[-1]
    assert data.dtype == np.float32 and data.size == sum(p.numel() for p in learner.agent.actor.parameters())
    assert '"obs_dim": 5' in layout


def test_async_reaches_the_utd_target_and_acks_on_storing():
    learner, acks, _ = make_learner(mode="async", utd_target=2.0)
    learner.start()
    rng = np.random.default_rng(3)
    N = 60
    for i in range(N):
        experience(rng, tag=i).offer_to(learner)
        if i % 10 == 0:
            time.sleep(0.01)   # arrive over time, like a robot acting in real time
    assert learner.drain(30)
    assert learner.stop(10)    # caught up: the worker must have idled, not overshot, until it ended
    s = learner.stats()
    assert s.updates == 2 * (N - TINY["n_exp"]) == 80
    assert s.utd == pytest.approx(2.0)
    assert [a[0] for a in acks] == list(range(N)) and all(a[1] for a in acks)
    assert all(a[3] <= 2 * max(0, a[2] - TINY["n_exp"]) for a in acks)   # acked on storing, never after extra work


def test_max_steps_stops_storing_and_updating():
    learner, acks, _ = make_learner(mode="lockstep", max_steps=25)
    learner.start()
    rng = np.random.default_rng(4)
    for i in range(30):
        experience(rng, tag=i).offer_to(learner)
    assert learner.drain(30)
    learner.stop(10)
    s = learner.stats()
    assert s.done and (s.stored, s.rejected, s.updates) == (25, 5, G * 5)
    assert s.rejected_reasons == {"max_steps reached": 5}
    assert len(acks) == 30 and [a[1] for a in acks] == [True] * 25 + [False] * 5


def test_pause_holds_transitions_until_resume(tmp_path):
    learner, acks, _ = make_learner(mode="lockstep")
    learner.start()
    assert learner.pause(5)
    rng = np.random.default_rng(5)
    for i in range(3):
        experience(rng, tag=i).offer_to(learner)
    req = learner.request_save(tmp_path / "while_paused.pt")  # the paused worker wakes, serves it, pauses again
    assert req.done.wait(10) and req.error is None
    assert learner.paused and learner.stats().queued == 3 and not acks   # received, waiting, not lost
    learner.resume()
    assert learner.drain(10) and len(acks) == 3
    learner.stop(10)


def test_checkpoint_round_trip_resumes_buffer_counters_and_training(tmp_path):
    rng = np.random.default_rng(6)
    a, _, _ = make_learner(mode="lockstep", seed=1)
    a.start()
    for i in range(32):
        experience(rng, tag=i, terminated=(i % 9 == 8)).offer_to(a)
    a.reject("bad", "action holds NaN/Inf")
    assert a.drain(30)
    manager = CheckpointManager(tmp_path / "ckpt")
    path = a.save(manager, timeout=30)   # worker running: written by the worker at a safe point
    assert path.name == "ckpt_000000000032.pt"

    b, _, versions_b = make_learner(mode="lockstep", seed=99)   # other seed: everything must come from the file
    assert b.load_latest(tmp_path / "ckpt") == path
    for k in ("received", "stored", "rejected", "updates", "weights_version", "learning_start_stored"):
        assert getattr(b, k) == getattr(a, k), k
    assert b.rejected_reasons == a.rejected_reasons == {"action holds NaN/Inf": 1}
    ba, bb = a.agent.buffer, b.agent.buffer
    assert (bb.length, bb.ptr, bb.filled, bb.reward_scale, bb.inserted) == \
           (ba.length, ba.ptr, ba.filled, ba.reward_scale, ba.inserted)
    assert torch.equal(ba.data, bb.data) and np.array_equal(ba.terminal, bb.terminal)
    assert torch.equal(all_params(a), all_params(b))

    b.start()   # republishes the resumed weights as its first version
    tail = [experience(rng, tag=100 + i) for i in range(4)]
    for e in tail:
        e.offer_to(a)
        e.offer_to(b)
    assert a.drain(30) and b.drain(30)
    a.stop(10)
    b.stop(10)
    assert versions_b[0][0] == G * (32 - TINY["n_exp"])
    assert a.updates == b.updates == G * (36 - TINY["n_exp"])
    assert torch.equal(all_params(a), all_params(b))   # continued exactly as if never stopped


def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path):
    rng = np.random.default_rng(7)
    a, _, _ = make_learner(mode="lockstep")
    a.start()
    manager = CheckpointManager(tmp_path)
    for i in range(24):
        experience(rng, tag=i).offer_to(a)
    assert a.drain(30)
    good = a.save(manager)
    experience(rng).offer_to(a)
    assert a.drain(30)
    newest = a.save(manager)
    a.stop(10)
    newest.write_bytes(newest.read_bytes()[: 200])   # torn file
    b, _, _ = make_learner(mode="lockstep")
    assert b.load_latest(tmp_path) == good and b.stored == 24 and b.updates == G * 4


# ============================================================================================== LearnerNode
# The Learner tests above run without ROS (e.g. on a robot's GPU box); the node tests need rclpy and the interfaces.
try:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from symphony_ros_interfaces import msg as msgs

    from symphony_ros.core.config import config_dir
    from symphony_ros.graph import NodeSpec
    from symphony_ros import contract as ct
    from symphony_ros.nodes.common import qos_profile as qos
    from symphony_ros.nodes.learner import LearnerNode
    NO_ROS = ""
except ImportError as exc:   # rclpy (ROS 2 is optional) or the interfaces package is missing
    NO_ROS = f"ROS 2 node tests need rclpy and symphony_ros_interfaces ({exc})"


@pytest.fixture
def ctx():
    """A fresh rclpy context per test (skips where ROS 2 is missing)."""
    if NO_ROS:
        pytest.skip(NO_ROS)
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


def learner_args(**params) -> list[str]:
    """--ros-args as the graph passes them: config/learner.yaml, then overrides (tiny S3)."""
    base = dict(obs_dim=OBS, act_dim=ACT, device="cpu", status_rate_hz=20.0,
                **{f"symphony.{k}": v for k, v in TINY.items()})
    base.update(params)
    return NodeSpec("learner", "learner", params_file=config_dir() / "learner.yaml", parameters=base).ros_args()


class Harness:
    """A test node playing the actors' side: publishes Transitions, records acks, weights and status."""

    def __init__(self, context, *nodes, name: str = "harness") -> None:
        self.node = rclpy.create_node(name, context=context)
        self.pub = self.node.create_publisher(msgs.Transition, ct.TRANSITIONS.name, qos(ct.TRANSITIONS))
        self.acks: list = []
        self.weights: list = []
        self.status: list = []
        self.node.create_subscription(msgs.LearnerAck, ct.LEARNER_ACK.name, self.acks.append, qos(ct.LEARNER_ACK))
        self.node.create_subscription(msgs.PolicyWeights, ct.POLICY_WEIGHTS.name, self.weights.append,
                                      qos(ct.POLICY_WEIGHTS))
        self.node.create_subscription(msgs.LearnerStatus, ct.LEARNER_STATUS.name, self.status.append,
                                      qos(ct.LEARNER_STATUS))
        self.executor = SingleThreadedExecutor(context=context)
        for n in (self.node,) + nodes:
            self.executor.add_node(n)

    def spin_until(self, pred, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            self.executor.spin_once(timeout_sec=0.01)
        return pred()

    def transition(self, rng, i: int, *, obs_size: int = OBS, reward: float | None = None):
        m = msgs.Transition()
        m.header.frame_id = f"t{i}"
        m.header.stamp.sec = i
        m.step = i
        m.observation = rng.normal(size=obs_size).astype(np.float32).tolist()
        m.action = rng.uniform(-1, 1, ACT).astype(np.float32).tolist()
        m.reward = float(rng.normal()) if reward is None else reward
        m.next_observation = rng.normal(size=OBS).astype(np.float32).tolist()
        m.terminated = False
        return m

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self.spin_until(lambda: self.pub.get_subscription_count() > 0, timeout)

    def destroy(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def test_node_lockstep_handshake_weights_status_and_malformed(ctx):
    node = LearnerNode(context=ctx, cli_args=learner_args(mode="lockstep"))
    assert node.learner is not None and node.learner.running   # autostart: configured + active
    shared: list = []
    h = Harness(ctx, node)
    try:
        assert h.wait_connected()
        rng = np.random.default_rng(10)
        malformed = {7: dict(obs_size=OBS - 1), 23: dict(reward=float("nan")), 31: dict(obs_size=OBS + 2)}
        N = 40 + len(malformed)
        for i in range(N):   # a lockstep actor: next transition only after the ack of the previous one
            h.pub.publish(h.transition(rng, i, **malformed.get(i, {})))
            assert h.spin_until(lambda: len(h.acks) == i + 1, 10), f"no ack for transition {i}"
            ack = h.acks[-1]
            assert ack.header.frame_id == f"t{i}" and ack.header.stamp.sec == i
            assert ack.stored == (i not in malformed)
            assert ack.updates == G * max(0, ack.transitions_stored - TINY["n_exp"])
            assert ack.weights_version == ack.updates   # K = G
            if i == 25:
                node.set_weights_listener(lambda v, layout, data: shared.append(v))   # in-process actor
        assert h.acks[-1].transitions_stored == 40 and h.acks[-1].updates == G * 20
        final = G * 20
        assert h.spin_until(lambda: h.weights and h.weights[-1].version == final, 5)
        assert [w.version for w in h.weights] == sorted({w.version for w in h.weights})   # rising
        assert shared[-1] == final and shared == sorted(shared)
        assert h.spin_until(lambda: h.status and h.status[-1].updates == final, 5)   # a snapshot after the last one
        st = h.status[-1]
        assert (st.transitions_stored, st.transitions_rejected, st.updates) == (40, 3, final)
        assert st.transitions_received == st.transitions_stored + st.transitions_rejected == N
        assert st.learning and st.weights_version == final and st.utd == pytest.approx(G)
        assert st.buffer_fill == st.buffer_capacity == 40 and math.isfinite(st.critic_loss)

        late = Harness(ctx, name="late_actor")   # latched: a subscriber that joins now gets the newest weights
        try:
            assert late.spin_until(lambda: bool(late.weights), 5)
            w = late.weights[-1]
            assert w.version == final and w.preset == "s3"
            assert len(w.data) == sum(p.numel() for p in node.learner.agent.actor.parameters())
            assert np.array_equal(np.asarray(w.data, np.float32), node.learner.current_weights()[2])
        finally:
            late.destroy()
    finally:
        h.destroy()
        node.destroy_node()


def test_node_async_burst_loses_nothing(ctx, record_property):
    # n_exp larger than the burst: pure ingestion (no updates), the figure is the transition throughput
    node = LearnerNode(context=ctx, cli_args=learner_args(mode="async", **{"symphony.n_exp": 5000,
                                                                           "symphony.buffer_times": 1}))
    h = Harness(ctx, node)
    try:
        assert h.wait_connected()
        rng = np.random.default_rng(11)
        N = 1500
        batch = [h.transition(rng, i) for i in range(N)]
        t0 = time.perf_counter()
        for m in batch:
            h.pub.publish(m)
        assert h.spin_until(lambda: node.learner.stats().stored == N, 30)
        rate = N / (time.perf_counter() - t0)
        s = node.learner.stats()
        assert (s.received, s.stored, s.rejected, s.queued) == (N, N, 0, 0)
        assert node.learner.agent.buffer.length == N
        record_property("ingest_transitions_per_s", round(rate))
        print(f"\ningested {N} transitions in-process over DDS at {rate:.0f}/s, none lost")
        node.shutdown_and_checkpoint()   # the embedded runner's exit path
        assert node.learner is None
    finally:
        h.destroy()
        node.destroy_node()


def test_node_resumes_from_checkpoint_after_deactivate_and_shutdown(ctx, tmp_path):
    ckdir = tmp_path / "ckpt"
    node = LearnerNode(context=ctx, cli_args=learner_args(checkpoint_dir=str(ckdir)))
    h = Harness(ctx, node)
    rng = np.random.default_rng(12)
    try:
        assert h.wait_connected()
        for i in range(30):
            h.pub.publish(h.transition(rng, i))
            assert h.spin_until(lambda: len(h.acks) == i + 1, 10)
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert [p.name for p in CheckpointManager(ckdir).paths()] == ["ckpt_000000000030.pt"]
        assert node.trigger_shutdown() == TransitionCallbackReturn.SUCCESS
    finally:
        h.destroy()
        node.destroy_node()

    node2 = LearnerNode(context=ctx, cli_args=learner_args(checkpoint_dir=str(ckdir)))
    h2 = Harness(ctx, node2, name="harness2")
    try:
        assert node2.learner is not None and node2.learner.stored == 30 and node2.learner.updates == G * 10
        assert h2.spin_until(lambda: bool(h2.weights), 5) and h2.weights[-1].version == G * 10   # resumed weights
        assert h2.wait_connected()
        h2.pub.publish(h2.transition(rng, 30))
        assert h2.spin_until(lambda: bool(h2.acks), 10)
        assert (h2.acks[0].transitions_stored, h2.acks[0].updates) == (31, G * 11)
    finally:
        h2.destroy()
        node2.destroy_node()   # final checkpoint on destroy
    assert CheckpointManager(ckdir).latest().name == "ckpt_000000000031.pt"


def test_node_refuses_invalid_parameters_with_reason(ctx, tmp_path):
    node = LearnerNode(context=ctx, cli_args=learner_args(autostart=False, obs_dim=0))
    try:
        for name, value in (("mode", "sometimes"), ("max_steps", -1), ("status_rate_hz", 1e6)):
            res = node.set_parameters([Parameter(name, value=value)])[0]
            assert not res.successful and name in res.reason
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE   # obs_dim 0: refused, says why
        assert node.learner is None
        node.set_parameters([Parameter("obs_dim", value=OBS)])
        for name, value in (("symphony.hidden_dim", "wide"), ("symphony.gamma", 2.0), ("device", "banana")):
            res = node.set_parameters([Parameter(name, value=value)])[0]   # refused when set, with the reason
            assert not res.successful and name.split(".")[-1] in res.reason, res.reason
        node.set_parameters([Parameter("symphony.hidden_dim", value=16)])
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.learner is not None and not node.learner.running           # configured, not active yet
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS and node.learner is None
    finally:
        node.destroy_node()


def test_main_writes_final_checkpoint_on_sigterm(ctx, tmp_path):
    """The `ros2 run symphony_ros learner` entry point in its own process, fed over DDS, stopped with SIGTERM."""
    ckdir = tmp_path / "ckpt"
    cmd = [sys.executable, "-c", "import sys; from symphony_ros.nodes.learner import main; sys.exit(main())",
           *learner_args(checkpoint_dir=str(ckdir), checkpoint_every_s=0.0)]
    proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    h = Harness(ctx, name="sigterm_actor")
    try:
        assert h.spin_until(lambda: bool(h.weights), 30), "the learner process published no weights"
        rng = np.random.default_rng(13)
        for i in range(22):
            h.pub.publish(h.transition(rng, i))
            assert h.spin_until(lambda: len(h.acks) == i + 1, 10)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        h.destroy()
    assert proc.returncode == 0, out
    latest = CheckpointManager(ckdir).latest()
    assert latest is not None and latest.name == "ckpt_000000000022.pt", out
