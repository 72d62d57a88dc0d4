"""``mujoco_driver``: a simulated robot that is ONLY a driver (symphony_ros/robot/mujoco_robot.py in ROS clothes).

It behaves as a ros2_control robot with a joint_state_broadcaster, an IMU driver and a forward command controller:

* publishes ``joint_states`` (sensor_msgs/JointState: every 1-dof joint of the model, in the model's order, commanded
  and passive), ``imu`` (sensor_msgs/Imu, if the description has one) and, when ``publish_odometry`` and the
  description names an ``odometry_topic``, nav_msgs/Odometry of the base (what a state estimator would give);
* listens only on the description's ``controller_topic`` (std_msgs/Float64MultiArray, one value per commanded joint in
  the controller's order, the description's units), as forward_command_controller / JointGroup*Controller do; a
  command is held for ``command_timeout_s`` and then replaced by zero; a bad one (wrong size, NaN) is counted and
  zeroes the command at once;
* steps physics in real time at the description's ``control_rate_hz`` (a steady timer; late periods are counted);
* offers ``~/reset`` (std_srvs/Trigger), an operator's "put the robot back", which the task node may use as the
  description's ``recovery_service``. Nothing else: no env_step, no reward, no episode logic.

A robot owner replaces this node by their ros2_control stack without touching any other node.
"""
from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from .. import contract as C
from ..robot.description import load_description
from ..robot.mujoco_robot import MujocoRobot
from .common import BadInputCounter, ParamSpec, declare_parameters, qos_profile, run_node, set_stamp

NODE_NAME = "mujoco_driver"

PARAM_SPECS = [
    ParamSpec("robot_description", "", "robot description (config/robots/<name>.yaml or a path) with a sim.env; "
              "REQUIRED", read_only=True),
    ParamSpec("seed", 0, "seed of the first reset (the model's reset noise)", lo=0, hi=2**31 - 1, read_only=True),
    ParamSpec("command_timeout_s", 0.1, "hold the last command this long (s), then apply zero", lo=0.0, hi=3600.0),
    ParamSpec("publish_odometry", True, "publish the base's odometry on the description's odometry_topic (a robot's "
              "state estimator); ignored without one", read_only=True),
]


