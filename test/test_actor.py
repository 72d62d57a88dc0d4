"""ActorNode and its safety layer.

Pure tests of :mod:`symphony_ros.control.safety` (random property loops), then the node over real DDS in-process
(a fresh rclpy context per test): a test node plays bridge and learner on the real topics.
Run: unshare -n bash -c 'ip link set lo up; . .venv/bin/activate;
                         ROS_DOMAIN_ID=62 python -m pytest -q test/test_actor.py'
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from symphony_ros.control.safety import CommandMapping, SafetyLayer, Watchdog, limits_from_params
from symphony_ros.core.config import load_preset
from symphony_ros.core.schedule import TrainingSchedule

OBS, ACT = 5, 3
TINY = dict(hidden_dim=16, heads_per_critic=4, batch_size=12, n_exp=10, buffer_times=2)
LIM = [-0.4, -0.4, -0.4], [0.4, 0.4, 0.4]


# ============================================================================================= pure safety logic
def _random_layer(rng: np.random.Generator, n: int) -> SafetyLayer:
    lo = rng.uniform(-3, 1, n)
    hi = lo + rng.uniform(1e-3, 4, n)
    return SafetyLayer(lo, hi, rng.uniform(lo, hi))


def _nasty_command(rng: np.random.Generator, n: int):
    kind = rng.integers(0, 8)
    if kind == 0:
        return rng.normal(0, 1, n) * 10.0 ** rng.uniform(-3, 308, n)           # huge, both signs
    if kind == 1:
        v = rng.normal(0, 1e6, n)
        v[rng.random(n) < 0.5] = rng.choice([np.nan, np.inf, -np.inf])
        return v
    if kind == 2:
        return np.full(n, rng.choice([np.nan, np.inf, -np.inf]))
    if kind == 3:
        return rng.normal(0, 1, int(rng.integers(0, 2 * n + 3)))                # wrong size (maybe right)
    if kind == 4:
        odd = [None, "abc", object(), [1.0, "x"], {"a": 1}, 3.0, [[1.0] * n], [1 + 2j] * n]
        return odd[int(rng.integers(0, len(odd)))]
    if kind == 5:
        return (rng.normal(0, 1, n) * 1e30).astype(np.float32)                  # float32 overflow territory
    if kind == 6:
        return [float(x) for x in rng.uniform(-1, 1, n)]                        # plain list, in range
    return rng.integers(-10**12, 10**12, n)                                     # integers


def test_safety_layer_always_finite_and_inside_limits():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 20))
        layer = _random_layer(rng, n)
        for _ in range(10):
            cmd = _nasty_command(rng, n)
            out = layer.clamp(cmd)
            assert out.shape == (n,) and out.dtype == np.float64
            assert np.isfinite(out).all()
            assert (out >= layer.lower).all() and (out <= layer.upper).all()
            assert layer.check(out)


def test_safety_layer_semantics():
    layer = SafetyLayer([-1, -2, 0], [1, 2, 3], [0.5, 0, 1])
    np.testing.assert_array_equal(layer.clamp([0.25, -1.5, 2.0]), [0.25, -1.5, 2.0])     # inside: unchanged
    np.testing.assert_array_equal(layer.clamp([5, -5, -1]), [1, -2, 0])                  # clipped
    np.testing.assert_array_equal(layer.clamp([np.nan, np.inf, -np.inf]), [0.5, 0, 1])   # per-joint safe value
    np.testing.assert_array_equal(layer.clamp([np.nan, 10, 1.5]), [0.5, 2, 1.5])
    np.testing.assert_array_equal(layer.clamp([1, 2]), layer.safe())                     # wrong size
    np.testing.assert_array_equal(layer.clamp(None), layer.safe())
    cmd = np.array([9.0, np.nan, 1.0])
    layer.clamp(cmd)
    assert cmd[0] == 9.0 and np.isnan(cmd[1])                                           # input untouched
    s = layer.safe()
    s[0] = 99
    np.testing.assert_array_equal(layer.safe(), [0.5, 0, 1])                            # safe() is a copy


@pytest.mark.parametrize("args, match", [
    (([0, 0], [1], [0, 0]), "joint_upper has 1"),
    (([0, 1], [1, 1], [0, 1]), "joint 1: joint_lower"),
    (([0, 2], [1, 1], [0, 1]), "joint 1: joint_lower"),
    (([0, np.nan], [1, 1], [0, 0]), "NaN"),
    (([0, 0], [1, np.inf], [0, 0]), "NaN/Inf"),
    (([0, 0], [1, 1], [0, 2]), "joint 1: safe_command 2.0 is outside"),
    (([0, 0], [1, 1], [0]), "safe_command has 1"),
    (([], [], []), "non-empty"),
    ((["a"], [1], [0]), "list of numbers"),
])
def test_safety_layer_rejects_bad_limits(args, match):
    with pytest.raises(ValueError, match=match):
        SafetyLayer(*args)


def test_limits_from_params():
    layer, default = limits_from_params(None, None, None, None)
    assert layer is None and default
    layer, default = limits_from_params([], [], [], 3)
    assert default and layer.size == 3
    np.testing.assert_array_equal(layer.lower, -1.0)
    np.testing.assert_array_equal(layer.safe(), 0.0)
    layer, default = limits_from_params([0.1, 0.2], [1.0, 1.0], None, None)            # zeros clipped into limits
    assert not default
    np.testing.assert_array_equal(layer.safe(), [0.1, 0.2])
    layer, _ = limits_from_params(None, None, [0.5, -0.5], None)                        # size from safe_command
    assert layer.size == 2
    with pytest.raises(ValueError, match="both"):
        limits_from_params([0.0], None, None, 1)
    with pytest.raises(ValueError, match="act_dim 3"):
        limits_from_params([-1, -1], [1, 1], None, 3)


def test_watchdog():
    w = Watchdog(0.5)
    assert w.expired(0.0) and w.age(0.0) == math.inf          # never fed
    w.feed(10.0)
    assert not w.expired(10.5) and w.expired(10.51)
    w.reset()
    assert w.expired(10.0)
    for bad in (0, -1, math.nan, math.inf, "1"):
        with pytest.raises(ValueError):
            Watchdog(bad)


def test_command_mapping():
    lo, hi = np.array([-0.4, 0.0]), np.array([0.4, 2.0])
    np.testing.assert_array_equal(CommandMapping(lo, hi, "paper")(np.array([0.9, -0.5])), [0.9, -0.5])
    m = CommandMapping(lo, hi, "rescale")
    np.testing.assert_allclose(m(np.array([-1.0, 1.0])), [-0.4, 2.0])
    np.testing.assert_allclose(m(np.array([0.0, 0.0])), [0.0, 1.0])
    np.testing.assert_allclose(m(np.array([7.0, -7.0])), [0.4, 0.0])                    # clipped
    with pytest.raises(ValueError, match="command_mode 'x'"):
        CommandMapping(lo, hi, "x")


def test_execution_gains():
    execution_gains = TrainingSchedule(load_preset("s3", dict(episode_limit=1000, zero_policy_window=50))
                                       ).execution_gains
    for sim in (True, False):
        for det in (True, False):
            assert execution_gains(999, learning=False, simulation=sim, deterministic=det) == (1.0, 1.0)
    # the reference's 1-based `steps < limit - 50`: 51 noise-only steps, from 0-based step 949
    assert execution_gains(948, learning=True, simulation=True, deterministic=False) == (1.0, 1.0)
    assert execution_gains(949, learning=True, simulation=True, deterministic=False) == (0.0, 1.0)
    assert execution_gains(999, learning=True, simulation=True, deterministic=True) == (0.0, 1.0)
    assert execution_gains(999, learning=True, simulation=False, deterministic=False) == (1.0, 1.0)
    assert execution_gains(999, learning=True, simulation=False, deterministic=True) == (1.0, 0.0)
    no_window = TrainingSchedule(load_preset("s3", dict(episode_limit=1000, zero_policy_window=0)))
    assert no_window.execution_gains(999, learning=True, simulation=True, deterministic=False) == (1.0, 1.0)


# ============================================================================================= node over DDS
rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
msgs = pytest.importorskip("symphony_ros_interfaces.msg",
                           reason="symphony_ros_interfaces not built: pip install --no-cache-dir ./interfaces")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from symphony_ros import contract as ct  # noqa: E402
from symphony_ros.core.config import config_dir  # noqa: E402
from symphony_ros.core.policy import build_actor, export_actor, flatten_actor  # noqa: E402
from symphony_ros.graph import NodeSpec  # noqa: E402
from symphony_ros.nodes import common as c  # noqa: E402
from symphony_ros.nodes.actor import ActorNode  # noqa: E402
from symphony_ros.nodes.common import qos_profile as qos  # noqa: E402


def tiny_weights(scale: float = 1.0, seed: int = 0, hidden: int = 16) -> tuple[str, np.ndarray]:
    """(layout JSON, flat float32 weights) of a real tiny-preset Actor (obs 5, act 3)."""
    torch.manual_seed(seed)
    actor = build_actor(OBS, ACT, load_preset("s3", dict(TINY, hidden_dim=hidden)))
    layout, flat = flatten_actor(actor)
    return layout, (flat * np.float32(scale)).astype(np.float32)


class Bench:
    """The ActorNode plus a test node speaking the bridge's and the learner's topics, one executor."""

    def __init__(self, **params):
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        base = {"symphony.hidden_dim": 16, "robot_id": "r1", "obs_timeout_s": 5.0}
        base.update(params)
        spec = NodeSpec("actor", "actor", params_file=config_dir() / "actor.yaml", parameters=base)
        try:
            self.actor = ActorNode(cli_args=spec.ros_args(), context=self.ctx)
        except BaseException:
            rclpy.try_shutdown(context=self.ctx)
            raise
        self.node = rclpy.create_node("actor_test_bench", context=self.ctx)
        n = self.node
        self.env_pub = n.create_publisher(msgs.EnvStep, ct.ENV_STEP.name, qos(ct.ENV_STEP))
        self.w_pub = n.create_publisher(msgs.PolicyWeights, ct.POLICY_WEIGHTS.name, qos(ct.POLICY_WEIGHTS))
        self.ack_pub = n.create_publisher(msgs.LearnerAck, ct.LEARNER_ACK.name, qos(ct.LEARNER_ACK))
        self.status_pub = n.create_publisher(msgs.LearnerStatus, ct.LEARNER_STATUS.name, qos(ct.LEARNER_STATUS))
        self.cmds: list[np.ndarray] = []
        self.trs: list = []
        n.create_subscription(Float64MultiArray, ct.JOINT_COMMANDS.name,
                              lambda m: self.cmds.append(np.array(m.data, dtype=np.float64)), qos(ct.JOINT_COMMANDS))
        n.create_subscription(msgs.Transition, ct.TRANSITIONS.name, self.trs.append, qos(ct.TRANSITIONS))
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.actor)
        self.ex.add_node(n)
        self.episode_step = 0

    # -------------------------------------------------------------------------------------- spinning
    def spin_until(self, pred, timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            self.ex.spin_once(timeout_sec=0.01)
        return bool(pred())

    def wait_connected(self) -> None:
        """The actor's topics (created at configure) and ours have matched."""
        a = self.actor
        ok = self.spin_until(lambda: self.env_pub.get_subscription_count() > 0
                             and self.w_pub.get_subscription_count() > 0
                             and self.ack_pub.get_subscription_count() > 0
                             and a._cmd_pub is not None and a._cmd_pub.get_subscription_count() > 0
                             and a._tr_pub.get_subscription_count() > 0)
        assert ok, "actor and test node did not discover each other"

    # -------------------------------------------------------------------------------------- learner side
    def weights(self, version: int, layout: str | None = None, data: np.ndarray | None = None,
                wait: bool = True, learner_id: str = "") -> None:
        if layout is None:
            layout, data = tiny_weights()
        m = msgs.PolicyWeights()
        m.version, m.preset, m.layout, m.learner_id = version, "s3", layout, learner_id
        m.data = data.astype(np.float32).tolist()
        seen = self.counts()
        self.w_pub.publish(m)
        if wait:
            assert self.spin_until(lambda: self.counts() != seen), f"weights version {version} not processed"

    def counts(self) -> tuple[int, int, int, int]:
        a = self.actor
        return a.weights_version, a.bad_weights, a.weights_ignored, a.learner_changes

    def ack(self, tr, weights_version: int = 0, stamp_offset: int = 0, frame_id: str | None = None,
            learner_id: str = "") -> None:
        m = msgs.LearnerAck()
        m.header.frame_id = tr.header.frame_id if frame_id is None else frame_id
        c.set_stamp(m.header, c.stamp_ns(tr.header) + stamp_offset)
        m.weights_version, m.stored, m.learner_id = weights_version, True, learner_id
        self.ack_pub.publish(m)

    # -------------------------------------------------------------------------------------- bridge side
    def env_step(self, episode: int, step: int, obs, reward: float = 0.0, terminated: bool = False,
                 truncated: bool = False) -> None:
        m = msgs.EnvStep()
        m.episode, m.step = episode, step
        m.observation = [float(x) for x in obs]
        m.reward, m.terminated, m.truncated = float(reward), terminated, truncated
        self.env_pub.publish(m)

    def step_and_wait(self, episode: int, step: int, obs, reward: float = 0.0, **kw) -> np.ndarray:
        """Lockstep bridge: publish an env_step and wait for its command."""
        n = len(self.cmds)
        self.env_step(episode, step, obs, reward, **kw)
        assert self.spin_until(lambda: len(self.cmds) > n), f"no command for episode {episode} step {step}"
        return self.cmds[n]

    def assert_safe_commands(self, lower, upper) -> None:
        assert self.cmds, "no commands received"
        for cmd in self.cmds:
            assert cmd.shape == (len(lower),) and np.isfinite(cmd).all()
            assert (cmd >= np.asarray(lower)).all() and (cmd <= np.asarray(upper)).all(), cmd

    def close(self) -> None:
        self.ex.shutdown()
        self.actor.destroy_node()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


