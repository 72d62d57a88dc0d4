"""The actor's motor-grade protections over real DDS: the latched e-stop (topic and services), attitude protection,
the safety pipeline's rate limit and soft start, the executed action in the buffer, the 1 Hz actor_status, and bad
input on every protection input (an e-stop storm, NaN everywhere, negative times).

The pure stages are tested in test_pipeline.py; the test node here plays driver, bridge and learner on the real topics.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
msgs = pytest.importorskip("symphony_ros_interfaces.msg",
                           reason="symphony_ros_interfaces not built: pip install --no-cache-dir ./interfaces")
from sensor_msgs.msg import Imu, JointState  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402
import test_actor  # noqa: E402
from test_actor import ACT, LIM, OBS, Bench, _obs, tiny_weights  # noqa: E402

from symphony_ros import contract as ct  # noqa: E402
from symphony_ros.control.safety import CommandMapping  # noqa: E402
from symphony_ros.nodes.common import qos_profile as qos  # noqa: E402

SAFE = [0.1, -0.2, 0.0]
bench = test_actor.bench             # the fixture: an ActorNode and a test node on one executor


class Driver:
    """The robot side of a bench: e-stop topic, imu, joint_states, the actor's services and its status."""

    def __init__(self, b: Bench) -> None:
        n = b.node
        self.b = b
        self.e_stop = n.create_publisher(Bool, ct.E_STOP.name, qos(ct.E_STOP))
        self.imu = n.create_publisher(Imu, ct.IMU.name, qos(ct.IMU))
        self.joints = n.create_publisher(JointState, ct.JOINT_STATES.name, qos(ct.JOINT_STATES))
        self.statuses: list = []
        n.create_subscription(msgs.ActorStatus, ct.ACTOR_STATUS.name, self.statuses.append, qos(ct.ACTOR_STATUS))
        self.srv_e_stop = n.create_client(SetBool, "/actor/e_stop")
        self.srv_clear = n.create_client(Trigger, "/actor/clear_e_stop")

    def call(self, client, request):
        assert self.b.spin_until(client.service_is_ready, timeout=5.0), f"{client.srv_name} not available"
        future = client.call_async(request)
        assert self.b.spin_until(future.done, timeout=5.0), f"{client.srv_name} did not answer"
        return future.result()

    def tilt(self, degrees: float, axis: str = "x") -> None:
        """An Imu whose body z axis is tilted by ``degrees`` about ``axis``."""
        m = Imu()
        half = math.radians(degrees) / 2
        setattr(m.orientation, axis, math.sin(half))
        m.orientation.w = math.cos(half)
        self.imu.publish(m)


def test_e_stop_latches_holds_safe_and_needs_an_explicit_clear(bench):
    b = bench(joint_lower=LIM[0], joint_upper=LIM[1], safe_command=SAFE, soft_start_s=60.0)
    d = Driver(b)
    b.weights(0)
    rng = np.random.default_rng(0)
    for k in range(3):
        b.step_and_wait(0, k, _obs(rng))
    assert b.spin_until(lambda: len(b.trs) == 2)
    assert b.spin_until(lambda: d.e_stop.get_subscription_count() > 0)
    d.e_stop.publish(Bool(data=True))
    assert b.spin_until(lambda: b.actor.e_stops == 1)
    assert b.spin_until(lambda: np.array_equal(b.cmds[-1], SAFE))            # the safe command at once
    sent = b.actor.transitions_sent
    for k in range(3, 8):                                                    # held: safe, nothing stored
        np.testing.assert_array_equal(b.step_and_wait(0, k, _obs(rng)), SAFE)
    d.e_stop.publish(Bool(data=False))                                       # the topic never releases it
    assert b.spin_until(lambda: b.actor.e_stop_messages == 2)
    np.testing.assert_array_equal(b.step_and_wait(0, 8, _obs(rng)), SAFE)
    assert b.actor.transitions_sent == sent and b.actor.logic.e_stopped
    # an explicit call releases it; commanding resumes from the safe pose with a soft start
    r = d.call(d.srv_clear, Trigger.Request())
    assert r.success and not b.actor.logic.e_stopped
    assert not d.call(d.srv_clear, Trigger.Request()).success                # nothing to clear
    first = b.step_and_wait(0, 9, _obs(rng))
    assert np.abs(first - np.asarray(SAFE)).max() < 0.05                     # a 60 s blend from safe, not a jump
    assert b.actor.logic.pipeline.changed["soft_start"] >= 1
    for k in range(10, 13):
        b.step_and_wait(0, k, _obs(rng))
    assert b.spin_until(lambda: len(b.trs) == sent + 3)                       # the chain restarted at step 9
    assert [tr.step for tr in b.trs[-3:]] == [9, 10, 11]
    # the SetBool service engages and releases too
    assert d.call(d.srv_e_stop, SetBool.Request(data=True)).success and b.actor.e_stops == 2
    np.testing.assert_array_equal(b.step_and_wait(0, 13, _obs(rng)), SAFE)
    assert d.call(d.srv_e_stop, SetBool.Request(data=False)).success
    b.assert_safe_commands(*LIM)
    # its own services never hide the node's built-in ones (lifecycle, parameters) from the executor
    from lifecycle_msgs.srv import GetState
    state = d.call(b.node.create_client(GetState, "/actor/get_state"), GetState.Request()).current_state
    assert state.label == "active"


