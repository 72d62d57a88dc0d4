"""Sim bridge: MujocoBridge on real MuJoCo models, and SimBridgeNode over real DDS (in-process, fresh context each).

Run inside a loopback-only network namespace (conftest.py sets ROS_AUTOMATIC_DISCOVERY_RANGE and ROS_DOMAIN_ID):
    unshare -n bash -c 'ip link set lo up; . .venv/bin/activate;
                        ROS_DOMAIN_ID=61 python -m pytest -q test/test_sim_bridge.py'
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="gymnasium[mujoco] not installed (extra: sim)")

from symphony_ros.envs.bridge import MujocoBridge  # noqa: E402

HUMANOID_JOINTS = ("abdomen_y", "abdomen_z", "abdomen_x", "right_hip_x", "right_hip_z", "right_hip_y", "right_knee",
                   "left_hip_x", "left_hip_z", "left_hip_y", "left_knee", "right_shoulder1", "right_shoulder2",
                   "right_elbow", "left_shoulder1", "left_shoulder2", "left_elbow")


# ================================================================================================ MujocoBridge
@pytest.fixture
def humanoid():
    b = MujocoBridge("Humanoid-v5", episode_limit=1000, seed=0)
    yield b
    b.close()


def test_humanoid_model_facts(humanoid):
    b = humanoid
    assert (b.obs_dim, b.act_dim) == (348, 17)
    assert b.dt == pytest.approx(0.015) and b.dt_ns == 15_000_000
    assert b.joint_names == HUMANOID_JOINTS          # read from the model: actuator_trnid -> joint names
    assert b.imu_body == "torso"
    np.testing.assert_array_equal(b.zero_command, np.zeros(17))


def test_step_applies_command_and_mujoco_clamps_paper_mode(humanoid):
    b = humanoid
    r0 = b.reset()
    assert (r0.episode, r0.step, r0.reward, r0.done) == (0, 0, 0.0, False)
    assert r0.observation.dtype == np.float32 and r0.observation.shape == (348,)
    q0 = b.joint_state().position
    np.testing.assert_array_equal(b.joint_state().effort, np.zeros(17))
    r1 = b.step(np.ones(17))                         # paper mode: passed as is, MuJoCo clamps to ctrlrange ±0.4
    assert (r1.episode, r1.step) == (0, 1) and math.isfinite(r1.reward) and r1.reward != 0.0
    js = b.joint_state()
    assert js.name == HUMANOID_JOINTS and js.position.shape == js.velocity.shape == js.effort.shape == (17,)
    assert np.abs(js.position - q0).max() > 1e-4     # the joints moved
    np.testing.assert_allclose(b.ctrl, 1.0)
    np.testing.assert_allclose(js.effort, 0.4)       # actuator_force after MuJoCo's ctrlrange clamp
    assert np.abs(js.velocity).max() > 0
    assert b.total_steps == 1 and b.sim_time_ns == 15_000_000


def test_rescale_mode_maps_unit_box_onto_bounds():
    with MujocoBridge("Humanoid-v5", episode_limit=10, action_mode="rescale") as b:
        b.reset()
        b.step(np.ones(17))
        np.testing.assert_allclose(b.ctrl, 0.4)
        b.step(-np.ones(17))
        np.testing.assert_allclose(b.ctrl, -0.4)
        b.step(b.zero_command)
        np.testing.assert_allclose(b.ctrl, 0.0, atol=1e-12)


@pytest.mark.parametrize("bad", [np.zeros(16), np.zeros(18), np.r_[np.zeros(16), np.nan], np.r_[np.inf, np.zeros(16)],
                                 ["a"] * 17])
def test_bad_command_raises_and_changes_nothing(humanoid, bad):
    b = humanoid
    b.reset()
    b.step(np.zeros(17))
    before = (b.episode, b.step_in_episode, b.total_steps, b.data.qpos.copy())
    with pytest.raises(ValueError):
        b.step(bad)
    assert (b.episode, b.step_in_episode, b.total_steps) == before[:3]
    np.testing.assert_array_equal(b.data.qpos, before[3])


def test_a_huge_finite_command_never_gives_a_non_finite_reward(humanoid):
    b = humanoid
    b.reset()
    for value in (1e308, -1e308, 3.4e38, 1e10):
        r = b.step(np.full(17, value))
        assert math.isfinite(r.reward) and np.isfinite(r.observation).all()
        np.testing.assert_array_equal(b.ctrl, np.sign(value))   # clamped to the ±1 policy range first
    assert b.clamped_commands == 4
    b.step(np.full(17, 0.5))                                    # a normal command is passed as is
    np.testing.assert_allclose(b.ctrl, 0.5)
    assert b.clamped_commands == 4


def test_auto_reset_bookkeeping_on_truncation():
    with MujocoBridge("Humanoid-v5", episode_limit=5, seed=1) as b:
        assert b.needs_reset and b.episode == -1
        first = b.step(np.zeros(17))                 # a step before any reset starts episode 0
        assert (first.episode, first.step, first.reward) == (0, 0, 0.0)
        results = [b.step(np.zeros(17)) for _ in range(5)]
        assert [(r.episode, r.step) for r in results] == [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]
        assert not any(r.done for r in results[:-1])
        assert results[-1].truncated and not results[-1].terminated and b.needs_reset
        nxt = b.step(np.full(17, 0.3))               # the next step auto-resets: command ignored, no physics step
        assert (nxt.episode, nxt.step, nxt.reward, nxt.done) == (1, 0, 0.0, False)
        assert b.total_steps == 5
        assert (b.step(np.zeros(17)).episode, b.step_in_episode, b.total_steps) == (1, 1, 6)
        assert b.reset().episode == 2                # an explicit reset also starts a new episode


def test_seed_makes_first_reset_reproducible():
    with MujocoBridge("Humanoid-v5", seed=3) as a, MujocoBridge("Humanoid-v5", seed=3) as b, \
            MujocoBridge("Humanoid-v5", seed=4) as c:
        oa, ob, oc = a.reset().observation, b.reset().observation, c.reset().observation
        np.testing.assert_array_equal(oa, ob)
        assert not np.array_equal(oa, oc)


def test_imu_reads_like_an_accelerometer():
    with MujocoBridge("InvertedPendulum-v5") as b:       # the cart rests on its rail: gravity only
        b.reset()
        assert b.joint_names == ("slider",) and b.imu_body == "cart"   # no 'torso': body 1
        imu = b.imu()
        np.testing.assert_allclose(imu.orientation_xyzw, [0, 0, 0, 1], atol=1e-9)
        np.testing.assert_allclose(imu.linear_acceleration, [0, 0, 9.81], atol=0.05)
        np.testing.assert_allclose(imu.angular_velocity, 0, atol=1e-9)
    with MujocoBridge("Humanoid-v5") as b:
        b.reset()
        for _ in range(3):
            b.step(np.full(17, 0.4))
        imu = b.imu()
        assert np.linalg.norm(imu.orientation_xyzw) == pytest.approx(1.0)
        w, x, y, z = b.data.xquat[1]
        np.testing.assert_allclose(imu.orientation_xyzw, [x, y, z, w])   # ROS order x, y, z, w
        assert np.isfinite(imu.angular_velocity).all() and np.abs(imu.angular_velocity).max() > 0
        assert np.isfinite(imu.linear_acceleration).all()


def test_not_a_mujoco_env_is_refused():
    with pytest.raises(ValueError, match="not a MuJoCo"):
        MujocoBridge("Pendulum-v1")
    with pytest.raises(ValueError, match="cannot create"):
        MujocoBridge("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="action mode"):
        MujocoBridge("Humanoid-v5", action_mode="bogus")


# ================================================================================================ SimBridgeNode
@pytest.fixture
def ros():
    """rclpy and the messages, or skip (ROS 2 is an optional extra)."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
    pytest.importorskip("symphony_ros_interfaces.msg", reason="symphony_ros_interfaces not built")
    pytest.importorskip("std_srvs.srv", reason="ros-std-srvs not installed")
    pytest.importorskip("rosgraph_msgs.msg", reason="ros-rosgraph-msgs not installed")
    return rclpy


