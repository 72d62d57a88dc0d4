"""``sim_bridge``: a gymnasium MuJoCo environment that talks like a robot driver (plus the task node's env_step).

Publishes (relative names, so a robot namespace prefixes them):

* ``joint_states`` (sensor_msgs/JointState, sensor-data QoS): the actuated joints named from the MuJoCo model, in
  actuator = command order; position (rad or m), velocity (rad/s or m/s), effort (``data.actuator_force``).
* ``imu`` (sensor_msgs/Imu, sensor-data QoS, ``frame_id``): torso orientation (world frame), angular velocity and
  proper linear acceleration (body frame, gravity included like a real accelerometer). Covariances are 0 (unknown).
* ``env_step`` (symphony_ros_interfaces/EnvStep, reliable): episode, step, observation, reward of the transition
  that produced it (0 at step 0), terminated, truncated. ``header.stamp`` = sim time (lockstep) or wall time
  (realtime), the same stamp as the joint_states/imu published with it.
* ``/clock`` (rosgraph_msgs/Clock, reliable) in lockstep when ``publish_clock``: sim time, ``steps * dt`` since the
  node started (monotonic across resets), published before the env_step of the same instant.

Subscribes ``joint_commands`` (std_msgs/Float64MultiArray, reliable): one value per actuator in policy units
(nominally [-1, 1]); ``action_mode`` maps them to controls. Service ``~/reset`` (std_srvs/Trigger) starts a new
episode and publishes its step 0.

Modes:

* ``lockstep`` (the paper's protocol): exactly one env step per valid command, then joint_states, imu, /clock and
  env_step are published. Until a command answers the current env_step, that env_step is re-published every
  ``republish_s`` (same episode and step: subscribers must ignore duplicates), so an actor that joins late is not
  deadlocked. A bad command (wrong size, NaN/Inf) is counted, logged (rate-limited) and ignored: no step.
* ``realtime``: a timer at ``rate_hz`` steps the env with the last valid command while it is younger than
  ``command_timeout_s``, else with the safe zero command (zero actuator control). A bad command is counted and
  replaces the held command by zero. Resets do not clear the held command (it simply times out).

Episodes: when a step is terminated or truncated (``episode_limit`` steps), its env_step is published and the env is
reset at once: step 0 of the next episode follows immediately (no command is needed or used for the terminal step).
A ``~/reset`` call abandons the running episode without a terminal env_step (the next env_step is step 0 of a new
episode index).
"""
from __future__ import annotations

import sys
import time

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from symphony_ros_interfaces.msg import EnvStep

from ..envs.bridge import MujocoBridge, StepResult
from ..envs.gym_env import ACTION_MODES
from .. import contract as C
from .common import BadInputCounter, ParamSpec, declare_parameters, f32_array, f64_array, qos_profile, run_node, \
    set_stamp

NODE_NAME = "sim_bridge"
MODES = ("lockstep", "realtime")
REPUBLISH_CHECK_S = 0.1   # how often lockstep checks whether the current env_step is due for re-publishing

PARAM_SPECS = [
    ParamSpec("env", "Humanoid-v5", "gymnasium id of a MuJoCo environment with a 1-D Box action space",
              read_only=True),
    ParamSpec("mode", "lockstep", "lockstep: one env step per received command, sim time on /clock; "
              "realtime: env steps at rate_hz with the last command", choices=MODES, read_only=True),
    ParamSpec("rate_hz", 0.0, "realtime control rate in Hz; 0 = 1/dt of the environment (66.7 Hz for Humanoid)",
              lo=0.0, hi=10000.0, read_only=True),
    ParamSpec("command_timeout_s", 0.1, "realtime: the last command is held this many seconds, then the safe "
              "zero command is applied", lo=0.0, hi=3600.0),
    ParamSpec("episode_limit", 1000, "time limit in env steps: the step reaching it is truncated",
              lo=1, hi=2**31 - 1, read_only=True),
    ParamSpec("action_mode", "paper", "paper: commands passed unchanged (MuJoCo clamps to ctrlrange); rescale: "
              "[-1, 1] mapped onto the action bounds", choices=ACTION_MODES, read_only=True),
    ParamSpec("seed", 0, "seed of the first reset", lo=0, hi=2**31 - 1, read_only=True),
    ParamSpec("command_limit", 1.0, "commands are clamped to +-command_limit (policy units) before the env steps "
              "(a huge finite command must not become an infinite control cost)", lo=1e-6, hi=1e6, read_only=True),
    ParamSpec("publish_clock", True, "lockstep: publish sim time on /clock (ignored in realtime)"),
    ParamSpec("republish_s", 1.0, "lockstep: re-publish the unanswered env_step this often, in seconds "
              "(0 = never)", lo=0.0, hi=3600.0),
    ParamSpec("frame_id", "base_link", "frame_id of the imu message (the torso frame)"),
]