def test_e_stop_storm_is_counted_and_never_breaks_the_actor(bench):
    b = bench(joint_lower=LIM[0], joint_upper=LIM[1], safe_command=SAFE)
    d = Driver(b)
    b.weights(0)
    rng = np.random.default_rng(1)
    b.step_and_wait(0, 0, _obs(rng))
    assert b.spin_until(lambda: d.e_stop.get_subscription_count() > 0)
    for i in range(400):
        d.e_stop.publish(Bool(data=bool(i % 2 == 0)))
    # reliable, keep-last history: at least the last history's worth arrives (True among them)
    assert b.spin_until(lambda: b.actor.e_stop_messages >= ct.E_STOP.qos.depth and b.actor.logic.e_stopped)
    assert b.actor.e_stops == 1 and b.actor.logic.e_stopped                  # latched once
    np.testing.assert_array_equal(b.step_and_wait(0, 1, _obs(rng)), SAFE)
    assert b.actor.transitions_sent == 0
    b.assert_safe_commands(*LIM)


def test_attitude_protection_ends_the_episode_safely(bench):
    b = bench(joint_lower=LIM[0], joint_upper=LIM[1], safe_command=SAFE, max_tilt_deg=30.0)
    d = Driver(b)
    b.weights(0)
    rng = np.random.default_rng(2)
    for k in range(3):
        b.step_and_wait(0, k, _obs(rng))
    assert b.spin_until(lambda: d.imu.get_subscription_count() > 0)
    d.tilt(20.0)                                                             # inside the limit: nothing
    d.tilt(float("nan"))                                                     # NaN attitude: ignored, no trip
    b.step_and_wait(0, 3, _obs(rng))
    assert b.actor.attitude_trips == 0
    # imu is best effort (sensor data QoS): publish until it is seen
    assert b.spin_until(lambda: d.tilt(60.0, axis="y") or b.actor.attitude_trips == 1)
    assert b.spin_until(lambda: np.array_equal(b.cmds[-1], SAFE))
    acted, sent = b.actor.steps_acted, b.actor.transitions_sent
    for k in range(4, 7):                                                    # the rest of episode 0: safe
        np.testing.assert_array_equal(b.step_and_wait(0, k, _obs(rng)), SAFE)
    assert b.actor.steps_acted == acted and b.actor.transitions_sent == sent
    d.tilt(0.0)                                                              # upright again, next episode
    for k in range(3):
        b.step_and_wait(1, k, _obs(rng))
    assert b.actor.steps_acted == acted + 3 and b.actor.attitude_trips == 1
    assert b.spin_until(lambda: b.actor.transitions_sent == sent + 2)
    assert all(tr.episode == 1 for tr in b.trs[sent:])