@pytest.fixture
def bench():
    made: list[Bench] = []

    def make(**params) -> Bench:
        b = Bench(**params)
        made.append(b)
        if b.actor.is_active or b.actor._cmd_pub is not None:
            b.wait_connected()
        return b

    yield make
    for b in made:
        b.close()


def _obs(rng, scale: float = 1.0) -> np.ndarray:
    return (rng.normal(0, 1, OBS) * scale).astype(np.float32)


def test_acts_and_sends_consecutive_transitions(bench):
    b = bench(joint_lower=LIM[0], joint_upper=LIM[1])
    b.weights(0)
    rng = np.random.default_rng(1)
    obs = [_obs(rng) for _ in range(6)]
    rewards = [0.0, 1.5, -0.25, 2.0, 0.5, -1.0]
    cmds = [b.step_and_wait(0, k, obs[k], rewards[k]) for k in range(5)]
    b.env_step(0, 5, obs[5], rewards[5], terminated=True)         # terminal: a transition, no command
    assert b.spin_until(lambda: len(b.trs) == 5)                  # the terminal step's callback has run
    # a robot's episode is over: the actor goes to the safe command (safe_ramp_s 0: at once) and waits
    assert b.spin_until(lambda: len(b.cmds) == 6) and b.actor.commands_sent == 6 and b.actor.steps_acted == 5
    np.testing.assert_array_equal(b.cmds[5], [0.0, 0.0, 0.0])
    for k, tr in enumerate(b.trs):
        assert (tr.header.frame_id, tr.episode, tr.step) == ("r1", 0, k)
        np.testing.assert_array_equal(np.asarray(tr.observation), obs[k])
        np.testing.assert_array_equal(np.asarray(tr.next_observation), obs[k + 1])
        assert tr.reward == pytest.approx(rewards[k + 1])
        assert tr.terminated == (k == 4) and not tr.truncated
        a = np.asarray(tr.action, dtype=np.float64)               # the policy action, in policy units
        assert a.shape == (ACT,) and (np.abs(a) <= 1.0).all()
        np.testing.assert_allclose(cmds[k], np.clip(a, -0.4, 0.4), rtol=0, atol=1e-6)
    stamps = [c.stamp_ns(tr.header) for tr in b.trs]
    assert stamps == sorted(set(stamps))                          # unique, strictly increasing
    # the next episode starts fresh: a command for step 0, no transition across the reset
    b.step_and_wait(1, 0, obs[0])
    b.step_and_wait(1, 1, obs[1], 0.75)
    assert b.spin_until(lambda: len(b.trs) == 6)
    assert (b.trs[5].episode, b.trs[5].step) == (1, 0)
    b.assert_safe_commands(*LIM)