class SimBridgeNode(Node):
    """The MuJoCo sim bridge node (see the module docstring for topics, modes and episode handling).

    ``**kwargs`` go to :class:`rclpy.node.Node` (``context``, ``cli_args`` such as ``NodeSpec.ros_args()``,
    ``namespace``, ``parameter_overrides``). Raises ValueError (or rclpy's ParameterException for a value of the
    wrong type) naming the parameter when a parameter is invalid or the environment cannot be created.

    Attributes:
        steps: env steps taken (one per applied command / realtime tick), resets excluded.
        episodes: episodes started (the current episode index + 1).
        bad_commands: rejected joint_commands messages (wrong size, NaN/Inf).
        zero_commands: realtime ticks that applied the zero command (no command yet, timed out, or bad).
        republished: lockstep re-publications of an unanswered env_step.
        bridge: the :class:`~symphony_ros.envs.bridge.MujocoBridge`.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.bridge: MujocoBridge | None = None
        try:
            self._setup()
        except BaseException:
            self.destroy_node()
            raise

    def _setup(self) -> None:
        p = declare_parameters(self, PARAM_SPECS, self._on_param_change)
        self.mode: str = p["mode"]
        self.command_timeout_s: float = float(p["command_timeout_s"])
        self.publish_clock: bool = bool(p["publish_clock"])
        self.republish_s: float = float(p["republish_s"])
        self.frame_id: str = str(p["frame_id"])
        self.bridge = MujocoBridge(p["env"], episode_limit=int(p["episode_limit"]), action_mode=p["action_mode"],
                                   seed=int(p["seed"]), command_limit=float(p["command_limit"]))
        self.lockstep = self.mode == "lockstep"
        self.rate_hz: float = float(p["rate_hz"]) or 1.0 / self.bridge.dt

        self.steps = 0
        self.episodes = 0
        self.zero_commands = 0
        self.republished = 0
        self._bad = BadInputCounter(self.get_logger())
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)   # timers never wait on /clock (we publish it)
        self._wall = Clock(clock_type=ClockType.SYSTEM_TIME)
        self._env_msg: EnvStep | None = None        # the last env_step published (re-published in lockstep)
        self._last_publish = time.monotonic()
        self._last_clock_ns = -1
        self._held: np.ndarray | None = None        # realtime: last valid command and when it arrived
        self._held_at = 0.0
        self._timed_out = False
        self.last_command = self.bridge.zero_command   # the command (policy units) applied by the last step

        self._js_pub = self.create_publisher(JointState, C.JOINT_STATES.name, qos_profile(C.JOINT_STATES))
        self._imu_pub = self.create_publisher(Imu, C.IMU.name, qos_profile(C.IMU))
        self._env_pub = self.create_publisher(EnvStep, C.ENV_STEP.name, qos_profile(C.ENV_STEP))
        self._clock_pub = self.create_publisher(ClockMsg, C.CLOCK.name, qos_profile(C.CLOCK)) \
            if self.lockstep else None
        self.create_subscription(Float64MultiArray, C.JOINT_COMMANDS.name, self._on_command,
                                 qos_profile(C.JOINT_COMMANDS))
        self.create_service(Trigger, "~/reset", self._on_reset)
        if self.lockstep:
            self.create_timer(REPUBLISH_CHECK_S, self._on_republish_check, clock=self._steady)
        else:
            self.create_timer(1.0 / self.rate_hz, self._on_tick, clock=self._steady)

        self._new_episode()
        b = self.bridge
        self.get_logger().info(
            f"{p['env']} in {self.mode} mode: {b.act_dim} actuated joints, obs_dim {b.obs_dim}, dt {b.dt * 1e3:g} ms"
            + ("" if self.lockstep else f", {self.rate_hz:g} Hz, command timeout {self.command_timeout_s:g} s")
            + f", IMU on '{b.imu_body}'")

    # ------------------------------------------------------------------------------------------- counters
    @property
    def bad_commands(self) -> int:
        return self._bad.counts.get("joint_commands", 0)

    def _on_param_change(self, name: str, value) -> None:
        if name in ("command_timeout_s", "republish_s"):
            setattr(self, name, float(value))
        elif name == "publish_clock":
            self.publish_clock = bool(value)
        elif name == "frame_id":
            self.frame_id = str(value)

    # ------------------------------------------------------------------------------------------- env control
    def _new_episode(self) -> StepResult:
        result = self.bridge.reset()
        self.episodes += 1
        self._publish(result)
        return result

    def _step(self, command: np.ndarray) -> None:
        """One env step with a checked command, publish it; reset at once if the episode ended there."""
        result = self.bridge.step(command)
        self.steps += 1
        self.last_command = command
        self._publish(result)
        if result.done:
            self._new_episode()

    # ------------------------------------------------------------------------------------------- callbacks
    def _on_command(self, msg: Float64MultiArray) -> None:
        try:
            command = self.bridge.check_command(msg.data)
        except ValueError as exc:
            self._bad("joint_commands", str(exc))
            self._held = None   # realtime: the safe zero command replaces the held one
            return
        if self.lockstep:
            self._step(command)
        else:
            self._held, self._held_at = command, time.monotonic()

    def _on_tick(self) -> None:
        """Realtime control period: the held command if fresh, else the safe zero command."""
        fresh = self._held is not None and time.monotonic() - self._held_at <= self.command_timeout_s
        if fresh:
            command = self._held
            if self._timed_out:
                self._timed_out = False
                self.get_logger().info("joint_commands resumed")
        else:
            command = self.bridge.zero_command
            self.zero_commands += 1
            if self._held is not None and not self._timed_out:
                self._timed_out = True
                self.get_logger().warning(
                    f"no joint_commands for {self.command_timeout_s:g} s: applying the zero command")
        self._step(command)

    def _on_republish_check(self) -> None:
        if (self.republish_s > 0 and self._env_msg is not None
                and time.monotonic() - self._last_publish >= self.republish_s):
            self._env_pub.publish(self._env_msg)
            self._last_publish = time.monotonic()
            self.republished += 1

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        result = self._new_episode()
        response.success = True
        response.message = f"episode {result.episode} started"
        return response

    # ------------------------------------------------------------------------------------------- messages
    def _stamp_ns(self) -> int:
        return self.bridge.sim_time_ns if self.lockstep else self._wall.now().nanoseconds

    def _publish(self, result: StepResult) -> None:
        """joint_states, imu, (/clock,) env_step of the current state, all with the same stamp."""
        ns = self._stamp_ns()
        if self.lockstep and self.publish_clock and ns != self._last_clock_ns:
            clock = ClockMsg()
            clock.clock.sec, clock.clock.nanosec = divmod(ns, 1_000_000_000)
            self._clock_pub.publish(clock)
            self._last_clock_ns = ns
        self._js_pub.publish(self._joint_state_msg(ns))
        self._imu_pub.publish(self._imu_msg(ns))
        msg = env_step_msg(result, ns)
        self._env_pub.publish(msg)
        self._env_msg = msg
        self._last_publish = time.monotonic()

    def _joint_state_msg(self, ns: int) -> JointState:
        js = self.bridge.joint_state()
        msg = JointState()
        set_stamp(msg.header, ns)
        msg.name = list(js.name)
        msg.position, msg.velocity, msg.effort = f64_array(js.position), f64_array(js.velocity), f64_array(js.effort)
        return msg

    def _imu_msg(self, ns: int) -> Imu:
        imu = self.bridge.imu()
        msg = Imu()
        set_stamp(msg.header, ns)
        msg.header.frame_id = self.frame_id
        q, w, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
        q.x, q.y, q.z, q.w = (float(v) for v in imu.orientation_xyzw)
        w.x, w.y, w.z = (float(v) for v in imu.angular_velocity)
        a.x, a.y, a.z = (float(v) for v in imu.linear_acceleration)
        return msg

    def destroy_node(self) -> None:
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None
        super().destroy_node()


def env_step_msg(result: StepResult, stamp_ns: int) -> EnvStep:
    """The EnvStep message of a :class:`StepResult` (observation as float32[])."""
    msg = EnvStep()
    set_stamp(msg.header, stamp_ns)
    msg.episode, msg.step = int(result.episode), int(result.step)
    msg.observation = f32_array(result.observation)
    msg.reward = float(result.reward)
    msg.terminated, msg.truncated = bool(result.terminated), bool(result.truncated)
    return msg


def main(argv: list[str] | None = None) -> int:
    """``ros2 run symphony_ros sim_bridge [--ros-args ...]``: spin until Ctrl-C. Returns the exit code
    (1 if a parameter is invalid or the environment cannot be created)."""
    return run_node(SimBridgeNode, argv, name=NODE_NAME)



if __name__ == "__main__":
    sys.exit(main())