class Harness:
    """A SimBridgeNode (configured exactly like graph.py does: YAML + overrides via NodeSpec.ros_args()) and a
    probe node (subscribes everything the bridge publishes, publishes joint_commands), in a fresh context, spun by
    one SingleThreadedExecutor. ``auto_command`` makes the probe answer each new env_step like an actor would."""

    def __init__(self, rclpy, **params) -> None:
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Imu, JointState
        from std_msgs.msg import Float64MultiArray
        from symphony_ros_interfaces.msg import EnvStep

        from symphony_ros.core.config import config_dir
        from symphony_ros.graph import NodeSpec
        from symphony_ros import contract as ct
        from symphony_ros.nodes.common import qos_profile as qos
        from symphony_ros.nodes.sim_bridge import SimBridgeNode

        self.rclpy, self.Float64MultiArray = rclpy, Float64MultiArray
        self.ctx = Context()
        rclpy.init(args=[], context=self.ctx)
        self.env_steps, self.unique, self.joint_states, self.imus, self.clocks = [], [], [], [], []
        self.auto_command: np.ndarray | None = None
        self.sent = 0
        self.probe = rclpy.create_node("sim_bridge_probe", context=self.ctx)
        self.probe.create_subscription(EnvStep, ct.ENV_STEP.name, self._on_env_step, qos(ct.ENV_STEP))
        self.probe.create_subscription(JointState, ct.JOINT_STATES.name, self.joint_states.append,
                                       qos(ct.JOINT_STATES))
        self.probe.create_subscription(Imu, ct.IMU.name, self.imus.append, qos(ct.JOINT_STATES))
        self.probe.create_subscription(Clock, "/clock", self.clocks.append, qos(ct.LEARNER_STATUS))
        self.cmd_pub = self.probe.create_publisher(Float64MultiArray, ct.JOINT_COMMANDS.name,
                                                   qos(ct.JOINT_COMMANDS))
        spec = NodeSpec("sim_bridge", "sim_bridge", params_file=config_dir() / "sim_bridge.yaml", parameters=params)
        self.node = SimBridgeNode(context=self.ctx, cli_args=spec.ros_args())
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)

    def _on_env_step(self, msg) -> None:
        self.env_steps.append(msg)
        key = (msg.episode, msg.step)
        if self.unique and key == (self.unique[-1].episode, self.unique[-1].step):
            return                                          # a re-publication: ignore (actor contract)
        self.unique.append(msg)
        if self.auto_command is not None and not (msg.terminated or msg.truncated):
            self.command(self.auto_command)

    def command(self, values) -> None:
        self.cmd_pub.publish(self.Float64MultiArray(data=[float(v) for v in values]))
        self.sent += 1

    def spin_until(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.01)
        return True

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def connected(self) -> bool:
        """All bridge topics matched both ways and the bridge's first env_step arrived."""
        n = self.node
        pubs = [n._env_pub, n._js_pub, n._imu_pub] + ([n._clock_pub] if n._clock_pub is not None else [])
        return (bool(self.unique) and self.cmd_pub.get_subscription_count() > 0
                and all(p.get_subscription_count() > 0 for p in pubs))

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.probe.destroy_node()
        self.rclpy.try_shutdown(context=self.ctx)


