"""TaskNode: a robot's task side. A thin lifecycle node over :class:`symphony_ros.tasks.engine.TaskEngine`: it turns
the driver's topics into ``env_step`` messages for the actor, scored by a task plugin (:mod:`symphony_ros.tasks`).

Topics (names from the robot description):
  in : joint_states (sensor_msgs/JointState, any joint order, matched by name), imu (sensor_msgs/Imu, if the robot
       has one), odometry (nav_msgs/Odometry, if the description names it and the task needs it), the controller's
       command topic (std_msgs/Float64MultiArray: the command last sent, for the previous action and the ctrl cost),
       extra observation topics (std_msgs/Float64MultiArray, declared in the observation spec)
  out: env_step (symphony_ros_interfaces/EnvStep): one per control period while an episode runs
Services: ~/resume (std_srvs/Trigger): start the next episode after a fall or a time limit.

Episodes: after the final step (fallen or time limit) the node publishes nothing until the next episode starts: on
``~/resume`` from the operator, or, when the description names a ``recovery_service`` and ``auto_recover`` is on,
``recovery_delay_s`` after the end the node calls that service and starts the next episode when it succeeds.
Lifecycle: configure loads description, task and spec (one line and unconfigured on any error: nothing is
published, no motor moves); activate starts episodes; deactivate stops them.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any

import yaml
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from symphony_ros_interfaces.msg import EnvStep

from .. import contract as C
from ..robot.description import DescriptionError, RobotDescription, load_description
from ..tasks.base import ObservationSpec, TaskError
from ..tasks.engine import EngineSettings, StepOut, TaskEngine
from ..tasks.loader import load_task
from . import common as c

NODE_NAME = "task"


def _yaml_param(value: Any, name: str, kind: type) -> Any:
    """A parameter holding YAML (a mapping or a list); '' = None. ValueError naming the parameter."""
    if value in ("", None):
        return None
    try:
        out = yaml.safe_load(value) if isinstance(value, str) else value
    except yaml.YAMLError:
        raise ValueError(f"parameter '{name}' is not valid YAML: {value!r}") from None
    if not isinstance(out, kind):
        raise ValueError(f"parameter '{name}' must be a YAML {kind.__name__}, got {value!r}")
    return out


PARAM_SPECS = [
    c.ParamSpec("robot_description", "", "robot description (config/robots/<name>.yaml or a path); REQUIRED",
                read_only=True),
    c.ParamSpec("task", "humanoid_stand", "task plugin: a built-in (humanoid_stand, humanoid_walk, pendulum_balance), "
                "an entry point of group symphony_ros.tasks, or package.module:Class", read_only=True),
    c.ParamSpec("task_params", "", "YAML mapping of the task's parameters, e.g. '{max_tilt_deg: 50.0}'; '' = "
                "defaults", read_only=True),
    c.ParamSpec("observation", "", "YAML list of observation fields (see symphony_ros/tasks/base.py); '' = the "
                "task's default spec", read_only=True),
    c.ParamSpec("episode_time_s", 20.0, "episode time limit (s): the step reaching it is truncated", lo=1e-3,
                hi=1e6, read_only=True),
    c.ParamSpec("max_input_age_periods", 1.0, "imu/odometry/extra inputs older than this many control periods are "
                "stale (no step)", lo=1e-3, hi=1e3, read_only=True),
    c.ParamSpec("decimation", 1, "a step every this many joint_states messages (a driver faster than the control "
                "rate)", lo=1, hi=1000, read_only=True),
    c.ParamSpec("start_paused", False, "wait for ~/resume before the first episode", read_only=True),
    c.ParamSpec("auto_recover", True, "call the description's recovery_service after an episode and resume when it "
                "succeeds; false (or no service): wait for ~/resume"),
    c.ParamSpec("recovery_delay_s", 1.0, "wait this long after an episode ends before the recovery call (the actor "
                "ramps to its safe pose meanwhile)", lo=0.0, hi=3600.0),
    c.ParamSpec("autostart", True, "configure + activate at startup; false = wait for lifecycle transitions"),
]


class TaskNode(LifecycleNode):
    """Lifecycle node 'task' (see the module docstring). The engine's counters read as ``node.engine.n``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._lock = threading.RLock()
        self._p = c.declare_parameters(self, PARAM_SPECS, on_change=self._on_param_change)
        self._bad = c.BadInputCounter(self.get_logger())
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.engine: TaskEngine | None = None
        self.description: RobotDescription | None = None
        self.active = False
        self._subs: list[Any] = []
        self._pub = self._resume_srv = self._recovery = self._timer = None
        self._ended_at: float | None = None
        self._recovering = False
        self.waiting_for_actor = 0       # joint_states ignored before an actor subscribed to env_step
        self._last_error = ""
        self.startup_error: str | None = None
        if self._p["autostart"]:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                self.startup_error = f"autostart: configure failed ({self._last_error})"
            elif self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                self.startup_error = "autostart: activate failed"

    def _on_param_change(self, name: str, value: Any) -> None:
        with self._lock:
            self._p[name] = value

    # ------------------------------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            try:
                self._configure()
            except (DescriptionError, TaskError, ValueError, OSError) as exc:
                self._last_error = str(exc)
                self.get_logger().error(f"configure failed: {exc}")
                self._release()
                return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        p = self._p
        if not p["robot_description"]:
            raise ValueError("parameter 'robot_description' is required (config/robots/<name>.yaml or a path)")
        d = self.description = load_description(str(p["robot_description"]))
        task = load_task(str(p["task"]), d, _yaml_param(p["task_params"], "task_params", dict))
        spec_entries = _yaml_param(p["observation"], "observation", list)
        spec = ObservationSpec(spec_entries) if spec_entries is not None else None
        settings = EngineSettings(episode_time_s=float(p["episode_time_s"]), start_paused=True,
                                  max_input_age_periods=float(p["max_input_age_periods"]),
                                  decimation=int(p["decimation"]))
        log = self.get_logger()
        self.engine = TaskEngine(d, task, spec, settings, report=self._bad, info=log.info)
        e = self.engine
        qs = c.qos_profile(C.JOINT_STATES)
        self._pub = self.create_publisher(EnvStep, C.ENV_STEP.name, c.qos_profile(C.ENV_STEP))
        self._subs = [self.create_subscription(JointState, d.joint_states_topic, self._on_joint_states, qs),
                      self.create_subscription(Float64MultiArray, d.controller_topic, self._on_command,
                                               c.qos_profile(C.JOINT_COMMANDS))]
        if d.imu is not None:
            self._subs.append(self.create_subscription(Imu, d.imu.topic, self._on_imu, c.qos_profile(C.IMU)))
        if d.odometry_topic and (e.spec.needs_odometry or task.needs_odometry):
            self._subs.append(self.create_subscription(Odometry, d.odometry_topic, self._on_odometry, qs))
        for topic in e.spec.extra_topics:
            self._subs.append(self.create_subscription(
                Float64MultiArray, topic, lambda m, t=topic: self._on_extra(t, m), qs))
        self._resume_srv = self.create_service(Trigger, "~/resume", self._srv_resume)
        if d.recovery_service:
            self._recovery = self.create_client(Trigger, d.recovery_service)
        log.info(f"configured: robot '{d.name}' ({d.act_dim} commanded joints, {d.control_rate_hz:g} Hz), task "
                 f"'{task.name}', observation {e.obs_dim} values ({', '.join(e.spec.names)}), episodes of "
                 f"{e.limit_steps} steps")

    def _release(self) -> None:
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        if self._pub is not None:
            self.destroy_publisher(self._pub)
        if self._resume_srv is not None:
            self.destroy_service(self._resume_srv)
        if self._recovery is not None:
            self.destroy_client(self._recovery)
        self._drop_timer()
        self._pub = self._resume_srv = self._recovery = None
        self.engine = None

    def _drop_timer(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self.active = True
            if not self._p["start_paused"]:
                self.engine.resume()
            self._timer = self.create_timer(0.1, self._on_timer, clock=self._steady)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self.active = False
            if self.engine is not None and self.engine.running:
                self.engine.running = False       # the actor's watchdog takes the robot to its safe command
                self.get_logger().info(f"deactivated: episode {self.engine.episode} abandoned")
            self._drop_timer()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self.active = False
            self._release()
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------------------------------ inputs
    def _on_joint_states(self, msg: JointState) -> None:
        with self._lock:
            e = self.engine
            if e is None or not self.active:
                return
            if e.step == 0 and e.last_stamp is None and self._pub.get_subscription_count() == 0:
                self.waiting_for_actor += 1      # no actor yet: an episode would run without anyone acting
                return
            out = e.on_joint_states(msg.name, msg.position, msg.velocity, msg.effort, c.stamp_ns(msg.header),
                                    time.monotonic())
            if out is not None:
                self._publish(out)

    def _publish(self, out: StepOut) -> None:
        m = EnvStep()
        c.set_stamp(m.header, out.stamp_ns)
        m.header.frame_id = self.description.name
        m.episode, m.step = out.episode, out.step
        m.observation = c.f32_array(out.observation)
        m.reward, m.terminated, m.truncated = float(out.reward), out.terminated, out.truncated
        self._pub.publish(m)
        if out.final:
            self._ended_at = time.monotonic()

    def _on_imu(self, msg: Imu) -> None:
        q, w, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
        with self._lock:
            if self.engine is not None:
                self.engine.on_imu((q.x, q.y, q.z, q.w), (w.x, w.y, w.z), (a.x, a.y, a.z), time.monotonic())

    def _on_odometry(self, msg: Odometry) -> None:
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        v, w = msg.twist.twist.linear, msg.twist.twist.angular
        with self._lock:
            if self.engine is not None:
                self.engine.on_odometry((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), (v.x, v.y, v.z), (w.x, w.y, w.z),
                                        time.monotonic())

    def _on_command(self, msg: Float64MultiArray) -> None:
        with self._lock:
            if self.engine is not None:
                self.engine.on_command(msg.data)

    def _on_extra(self, topic: str, msg: Float64MultiArray) -> None:
        with self._lock:
            if self.engine is not None:
                self.engine.on_extra(topic, msg.data, time.monotonic())

    # ------------------------------------------------------------------------------------------ episodes
    def _srv_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            e = self.engine
            if e is None or not self.active:
                response.success, response.message = False, "not active"
            elif e.resume():
                response.success, response.message = True, f"episode {e.episode} started"
            else:
                response.success, response.message = False, f"episode {e.episode} is running"
        return response

    def _on_timer(self) -> None:
        """After an episode: the recovery call once recovery_delay_s have passed (if the description offers one)."""
        with self._lock:
            e = self.engine
            if (e is None or e.running or self._recovering or self._recovery is None or self._ended_at is None
                    or not self._p["auto_recover"]):
                return
            if time.monotonic() - self._ended_at < float(self._p["recovery_delay_s"]):
                return
            if not self._recovery.service_is_ready():
                self._bad("recovery", f"recovery service {self._recovery.srv_name} not available: call ~/resume "
                          "when the robot is ready")
                return
            self._recovering = True
            self._recovery.call_async(Trigger.Request()).add_done_callback(self._recovered)

    def _recovered(self, future) -> None:
        with self._lock:
            self._recovering = False
            try:
                res = future.result()
            except Exception as exc:  # noqa: BLE001 - a failed call: one line, the operator decides
                res = None
                why = f"{type(exc).__name__}: {exc}"
            else:
                why = res.message if res is not None else "no answer"
            e = self.engine
            if res is None or not res.success:
                self._ended_at = time.monotonic()         # try again after the delay
                self._bad("recovery", f"recovery failed ({why}); retrying, or call ~/resume")
                return
            if e is not None and self.active:
                self._ended_at = None
                e.resume()

    def counters(self) -> dict[str, Any]:
        """The engine's counters plus the finished episodes' returns (JSON-able)."""
        with self._lock:
            if self.engine is None:
                return {}
            out: dict[str, Any] = self.engine.n.as_dict()
            out["returns"] = list(self.engine.n.returns)
            return json.loads(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
    """`ros2 run symphony_ros task --ros-args -p robot_description:=<name> -p task:=<task>`."""
    return c.run_node(TaskNode, argv, name=NODE_NAME)


if __name__ == "__main__":
    import sys
    sys.exit(main())