class MujocoDriverNode(Node):
    """The simulated driver (module docstring). Attributes: ``ticks`` control periods stepped, ``late_ticks``
    periods that started more than one period late, ``zero_ticks`` periods without a valid fresh command,
    ``bad_commands``, ``commands``, ``resets``; ``latencies_ms``: joint_states publish -> the next command."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.robot: MujocoRobot | None = None
        try:
            self._setup()
        except BaseException:
            self.destroy_node()
            raise

    def _setup(self) -> None:
        p = declare_parameters(self, PARAM_SPECS, self._on_param_change)
        if not p["robot_description"]:
            raise ValueError("parameter 'robot_description' is required (config/robots/<name>.yaml or a path)")
        d = self.description = load_description(str(p["robot_description"]))
        self.robot = MujocoRobot(d, seed=int(p["seed"]))
        if self.robot.timestep_changed:
            self.get_logger().info(f"physics timestep set to {self.robot.model.opt.timestep:g} s "
                                   f"({self.robot.substeps} per {d.period_s:g} s control period)")
        self.command_timeout_s = float(p["command_timeout_s"])
        self.ticks = self.late_ticks = self.zero_ticks = self.bad_commands = self.commands = self.resets = 0
        self.latencies_ms: collections.deque = collections.deque(maxlen=5000)
        self._bad = BadInputCounter(self.get_logger())
        self._held: np.ndarray | None = None
        self._held_at = 0.0
        self._published_at: float | None = None     # perf_counter of the last joint_states (for the latency)
        self._next_tick: float | None = None
        qs = qos_profile(C.JOINT_STATES)
        self._js = self.create_publisher(JointState, d.joint_states_topic, qs)
        self._imu = self.create_publisher(Imu, d.imu.topic, qos_profile(C.IMU)) if d.imu is not None else None
        self._odom = self.create_publisher(Odometry, d.odometry_topic, qs) \
            if d.odometry_topic and p["publish_odometry"] else None
        self.create_subscription(Float64MultiArray, d.controller_topic, self._on_command,
                                 qos_profile(C.JOINT_COMMANDS))
        self.create_service(Trigger, "~/reset", self._on_reset)
        self._wall = Clock(clock_type=ClockType.SYSTEM_TIME)
        self.robot.reset()
        self.create_timer(d.period_s, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f"simulating robot '{d.name}' ({d.sim.env}) at {d.control_rate_hz:g} Hz: "
                               f"joint_states ({len(self.robot.joint_names)} joints), "
                               f"{'imu, ' if self._imu else ''}{'odometry, ' if self._odom else ''}commands on "
                               f"{d.controller_topic}")

    def _on_param_change(self, name: str, value: Any) -> None:
        if name == "command_timeout_s":
            self.command_timeout_s = float(value)

    # ------------------------------------------------------------------------------------------ commands
    def _on_command(self, msg: Float64MultiArray) -> None:
        now = time.perf_counter()
        v = np.asarray(msg.data, np.float64)
        if v.shape != (self.description.act_dim,) or not np.isfinite(v).all():
            self.bad_commands += 1
            self._held = None                    # a motor driver refuses it: zero, not the old command
            self._bad("command", f"{v.size} values (expected {self.description.act_dim}) or NaN/Inf: zero applied")
            return
        self.commands += 1
        self._held, self._held_at = v, time.monotonic()
        if self._published_at is not None:
            self.latencies_ms.append((now - self._published_at) * 1e3)
            self._published_at = None            # one latency per published state (the first answer)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.robot.reset()
        self._held = None
        self.resets += 1
        response.success, response.message = True, f"robot '{self.description.name}' reset to its start state"
        return response

    # ------------------------------------------------------------------------------------------ the loop
    def _tick(self) -> None:
        period = self.description.period_s
        now = time.monotonic()
        if self._next_tick is not None and now - self._next_tick > period:
            self.late_ticks += 1
        self._next_tick = (self._next_tick + period) if self._next_tick is not None else now
        if self._next_tick < now - period:
            self._next_tick = now                # far behind: do not try to catch up in a burst
        fresh = self._held is not None and now - self._held_at <= self.command_timeout_s
        if not fresh:
            self.zero_ticks += 1
        self.robot.apply(self._held if fresh else None)
        self.robot.step()
        self.ticks += 1
        self._publish()

    def _publish(self) -> None:
        stamp = self._wall.now().nanoseconds
        names, q, v, e = self.robot.joint_state()
        js = JointState(name=list(names), position=q.tolist(), velocity=v.tolist(), effort=e.tolist())
        set_stamp(js.header, stamp)
        if self._imu is not None:
            r = self.robot.imu()
            m = Imu()
            set_stamp(m.header, stamp)
            m.header.frame_id = self.description.imu.frame
            m.orientation.x, m.orientation.y, m.orientation.z, m.orientation.w = map(float, r.orientation_xyzw)
            m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z = map(float, r.angular_velocity)
            m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z = \
                map(float, r.linear_acceleration)
            self._imu.publish(m)
        if self._odom is not None:
            o = self.robot.odometry()
            m = Odometry()
            set_stamp(m.header, stamp)
            m.header.frame_id, m.child_frame_id = "odom", "base_link"
            pp, pq = m.pose.pose.position, m.pose.pose.orientation
            pp.x, pp.y, pp.z = map(float, o.position)
            pq.x, pq.y, pq.z, pq.w = map(float, o.orientation_xyzw)
            tl, ta = m.twist.twist.linear, m.twist.twist.angular
            tl.x, tl.y, tl.z = map(float, o.linear_velocity)
            ta.x, ta.y, ta.z = map(float, o.angular_velocity)
            self._odom.publish(m)
        self._js.publish(js)                     # last: the task node steps on joint_states, the rest is there
        self._published_at = time.perf_counter()

    def destroy_node(self) -> None:
        if self.robot is not None:
            self.robot.close()
            self.robot = None
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    """`ros2 run symphony_ros mujoco_driver --ros-args -p robot_description:=inverted_pendulum`."""
    return run_node(MujocoDriverNode, argv, name=NODE_NAME)


if __name__ == "__main__":
    import sys
    sys.exit(main())