@pytest.fixture
def harness(ros):
    made = []

    def make(**params):
        made.append(Harness(ros, **params))
        return made[-1]
    yield make
    for h in made:
        h.close()


def _stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def test_lockstep_one_env_step_per_command_truncation_and_clock(harness):
    h = harness(env="Humanoid-v5", mode="lockstep", episode_limit=5, republish_s=0.2)
    assert h.spin_until(h.connected), "bridge and probe never connected"
    assert (h.unique[0].episode, h.unique[0].step, h.unique[0].reward) == (0, 0, 0.0)
    dt_ns = h.node.bridge.dt_ns
    h.auto_command = np.zeros(17)
    h.command(h.auto_command)                               # answer step 0; the probe answers the rest
    assert h.spin_until(lambda: len(h.unique) >= 10)        # (0,0)..(0,5) truncated, (1,0)..(1,3)
    h.auto_command = None
    h.spin_for(0.05)
    keys = [(m.episode, m.step) for m in h.unique]
    assert keys[:10] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (1, 0), (1, 1), (1, 2), (1, 3)]
    assert h.unique[5].truncated and not h.unique[5].terminated
    assert not any(m.terminated or m.truncated for i, m in enumerate(h.unique[:10]) if i != 5)
    assert h.unique[6].reward == 0.0 and all(m.reward != 0.0 for m in h.unique[1:6])
    assert all(len(m.observation) == 348 for m in h.unique)
    # one env step per command (the terminal step needs none): commands sent == steps taken == env_steps with step > 0
    assert h.node.steps == h.sent == sum(1 for m in h.unique if m.step > 0)
    assert h.node.episodes == h.unique[-1].episode + 1 and h.node.bad_commands == 0
    # sim time: stamps and /clock advance by exactly dt per step, and not on reset
    stamps = [_stamp_ns(m.header) for m in h.unique[:10]]
    assert stamps == [k * dt_ns for k in (0, 1, 2, 3, 4, 5, 5, 6, 7, 8)]
    assert h.spin_until(lambda: h.clocks and
                        h.clocks[-1].clock.sec * 10**9 + h.clocks[-1].clock.nanosec == h.node.steps * dt_ns)
    clock_ns = [c.clock.sec * 10**9 + c.clock.nanosec for c in h.clocks]
    assert all(b - a == dt_ns for a, b in zip(clock_ns, clock_ns[1:]))
    # driver topics
    assert h.joint_states and h.imus
    js = h.joint_states[-1]
    assert list(js.name) == list(h.node.bridge.joint_names) and len(js.name) == 17 and "right_knee" in js.name
    assert len(js.position) == len(js.velocity) == len(js.effort) == 17 and np.isfinite(js.position).all()
    imu = h.imus[-1]
    q = imu.orientation
    assert imu.header.frame_id == "base_link" and math.isclose(math.hypot(q.x, q.y, q.z, q.w), 1.0, rel_tol=1e-6)