@pytest.mark.parametrize("weight_scale", [30.0, 1e6])
def test_huge_weights_and_bad_input_always_give_safe_commands(bench, weight_scale):
    safe = [0.1, -0.2, 0.0]
    b = bench(joint_lower=LIM[0], joint_upper=LIM[1], safe_command=safe)
    layout, data = tiny_weights(scale=weight_scale)
    b.weights(3, layout, data)
    assert b.actor.weights_version == 3
    rng = np.random.default_rng(2)
    k = absurd = 0
    for obs_scale in (1.0, 1e4, 1e5, 1e6, 1e30, 1e37):           # finite float32 inputs, some absurd
        for _ in range(3):
            x = _obs(rng, obs_scale)
            cmd = b.step_and_wait(0, k, x)
            if np.abs(x).max() > 1e6:   # beyond the storage rules' limit: a learner would refuse it, so no acting
                np.testing.assert_array_equal(cmd, safe)
                absurd += 1
            k += 1
    assert absurd >= 6 and b.actor.bad_env_steps == absurd
    # a network output that is NaN (ReSine's period underflows to 0 for huge weights) is answered safely
    assert b.actor.steps_acted + b.actor.bad_actions == k - absurd
    if weight_scale == 1e6:
        assert b.actor.bad_actions > 0
    if weight_scale == 30.0:
        assert b.actor.steps_acted >= 3                           # saturated actions (|a| ~ 0.76) get clamped
        assert any(np.isin(np.abs(cmd), [0.4]).any() for cmd in b.cmds)
    # NaN / Inf / wrong-size input: counted, answered with the safe command
    bad_inputs = [[np.nan, 0, 0, 0, 0], [0, np.inf, 0, 0, 0], [0.0] * (OBS - 1), [0.0] * (OBS + 2)]
    for obs in bad_inputs:
        cmd = b.step_and_wait(0, k, obs)
        np.testing.assert_array_equal(cmd, safe)
        k += 1
    cmd = b.step_and_wait(0, k, _obs(rng), reward=float("nan"))
    np.testing.assert_array_equal(cmd, safe)
    assert b.actor.bad_env_steps == absurd + len(bad_inputs) + 1
    assert b.actor.safe_commands_sent == b.actor.bad_actions + absurd + len(bad_inputs) + 1
    b.assert_safe_commands(*LIM)


