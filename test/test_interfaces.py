"""symphony_ros_interfaces: the generated messages import, match msg/*.msg, and travel over DDS.

Needs rclpy and the interface package (`pip install --no-cache-dir ./interfaces` on a pip
machine, or a sourced colcon workspace on a robot); skips with a reason where either is missing.
"""

import os
import re
import time
from pathlib import Path

# Network hygiene, before rclpy is imported: discovery stays on loopback, own domain per process.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))

import pytest  # noqa: E402

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed (ROS 2 optional)')
msgs = pytest.importorskip(
    'symphony_ros_interfaces.msg',
    reason='symphony_ros_interfaces not built: pip install --no-cache-dir ./interfaces')

from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

MSG_DIR = Path(__file__).resolve().parents[1] / 'msg'
MSG_NAMES = ['EnvStep', 'Transition', 'PolicyWeights', 'LearnerStatus', 'LearnerAck', 'ActorStatus']


def _msg_field_names(path):
    """Field names declared in a .msg file (constants and comments skipped)."""
    names = []
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        m = re.match(r'(\S+)\s+([A-Za-z_]\w*)\s*(=)?', line)
        if m and not m.group(3):  # 'TYPE NAME = value' is a constant, not a field
            names.append(m.group(2))
    return names


@pytest.mark.parametrize('name', MSG_NAMES)
def test_installed_message_matches_msg_file(name):
    """Catches a stale install: rebuild after editing msg/ (pip install --no-cache-dir ./interfaces)."""
    cls = getattr(msgs, name)
    installed = list(cls.get_fields_and_field_types())
    assert installed == _msg_field_names(MSG_DIR / f'{name}.msg'), (
        f'installed {name} differs from msg/{name}.msg: reinstall the interfaces package')


def test_transition_pub_sub_over_dds():
    rclpy.init()
    try:
        from rclpy.executors import SingleThreadedExecutor

        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        pub_node = rclpy.create_node('test_interfaces_pub')
        sub_node = rclpy.create_node('test_interfaces_sub')
        received = []
        sub_node.create_subscription(msgs.Transition, 'transitions', received.append, qos)
        pub = pub_node.create_publisher(msgs.Transition, 'transitions', qos)
        executor = SingleThreadedExecutor()
        executor.add_node(pub_node)
        executor.add_node(sub_node)

        sent = msgs.Transition()
        sent.header.stamp.sec = 12
        sent.header.stamp.nanosec = 345
        sent.header.frame_id = 'robot0'
        sent.episode = 3
        sent.step = 41
        sent.observation = [0.5, -1.25, 2.0]  # exactly representable in float32
        sent.action = [0.25, -0.75]
        sent.reward = 1.5
        sent.next_observation = [0.75, -1.0, 2.5]
        sent.terminated = True
        sent.truncated = False

        deadline = time.monotonic() + 10.0
        while not received and time.monotonic() < deadline:
            if pub.get_subscription_count() > 0:
                pub.publish(sent)
            executor.spin_once(timeout_sec=0.05)
        assert received, 'no Transition received within 10 s'

        got = received[0]
        assert got.header.stamp.sec == 12
        assert got.header.stamp.nanosec == 345
        assert got.header.frame_id == 'robot0'
        assert (got.episode, got.step) == (3, 41)
        assert list(got.observation) == [0.5, -1.25, 2.0]
        assert list(got.action) == [0.25, -0.75]
        assert got.reward == 1.5
        assert list(got.next_observation) == [0.75, -1.0, 2.5]
        assert got.terminated is True
        assert got.truncated is False
        assert got == sent

        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()
    finally:
        rclpy.try_shutdown()