def test_lockstep_republishes_unanswered_env_step(harness):
    h = harness(env="Humanoid-v5", mode="lockstep", republish_s=0.1)
    assert h.spin_until(lambda: len(h.env_steps) >= 3)      # nobody answers: step 0 comes again (same key)
    assert {(m.episode, m.step) for m in h.env_steps} == {(0, 0)} and h.node.republished >= 2
    assert h.node.steps == 0


def test_lockstep_bad_commands_are_counted_and_ignored(harness):
    h = harness(env="Humanoid-v5", mode="lockstep", republish_s=0.2)
    assert h.spin_until(h.connected)
    h.command([float("nan")] + [0.0] * 16)
    h.command([0.0] * 5)
    assert h.spin_until(lambda: h.node.bad_commands == 2)
    h.spin_for(0.05)
    assert h.node.steps == 0 and all(m.step == 0 for m in h.unique)
    h.command([0.1] * 17)                                   # the node still works
    assert h.spin_until(lambda: h.unique[-1].step == 1)
    assert h.node.steps == 1 and h.node.bad_commands == 2


def test_reset_service_starts_a_new_episode(harness):
    from std_srvs.srv import Trigger
    h = harness(env="Humanoid-v5", mode="lockstep", republish_s=0.2)
    assert h.spin_until(h.connected)
    h.auto_command = np.zeros(17)
    h.command(h.auto_command)
    assert h.spin_until(lambda: len(h.unique) >= 4)
    h.auto_command = None
    h.spin_for(0.05)
    steps_before = h.node.steps
    client = h.probe.create_client(Trigger, "/sim_bridge/reset")
    assert h.spin_until(client.service_is_ready)
    future = client.call_async(Trigger.Request())
    assert h.spin_until(future.done)
    assert future.result().success
    assert h.spin_until(lambda: h.unique[-1].episode == 1)
    last = h.unique[-1]
    assert (last.episode, last.step, last.reward, last.terminated, last.truncated) == (1, 0, 0.0, False, False)
    assert h.node.steps == steps_before and h.node.episodes == 2
    assert _stamp_ns(last.header) == steps_before * h.node.bridge.dt_ns   # a reset does not advance sim time


def test_realtime_rate_and_zero_command_after_timeout(harness):
    h = harness(env="Humanoid-v5", mode="realtime", rate_hz=50.0, command_timeout_s=0.1)
    assert h.node._clock_pub is None                        # no /clock in realtime
    assert h.spin_until(h.connected)
    n0 = len(h.env_steps)
    h.spin_for(0.5)
    assert len(h.env_steps) - n0 >= 5                       # ~25 expected; no tight timing assertion
    assert abs(_stamp_ns(h.env_steps[-1].header) / 1e9 - time.time()) < 5.0   # wall-clock stamps
    assert h.node.zero_commands >= 5                        # no command yet: zero
    command = np.full(17, 0.3)
    h.command(command)
    assert h.spin_until(lambda: np.array_equal(h.node.last_command, command))
    np.testing.assert_allclose(h.node.bridge.ctrl, 0.3)
    zeros_before = h.node.zero_commands
    assert h.spin_until(lambda: not np.any(h.node.last_command))   # the command timed out: zero applied
    np.testing.assert_array_equal(h.node.bridge.ctrl, 0.0)
    assert h.node.zero_commands > zeros_before
    h.command([float("nan")] * 17)                          # a bad command is counted, never crashes
    assert h.spin_until(lambda: h.node.bad_commands == 1)
    n1 = len(h.env_steps)
    assert h.spin_until(lambda: len(h.env_steps) > n1 + 2)  # still stepping


def test_main_refuses_invalid_parameters(ros):
    from symphony_ros.nodes.sim_bridge import main
    assert main(["sim_bridge", "--ros-args", "-p", "mode:=bogus"]) == 1
    assert main(["sim_bridge", "--ros-args", "-p", "env:=NoSuchEnv-v0"]) == 1
    assert main(["sim_bridge", "--ros-args", "-p", "command_timeout_s:=-1.0"]) == 1


def test_parameters_validated_on_set(harness):
    from rclpy.parameter import Parameter
    h = harness(env="Humanoid-v5", mode="realtime", rate_hz=20.0)
    assert h.node.rate_hz == 20.0 and h.node.get_parameter("frame_id").value == "base_link"   # YAML default
    ok = h.node.set_parameters([Parameter("command_timeout_s", value=0.5)])[0]
    assert ok.successful and h.node.command_timeout_s == 0.5
    assert not h.node.set_parameters([Parameter("command_timeout_s", value=-1.0)])[0].successful
    assert not h.node.set_parameters([Parameter("mode", value="lockstep")])[0].successful     # read-only
    assert h.node.command_timeout_s == 0.5 and h.node.mode == "realtime"