def test_weights_versions_and_rejections(bench):
    b = bench()
    layout, data = tiny_weights(seed=0)
    b.weights(0, layout, data)
    b.weights(5, *tiny_weights(seed=1))
    assert b.actor.weights_version == 5
    b.weights(3, *tiny_weights(seed=2))                           # older: ignored, not an error
    assert (b.actor.weights_version, b.actor.weights_ignored, b.actor.bad_weights) == (5, 1, 0)
    b.weights(6, *tiny_weights(hidden=8))                         # wrong layout
    bad = data.copy()
    bad[7] = np.nan
    b.weights(7, layout, bad)                                     # NaN payload
    b.weights(8, layout, data[:-1])                               # wrong size
    b.weights(9, "not json", data)
    assert (b.actor.weights_version, b.actor.bad_weights) == (5, 4)
    # in-process sharing: same checks, no serialisation
    assert not b.actor.set_weights(10, layout, bad)
    assert not b.actor.set_weights(4, layout, data)
    assert b.actor.set_weights(11, layout, data * 2)
    assert (b.actor.weights_version, b.actor.bad_weights) == (11, 5)
    with torch.no_grad():
        loaded = torch.cat([p.reshape(-1) for p in b.actor.logic.policy.actor.parameters()]).numpy()
    np.testing.assert_array_equal(loaded, data * 2)