def test_rate_limit_and_the_executed_action_in_the_buffer(bench):
    """Velocity limits at the control rate bound the change per command; the transition holds the executed
    command mapped back into policy units (command_mode rescale: not the identity)."""
    lower, upper = [-1.0, 0.0, -2.0], [1.0, 2.0, 0.0]
    vel, rate = [0.5, 1.0, 2.0], 10.0
    b = bench(joint_lower=lower, joint_upper=upper, safe_command=[0.0, 1.0, -1.0], command_mode="rescale",
              velocity_limits=vel, control_rate_hz=rate)
    layout, data = tiny_weights(scale=5.0)                                   # large, fast-changing actions
    b.weights(0, layout, data)
    rng = np.random.default_rng(3)
    cmds = [b.step_and_wait(0, k, _obs(rng, 3.0)) for k in range(30)]
    assert b.spin_until(lambda: len(b.trs) == 29)
    step = np.abs(np.diff(np.asarray(cmds), axis=0))
    assert (step <= np.asarray(vel) / rate + 1e-9).all()                      # at most v·T per period
    assert b.actor.logic.pipeline.changed["rate_limit"] > 0                   # and it did bind
    mapping = CommandMapping(np.asarray(lower), np.asarray(upper), "rescale")
    for k, tr in enumerate(b.trs):
        a = np.asarray(tr.action, np.float64)
        np.testing.assert_allclose(mapping(a), cmds[k], rtol=0, atol=1e-5)   # stored = executed
        assert (np.abs(a) <= 1.0 + 1e-6).all()


def test_actor_status_reports_pipeline_shares_and_telemetry(bench):
    b = bench(joint_lower=LIM[0], joint_upper=LIM[1], status_rate_hz=5.0)
    d = Driver(b)
    layout, data = tiny_weights(scale=30.0)                                  # saturated actions, clamped at 0.4
    b.weights(0, layout, data)
    rng = np.random.default_rng(4)
    for k in range(20):
        b.step_and_wait(0, k, _obs(rng))
    assert b.spin_until(lambda: any(len(m.saturation) == ACT for m in d.statuses), timeout=5.0)
    m = next(m for m in d.statuses if len(m.saturation) == ACT)
    assert m.robot_id == "r1" and m.active and not m.e_stop and m.steps_acted >= 1
    assert 0.0 < m.share_limited <= 1.0                                      # the clamp changed some commands
    assert m.share_rate_limited == 0.0 and m.share_smoothed == 0.0           # stages that are off never count
    assert len(m.mean_abs_delta) == len(m.hf_share) == len(m.reach) == ACT
    assert max(m.saturation) > 0.0 and max(m.reach) == pytest.approx(1.0, abs=1e-3)
    assert math.isfinite(m.command_latency_p50_ms) and m.command_latency_p99_ms >= m.command_latency_p50_ms


def test_nan_on_every_input_gives_the_safe_command_and_stores_nothing(bench):
    b = bench(joint_lower=LIM[0], joint_upper=LIM[1], safe_command=SAFE, max_tilt_deg=30.0,
              joint_names=["a", "b", "c"], soft_start_s=0.3)
    d = Driver(b)
    b.weights(0)
    nan = float("nan")
    assert b.spin_until(lambda: d.imu.get_subscription_count() > 0 and d.joints.get_subscription_count() > 0)
    d.tilt(nan)
    d.joints.publish(JointState(name=["a", "b", "c"], position=[nan, nan, nan]))
    d.joints.publish(JointState(name=["a", "b"], position=[0.1]))           # misaligned names/positions
    layout, data = tiny_weights()
    b.weights(1, layout, np.full_like(data, np.nan))                          # NaN weights: refused
    assert b.actor.bad_weights == 1 and b.actor.weights_version == 0
    for k in range(4):
        np.testing.assert_array_equal(b.step_and_wait(0, k, [nan] * OBS, reward=nan), SAFE)
    assert b.actor.bad_env_steps == 4 and b.actor.transitions_sent == 0 and b.actor.attitude_trips == 0
    assert b.actor.logic.measured is None                                     # no NaN pose to start from
    by_name = JointState(name=["c", "a", "b"], position=[0.3, 0.1, 0.2])     # by name, any order
    assert b.spin_until(lambda: d.joints.publish(by_name) or b.actor.logic.measured is not None)
    np.testing.assert_array_equal(b.actor.logic.measured, [0.1, 0.2, 0.3])
    b.assert_safe_commands(*LIM)


@pytest.mark.parametrize("param", ["soft_start_s", "safe_ramp_s", "smoothing_cutoff_hz", "control_rate_hz"])
def test_negative_times_are_refused_with_one_line(param):
    """The parameter's declared range refuses it at start (run_node prints the reason as one line)."""
    from rclpy.exceptions import ParameterException
    with pytest.raises((ValueError, ParameterException), match=param):
        Bench(**{param: -1.0})
