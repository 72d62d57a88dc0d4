"""The robot path over real DDS: the simulated driver speaks only driver topics, the task node turns them into env
steps (and refuses what it cannot trust), the actor commands the controller's topic from a robot description, and
the three together run episodes with automatic recovery (real MuJoCo, real time).

The learning proof through these topics is test_robot_learning.py.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
msgs = pytest.importorskip("symphony_ros_interfaces.msg",
                           reason="symphony_ros_interfaces not built: pip install --no-cache-dir ./interfaces")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from symphony_ros import contract as ct  # noqa: E402
from symphony_ros.core.config import load_preset  # noqa: E402
from symphony_ros.core.policy import build_actor, flatten_actor  # noqa: E402
from symphony_ros.graph import NodeSpec  # noqa: E402
from symphony_ros.nodes import common as c  # noqa: E402
from symphony_ros.nodes.common import qos_profile as qos  # noqa: E402
from symphony_ros.robot.description import load_description  # noqa: E402

PEND = load_description("inverted_pendulum")
CMD_TOPIC = "/" + PEND.controller_topic


class Graph:
    """Nodes under test plus a test node, one context, one executor."""

    def __init__(self) -> None:
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.nodes: list = []
        self.node = self.add(rclpy.create_node("robot_test", context=self.ctx))

    def add(self, node):
        self.nodes.append(node)
        self.ex.add_node(node)
        return node

    def make(self, cls, name: str, **params):
        spec = NodeSpec(name, name, parameters=params)
        return self.add(cls(cli_args=spec.ros_args(), context=self.ctx))

    def spin_until(self, pred, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            self.ex.spin_once(timeout_sec=0.01)
        return bool(pred())

    def call(self, srv_type, name: str, timeout: float = 10.0):
        cli = self.node.create_client(srv_type, name)
        assert self.spin_until(cli.service_is_ready, timeout), f"{name} not available"
        fut = cli.call_async(srv_type.Request())
        assert self.spin_until(fut.done, timeout), f"{name} did not answer"
        return fut.result()

    def close(self) -> None:
        self.ex.shutdown()
        for n in reversed(self.nodes):
            n.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


@pytest.fixture
def graph():
    g = Graph()
    yield g
    g.close()


def _weights(obs: int, act: int, seed: int = 0) -> tuple[str, np.ndarray]:
    import torch
    torch.manual_seed(seed)
    actor = build_actor(obs, act, load_preset("ed", dict(hidden_dim=16, heads_per_critic=4)))
    return flatten_actor(actor)


def _publish_weights(g: Graph, obs: int, act: int, version: int = 1):
    pub = g.node.create_publisher(msgs.PolicyWeights, ct.POLICY_WEIGHTS.name, qos(ct.POLICY_WEIGHTS))
    layout, data = _weights(obs, act)
    m = msgs.PolicyWeights()
    m.version, m.preset, m.layout, m.data = version, "ed", layout, data.tolist()
    pub.publish(m)
    return pub


# ============================================================================================= simulated driver
def test_mujoco_driver_speaks_only_driver_topics(graph):
    from symphony_ros.nodes.mujoco_driver import MujocoDriverNode
    g = graph
    drv = g.make(MujocoDriverNode, "mujoco_driver", robot_description="inverted_pendulum", command_timeout_s=0.2)
    states: list = []
    g.node.create_subscription(JointState, "/joint_states", states.append, qos(ct.JOINT_STATES))
    cmd = g.node.create_publisher(Float64MultiArray, CMD_TOPIC, qos(ct.JOINT_COMMANDS))
    assert g.spin_until(lambda: len(states) >= 3)
    assert list(states[-1].name) == ["slider", "hinge"] and len(states[-1].velocity) == 2   # the passive joint too
    topics = {n for n, _ in g.node.get_publisher_names_and_types_by_node("mujoco_driver", "/")}
    assert topics - {"/rosout", "/parameter_events"} == {"/joint_states"}      # no env_step, no reward, no imu here
    subs = {n for n, _ in g.node.get_subscriber_names_and_types_by_node("mujoco_driver", "/")}
    assert subs - {"/parameter_events"} == {CMD_TOPIC}
    assert g.spin_until(lambda: cmd.get_subscription_count() > 0)
    x0 = states[-1].position[0]
    push = Float64MultiArray(data=[3.0])
    assert g.spin_until(lambda: cmd.publish(push) or states[-1].position[0] > x0 + 0.05)   # force -> the cart moves
    zero = drv.zero_ticks
    assert g.spin_until(lambda: drv.zero_ticks > zero + 2)                       # held 0.2 s, then zero
    cmd.publish(Float64MultiArray(data=[1.0, 2.0]))                              # wrong size: refused, zero
    cmd.publish(Float64MultiArray(data=[float("nan")]))
    assert g.spin_until(lambda: drv.bad_commands == 2)
    assert g.call(Trigger, "/mujoco_driver/reset").success and drv.resets == 1
    assert g.spin_until(lambda: abs(states[-1].position[0]) < 0.05)             # back at the start state
    assert drv.latencies_ms                                                      # answers after a state were timed


# ============================================================================================= task node
class Driver:
    """The test node as a driver for the task node: joint_states with stamps one period apart. Each state is
    re-published (same stamp: the task node ignores duplicates) until its effect is seen, as joint_states is
    best effort."""

    def __init__(self, g: Graph, task) -> None:
        self.g, self.task = g, task
        self.pub = g.node.create_publisher(JointState, "/joint_states", qos(ct.JOINT_STATES))
        self.steps: list = []
        g.node.create_subscription(msgs.EnvStep, "/env_step", self.steps.append, qos(ct.ENV_STEP))
        self.t = time.time_ns()

    def state(self, hinge: float = 0.0, names=("hinge", "slider"), nan: bool = False) -> None:
        """Publish one new state until the task node has handled it (a step, a refusal, or ignored while paused)."""
        self.t += int(PEND.period_s * 1e9)
        pos = {"slider": 0.1, "hinge": hinge, "wheel": 0.0}
        m = JointState(name=list(names), position=[float("nan") if nan else pos[n] for n in names],
                       velocity=[0.0] * len(names))
        c.set_stamp(m.header, self.t)
        n = self.task.engine.n
        before = self._handled(n)
        assert self.g.spin_until(lambda: self.pub.publish(m) or self._handled(n) > before), "state not handled"
        assert self.g.spin_until(lambda: len(self.steps) == n.steps)       # its env step (if any) arrived here

    @staticmethod
    def _handled(n) -> int:
        return (n.steps + n.missing_joints + n.extra_joints + n.bad_joint_states + n.paused_inputs
                + n.stale_imu + n.task_errors)


def test_task_node_steps_pauses_and_resumes(graph):
    from symphony_ros.nodes.task import TaskNode
    g = graph
    task = g.make(TaskNode, "task", robot_description="inverted_pendulum", task="pendulum_balance",
                  auto_recover=False, episode_time_s=10.0)
    d = Driver(g, task)
    assert g.spin_until(lambda: d.pub.get_subscription_count() > 0 and task._pub.get_subscription_count() > 0)
    for _ in range(3):
        d.state()
    s = d.steps
    assert [(m.episode, m.step) for m in s] == [(0, 0), (0, 1), (0, 2)] and s[0].reward == 0.0
    np.testing.assert_allclose(s[0].observation[:2], [0.1, 0.0])                  # slider, hinge: by name
    assert [m.reward for m in s[1:]] == [1.0, 1.0] and s[0].header.frame_id == "inverted_pendulum"
    e = task.engine
    d.state(names=("slider",))                                                    # missing joint
    d.state(names=("slider", "hinge", "wheel"))                                   # extra joint
    d.state(nan=True)                                                             # NaN
    assert (e.n.missing_joints, e.n.extra_joints, e.n.bad_joint_states, e.n.steps) == (1, 1, 1, 3)
    d.state()
    assert d.steps[-1].step == 6                                                  # the refused periods still count
    d.state(hinge=0.5)                                                            # the pole falls
    assert d.steps[-1].terminated and d.steps[-1].reward == 0.0
    for _ in range(3):
        d.state()                                                                 # paused: nothing published
    assert len(d.steps) == 5 and e.n.paused_inputs == 3
    r = g.call(Trigger, "/task/resume")
    assert r.success and "episode 1" in r.message
    assert not g.call(Trigger, "/task/resume").success                           # already running
    d.state()
    assert (d.steps[-1].episode, d.steps[-1].step) == (1, 0)
    assert task.counters()["returns"] == [3.0]                                    # 1 + 1 + 1 + 0 (the fall)


@pytest.mark.parametrize("params, match", [
    (dict(task="no_such_task"), "unknown task 'no_such_task'"),
    (dict(task="pendulum_balance", task_params="{max_angle: wide}"), "parameter 'max_angle' must be like"),
    (dict(task="pendulum_balance", observation="[joint_angle]"), "unknown field 'joint_angle'"),
    (dict(task="humanoid_stand"), "has no imu"),
    (dict(task="pendulum_balance", task_params="[1, 2"), "not valid YAML"),
])
def test_task_node_bad_configuration_stays_unconfigured(graph, params, match, caplog):
    from symphony_ros.nodes.task import TaskNode
    g = graph
    node = g.make(TaskNode, "task", robot_description="inverted_pendulum", autostart=False, **params)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    import re
    assert re.search(match, node._last_error) and "\n" not in node._last_error
    assert node.engine is None and node._pub is None                             # nothing published, no motor moves


def test_task_node_refuses_a_bad_description(graph, tmp_path):
    from symphony_ros.nodes.task import TaskNode
    bad = tmp_path / "bad.yaml"
    bad.write_text((load_description("inverted_pendulum").source and open(PEND.source).read())
                   .replace("position: [-1.0, 1.0]", "position: [1.0, -1.0]"))
    node = graph.make(TaskNode, "task", robot_description=str(bad), task="pendulum_balance", autostart=False)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "position limits in the wrong order" in node._last_error


# ============================================================================================= actor on a robot
def test_actor_commands_the_controller_topic_from_the_description(graph):
    from symphony_ros.nodes.actor import ActorNode
    g = graph
    actor = g.make(ActorNode, "actor", robot_description="inverted_pendulum", preset="ed",
                   **{"symphony.hidden_dim": 16})
    cmds: list = []
    g.node.create_subscription(Float64MultiArray, CMD_TOPIC, lambda m: cmds.append(list(m.data)),
                               qos(ct.JOINT_COMMANDS))
    env = g.node.create_publisher(msgs.EnvStep, ct.ENV_STEP.name, qos(ct.ENV_STEP))
    _publish_weights(g, 4, 1)
    assert g.spin_until(lambda: actor.weights_version == 1 and env.get_subscription_count() > 0
                        and actor._cmd_pub.get_subscription_count() > 0)
    assert actor.logic.settings.joint_lower == [-3.0] and actor.logic.settings.control_rate_hz == 50.0
    rng = np.random.default_rng(0)
    for k in range(5):
        n = len(cmds)
        env.publish(msgs.EnvStep(episode=0, step=k, observation=rng.normal(0, 3, 4).astype(np.float32).tolist()))
        assert g.spin_until(lambda: len(cmds) > n)
    assert all(len(x) == 1 and -3.0 <= x[0] <= 3.0 for x in cmds) and actor.steps_acted == 5


def test_actor_refuses_limits_given_twice(graph):
    from rclpy.exceptions import ParameterException

    from symphony_ros.nodes.actor import ActorNode
    g = graph
    try:
        actor = g.make(ActorNode, "actor", robot_description="inverted_pendulum", joint_lower=[-1.0],
                       joint_upper=[1.0], autostart=False)
    except (ValueError, ParameterException) as exc:   # parameter validation may already refuse it
        assert "joint" in str(exc)
        return
    assert actor.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "sets joint_lower, joint_upper: leave those parameters empty" in actor._last_error


# ============================================================================================= the three together
def test_driver_task_actor_run_episodes_with_automatic_recovery(graph):
    """Real time at 50 Hz: every env step is answered on the controller topic, falls end episodes, the task node
    calls the driver's reset (the description's recovery_service) and the next episode starts by itself."""
    from symphony_ros.nodes.actor import ActorNode
    from symphony_ros.nodes.mujoco_driver import MujocoDriverNode
    from symphony_ros.nodes.task import TaskNode
    g = graph
    drv = g.make(MujocoDriverNode, "mujoco_driver", robot_description="inverted_pendulum")
    task = g.make(TaskNode, "task", robot_description="inverted_pendulum", task="pendulum_balance",
                  recovery_delay_s=0.1, episode_time_s=4.0)
    actor = g.make(ActorNode, "actor", robot_description="inverted_pendulum", preset="ed", obs_timeout_s=0.3,
                   safe_ramp_s=0.2, **{"symphony.hidden_dim": 16})
    transitions: list = []
    g.node.create_subscription(msgs.Transition, ct.TRANSITIONS.name, transitions.append, qos(ct.TRANSITIONS))
    _publish_weights(g, 4, 1)
    assert g.spin_until(lambda: len(task.counters().get("returns", [])) >= 3 and drv.resets >= 2, timeout=60.0), \
        task.counters()
    n = task.counters()
    assert n["steps"] > 10 and drv.commands > 0 and actor.steps_acted > 0
    assert transitions and all(len(t.action) == 1 and abs(t.action[0]) <= 1.0 for t in transitions)
    assert all(len(t.observation) == 4 for t in transitions)
    # every episode ended by a fall or the 4 s limit, and a new one started after the driver's reset
    assert n["episodes"] >= 3 and drv.resets >= n["episodes"] - 2