def test_weights_from_strangers_never_break_or_freeze_the_actor(bench):
    """Malformed layouts are counted, never raised; versions compare within one learner identity, so neither a
    stranger's huge version nor a resumed learner's lower one freezes the policy."""
    b = bench(joint_lower=LIM[0], joint_upper=LIM[1])
    layout, data = tiny_weights()
    b.weights(4, layout, data, learner_id="L1")
    assert b.actor.weights_version == 4
    import json
    good = json.loads(layout)
    wrong_act = json.dumps(dict(good, act_dim=good["act_dim"] + 1))          # right parameter list, wrong act_dim
    for bad in ("[]", "null", "{}", '"text"', "1e400", wrong_act, json.dumps(dict(good, hidden=True))):
        b.weights(5, bad, data, learner_id="L1")
    assert (b.actor.weights_version, b.actor.bad_weights) == (4, 7)          # all counted, the actor unchanged
    b.weights(2**64 - 2, layout, data * 2, learner_id="evil")                # a stranger: a new identity, logged
    assert b.actor.weights_version == 2**64 - 2 and b.actor.learner_changes == 1
    b.weights(3, layout, data, learner_id="L2")                              # a restarted learner counts from 3
    assert b.actor.weights_version == 3 and b.actor.learner_changes == 2
    b.weights(2, layout, data, learner_id="L2")                              # older within one identity: ignored
    assert b.actor.weights_version == 3 and b.actor.weights_ignored == 1
    rng = np.random.default_rng(11)
    cmd = b.step_and_wait(0, 0, _obs(rng))
    assert np.isfinite(cmd).all() and b.actor.steps_acted == 1               # acting with L2's weights


def test_forged_acks_cannot_freeze_a_lockstep_actor(bench):
    b = bench(mode="lockstep", simulation=True, learner_timeout_s=0.5)
    b.weights(0, learner_id="L1")
    rng = np.random.default_rng(12)
    b.step_and_wait(0, 0, _obs(rng))
    b.env_step(0, 1, _obs(rng), 1.0)
    assert b.spin_until(lambda: len(b.trs) == 1)
    tr = b.trs[0]
    b.ack(tr, weights_version=5, learner_id="evil")                          # a stranger's ack: ignored
    assert b.spin_until(lambda: b.actor.acks_ignored == 1)
    b.ack(tr, weights_version=2**63, learner_id="L1")                        # our header, weights that never come
    assert b.spin_until(lambda: b.actor.acks_matched == 1)
    n = len(b.cmds)

    def alive_and_expired() -> bool:                                         # the learner stays alive meanwhile
        b.status_pub.publish(msgs.LearnerStatus(learner_id="L1"))
        return b.actor.holds_expired == 1
    assert b.spin_until(alive_and_expired, timeout=5.0)                      # answered safely, not frozen
    assert not b.actor.logic.learner_dead
    assert b.spin_until(lambda: len(b.cmds) == n + 1)
    np.testing.assert_array_equal(b.cmds[n], [0.0, 0.0, 0.0])
    cmd = b.step_and_wait(0, 5, _obs(rng))                                   # and acting again afterwards
    assert np.isfinite(cmd).all()


def test_lockstep_holds_env_step_until_ack_and_weights(bench):
    # obs_timeout_s < the hold: in lockstep simulation the watchdog must not send unsolicited commands (the
    # paused bridge would take one as the action of its next step)
    b = bench(mode="lockstep", simulation=True, obs_timeout_s=0.2)
    b.weights(0)                                                  # the learner has been seen
    rng = np.random.default_rng(3)
    b.step_and_wait(0, 0, _obs(rng))                              # nothing pending: acted at once
    b.env_step(0, 1, _obs(rng), 1.0)
    assert b.spin_until(lambda: len(b.trs) == 1)
    tr = b.trs[0]
    assert b.actor.commands_sent == 1 and b.actor.held_steps == 1   # held until the ack
    b.env_step(0, 1, _obs(rng), 1.0)                              # the bridge re-publishes: a duplicate
    b.ack(tr, stamp_offset=1)                                     # not our transition's header
    b.ack(tr, frame_id="other_robot")
    assert b.spin_until(lambda: b.actor.duplicates_ignored == 1 and b.actor.acks_ignored == 2)
    assert b.actor.commands_sent == 1
    b.ack(tr, weights_version=1)                                  # ours, but needs weights version 1
    assert b.spin_until(lambda: b.actor.acks_matched == 1)
    assert b.actor.commands_sent == 1
    b.weights(1)
    assert b.spin_until(lambda: len(b.cmds) == 2)
    # the next step: transition, hold, ack, command
    b.env_step(0, 2, _obs(rng), 0.5)
    assert b.spin_until(lambda: len(b.trs) == 2)
    assert b.actor.commands_sent == 2 and b.actor.held_steps == 2
    b.ack(b.trs[1], weights_version=1)
    assert b.spin_until(lambda: len(b.cmds) == 3)
    assert (b.actor.transitions_sent, b.actor.steps_acted) == (2, 3)
    assert b.actor.watchdog_trips == 0 and b.actor.safe_commands_sent == 0


def test_lockstep_silent_learner_releases_held_step_safely(bench):
    b = bench(mode="lockstep", simulation=True, learner_timeout_s=0.3)
    b.weights(0)
    rng = np.random.default_rng(9)
    b.step_and_wait(0, 0, _obs(rng))
    cmd = b.step_and_wait(0, 1, _obs(rng))                        # held; the learner never acks
    np.testing.assert_array_equal(cmd, [0.0, 0.0, 0.0])
    assert b.actor.held_steps == 1 and b.actor.safe_commands_sent == 1
    ticks = b.actor.watchdog_ticks
    assert b.spin_until(lambda: b.actor.watchdog_ticks >= ticks + 5)    # the watchdog ran (20 Hz) ...
    assert b.actor.commands_sent == len(b.cmds) == 2              # ... and sent nothing unsolicited in lockstep sim


def test_prev_action_in_obs(bench):
    b = bench(**{"symphony.prev_action_in_obs": True})
    torch.manual_seed(0)
    layout, data = flatten_actor(build_actor(OBS + ACT, ACT, load_preset("s3", TINY)))
    b.weights(0, layout, data)
    rng = np.random.default_rng(10)
    obs = [_obs(rng) for _ in range(4)]
    for k in range(4):
        b.step_and_wait(0, k, obs[k])
    assert b.spin_until(lambda: len(b.trs) == 3)
    np.testing.assert_array_equal(np.asarray(b.trs[0].observation), np.concatenate([np.zeros(ACT), obs[0]]))
    for k, tr in enumerate(b.trs):
        x, x2 = np.asarray(tr.observation), np.asarray(tr.next_observation)
        assert x.shape == x2.shape == (OBS + ACT,)
        np.testing.assert_array_equal(x2, np.concatenate([np.asarray(tr.action), obs[k + 1]]))
        if k:
            np.testing.assert_array_equal(x, np.asarray(b.trs[k - 1].next_observation))


def test_lockstep_without_learner_never_waits_policy_file(bench, tmp_path):
    torch.manual_seed(0)
    cfg = load_preset("s3", TINY)
    path = export_actor(tmp_path / "actor.pt", build_actor(OBS, ACT, cfg), cfg, version=0)
    b = bench(mode="lockstep", simulation=True, policy_file=str(path))
    assert b.actor.weights_version == 0
    rng = np.random.default_rng(4)
    for k in range(3):
        b.step_and_wait(0, k, _obs(rng))
    assert b.spin_until(lambda: len(b.trs) == 2)
    assert b.actor.held_steps == 0


def test_watchdog_sends_safe_commands(bench):
    safe = [0.1, -0.2, 0.0]
    b = bench(joint_lower=LIM[0], joint_upper=LIM[1], safe_command=safe, obs_timeout_s=0.2)
    b.weights(0)
    rng = np.random.default_rng(5)
    b.step_and_wait(0, 0, _obs(rng))
    n = len(b.cmds)
    assert b.spin_until(lambda: len(b.cmds) >= n + 3)             # 20 Hz safe commands after 0.2 s
    for cmd in b.cmds[n:]:
        np.testing.assert_array_equal(cmd, safe)
    assert b.actor.watchdog_trips == 1
    acted = b.actor.steps_acted
    b.step_and_wait(0, 1, _obs(rng))                              # fresh observation: acting again
    assert b.spin_until(lambda: b.actor.steps_acted == acted + 1)
    assert b.actor.transitions_sent == 0                          # the chain broke at the trip


def test_learner_timeout_gives_safe_commands(bench):
    b = bench(learner_timeout_s=0.3)
    b.weights(0)
    rng = np.random.default_rng(6)
    b.step_and_wait(0, 0, _obs(rng))
    assert b.spin_until(lambda: b.actor.watchdog_trips == 1, timeout=2.0)
    acted, n = b.actor.steps_acted, len(b.cmds)
    assert b.spin_until(lambda: len(b.cmds) >= n + 2)             # 20 Hz safe commands (async)
    b.env_step(0, 1, _obs(rng))
    assert b.spin_until(lambda: b.actor.logic.last_key == (0, 1))      # answered, with the safe command
    assert b.actor.steps_acted == acted
    assert all(np.array_equal(cmd, [0.0, 0.0, 0.0]) for cmd in b.cmds[n:])
    b.status_pub.publish(msgs.LearnerStatus())                    # the learner is back
    assert b.spin_until(lambda: not b.actor.logic.learner_dead)
    b.env_step(0, 2, _obs(rng))
    assert b.spin_until(lambda: b.actor.steps_acted == acted + 1)


def test_lifecycle_deactivate_sends_safe_command_and_stops(bench):
    safe = [0.0, 0.3, -0.3]
    b = bench(autostart=False, joint_lower=LIM[0], joint_upper=LIM[1], safe_command=safe)
    assert b.actor._cmd_pub is None and not b.actor.is_active
    assert b.actor.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert b.actor.trigger_activate() == TransitionCallbackReturn.SUCCESS
    b.wait_connected()
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(b.step_and_wait(0, 0, _obs(rng)), safe)   # no weights yet: safe command
    b.weights(0)
    b.step_and_wait(0, 1, _obs(rng))
    assert b.actor.steps_acted == 1
    n = len(b.cmds)
    assert b.actor.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert b.spin_until(lambda: len(b.cmds) == n + 1)
    np.testing.assert_array_equal(b.cmds[-1], safe)
    b.env_step(0, 2, _obs(rng))
    assert b.spin_until(lambda: b.actor.inactive_ignored == 1)
    assert b.actor.commands_sent == n + 1 and b.actor.steps_acted == 1   # inactive: no acting
    assert b.actor.trigger_activate() == TransitionCallbackReturn.SUCCESS
    b.step_and_wait(0, 2, _obs(rng))                              # the re-published step is answered now
    assert b.actor.steps_acted == 2
    assert b.actor.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert b.actor.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert b.actor._cmd_pub is None and b.actor.logic.policy is None


def test_bad_parameters_fail_configure(bench):
    b = bench(autostart=False, joint_lower=[0.5, 0.0, 0.0], joint_upper=[0.4, 1.0, 1.0])
    assert b.actor.trigger_configure() == TransitionCallbackReturn.FAILURE
    with pytest.raises(ValueError, match="mode"):
        Bench(mode="sometimes")


@pytest.mark.parametrize("simulation", [True, False])
def test_zero_policy_window_only_in_simulation(bench, simulation):
    b = bench(simulation=simulation, deterministic=True, **{"symphony.episode_limit": 10,
                                                            "symphony.zero_policy_window": 3})
    b.weights(1)                                                  # learning has started
    obs = _obs(np.random.default_rng(8))
    cmds = [b.step_and_wait(0, k, obs) for k in range(10)]
    for k in range(6):
        np.testing.assert_array_equal(cmds[k], cmds[0])           # deterministic policy, same input
    window_same = [np.array_equal(cmds[k], cmds[0]) for k in range(6, 10)]   # window 3: the reference's 4 steps
    assert window_same == ([False] * 4 if simulation else [True] * 4)


def test_entry_point_sends_safe_command_on_sigint():
    """`python -m symphony_ros.nodes.actor` (what `ros2 run symphony_ros actor` runs) answers Ctrl-C with the safe
    command before it exits."""
    import os
    import signal
    import subprocess
    import sys

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    proc = None
    try:
        node = rclpy.create_node("actor_entry_test", context=ctx)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        got: list[list[float]] = []
        node.create_subscription(Float64MultiArray, ct.JOINT_COMMANDS.name, lambda m: got.append(list(m.data)),
                                 qos(ct.JOINT_COMMANDS))
        proc = subprocess.Popen([sys.executable, "-m", "symphony_ros.nodes.actor", "--ros-args",
                                 "-p", "joint_lower:=[-0.4,-0.4]", "-p", "joint_upper:=[0.4,0.4]",
                                 "-p", "safe_command:=[0.1,0.2]", "-p", "obs_timeout_s:=60.0"],
                                env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while node.count_publishers(ct.JOINT_COMMANDS.name) == 0 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        assert node.count_publishers(ct.JOINT_COMMANDS.name) == 1, "the actor process did not come up"
        deadline = time.monotonic() + 0.5          # let the command writer match our reader
        while time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        assert got == []
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        deadline = time.monotonic() + 3
        while not got and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        assert got == [[0.1, 0.2]]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        rclpy.try_shutdown(context=ctx)
