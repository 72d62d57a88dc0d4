"""MuJoCo side of the sim bridge, without ROS: a gymnasium MuJoCo env seen the way a robot driver sees its robot.

:class:`MujocoBridge` owns one gymnasium MuJoCo environment (``Humanoid-v5`` by default, any MuJoCo env with a 1-D
Box action space by name) and gives the node (``symphony_ros.nodes.sim_bridge``) everything it publishes:

* the task side: :class:`StepResult` (episode, step, observation, reward, terminated, truncated) for ``env_step``;
* the driver side: :meth:`MujocoBridge.joint_state` (actuated joints, named from the MuJoCo model) and
  :meth:`MujocoBridge.imu` (orientation, angular velocity, proper linear acceleration of the torso);
* the simulated time (:attr:`MujocoBridge.sim_time_ns`, ``total_steps * dt``) for ``/clock`` in lockstep.

Commands are in policy units (one value per actuator, nominally [-1, 1]) and go through
:class:`~symphony_ros.envs.gym_env.ActionMapping` (``paper``: unchanged, MuJoCo clamps to ``ctrlrange``; ``rescale``:
[-1, 1] mapped onto the action Box). A command of the wrong size or with NaN/Inf raises ``ValueError``.

Episode bookkeeping: :meth:`~MujocoBridge.reset` starts the next episode (the first reset gives episode 0) and
returns its step 0. A :meth:`~MujocoBridge.step` called after a terminated/truncated step (or before any reset)
ignores its command, resets, and returns step 0 of the next episode ("the next step auto-resets").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gym_env import ActionMapping, make_env

__all__ = ["StepResult", "JointStateArrays", "ImuReading", "MujocoBridge", "imu_reading"]


@dataclass(frozen=True)
class StepResult:
    """One env_step: the observation after a step (or after reset, ``step == 0``) and how it was reached.

    Attributes:
        episode: episode index, 0 after the first reset.
        step: step index within the episode; 0 = the observation right after reset.
        observation: float32, shape (obs_dim,).
        reward: reward of the transition that produced ``observation`` (0.0 at step 0).
        terminated: true terminal state (e.g. the humanoid fell): no bootstrapping past it.
        truncated: time limit (``episode_limit`` steps) reached: bootstrapping continues.
    """
    episode: int
    step: int
    observation: np.ndarray
    reward: float
    terminated: bool
    truncated: bool

    @property
    def done(self) -> bool:
        """The episode ended here (terminated or truncated); the next step starts a new one."""
        return self.terminated or self.truncated


@dataclass(frozen=True)
class JointStateArrays:
    """Actuated joints in actuator order, float64 arrays of shape (act_dim,).

    Units: position rad (hinge) or m (slide); velocity rad/s or m/s; effort = ``data.actuator_force`` (the actuator's
    scalar force, N·m or N in actuator space; the joint torque is ``gear`` times it).
    """
    name: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


@dataclass(frozen=True)
class ImuReading:
    """An IMU rigidly attached to the IMU body (``torso`` if present, else body 1).

    Attributes:
        orientation_xyzw: body orientation in the world frame, unit quaternion in ROS order (x, y, z, w).
        angular_velocity: rad/s, shape (3,), in the body frame.
        linear_acceleration: m/s², shape (3,), in the body frame, *proper* acceleration like a real accelerometer
            (and MuJoCo's accelerometer sensor): a body at rest reads +9.81 along the world's up axis.
    """
    orientation_xyzw: np.ndarray
    angular_velocity: np.ndarray
    linear_acceleration: np.ndarray


def imu_reading(model, data, body: int) -> ImuReading:
    """An IMU rigidly attached to body ``body`` (see :meth:`MujocoBridge.imu`); recomputes ``data.cacc``."""
    import mujoco as mj
    mj.mj_rnePostConstraint(model, data)
    vel, acc = np.zeros(6), np.zeros(6)
    mj.mj_objectVelocity(model, data, mj.mjtObj.mjOBJ_XBODY, body, vel, 1)        # XBODY: body frame (xpos, xmat),
    mj.mj_objectAcceleration(model, data, mj.mjtObj.mjOBJ_XBODY, body, acc, 1)    # BODY would be the inertial one
    w, x, y, z = data.xquat[body]
    return ImuReading(np.array([x, y, z, w], dtype=np.float64), vel[:3].copy(), acc[3:].copy())


class MujocoBridge:
    """A gymnasium MuJoCo environment with a driver's view of it (see the module docstring).

    Args:
        env_id: gymnasium id of a MuJoCo env with a 1-D Box action space (``Humanoid-v5``, ``InvertedPendulum-v5``, ..).
        episode_limit: time limit in steps (gymnasium TimeLimit): the step that reaches it is ``truncated``.
        action_mode: ``paper`` (commands passed unchanged) or ``rescale`` ([-1, 1] mapped onto the action Box).
        seed: seed of the first reset (later resets continue the env's random stream); None = unseeded.
        command_limit: commands are clamped to ±command_limit (policy units) before the env sees them, so a huge
            finite command cannot become an infinite control cost (counted in ``clamped_commands``).
        **env_kwargs: passed to ``gymnasium.make``.

    Raises:
        ValueError: unknown env, not a MuJoCo env, non-Box spaces, unknown action_mode, episode_limit < 1.
    """

    def __init__(self, env_id: str = "Humanoid-v5", *, episode_limit: int = 1000, action_mode: str = "paper",
                 seed: int | None = 0, command_limit: float = 1.0, **env_kwargs) -> None:
        if int(episode_limit) < 1:
            raise ValueError(f"episode_limit must be >= 1, got {episode_limit}")
        if not (np.isfinite(command_limit) and command_limit > 0):
            raise ValueError(f"command_limit must be a finite number > 0, got {command_limit}")
        self.command_limit = float(command_limit)
        self.clamped_commands = 0   # commands with a value beyond ±command_limit (clamped before the env saw them)
        self.env_id = env_id
        self.env = make_env(env_id, episode_limit=int(episode_limit), seed=seed, **env_kwargs)
        try:
            self._setup(action_mode, seed)
        except Exception:
            self.env.close()
            raise

    def _setup(self, action_mode: str, seed: int | None) -> None:
        import mujoco

        self._mj = mujoco
        unwrapped = self.env.unwrapped
        model, data = getattr(unwrapped, "model", None), getattr(unwrapped, "data", None)
        if not isinstance(model, mujoco.MjModel) or not isinstance(data, mujoco.MjData):
            raise ValueError(f"environment '{self.env_id}' is not a MuJoCo environment (no MjModel/MjData)")
        self.model, self.data = model, data
        space = self.env.action_space
        if space.shape[0] != model.nu:
            raise ValueError(f"environment '{self.env_id}' has {space.shape[0]} actions but {model.nu} actuators")
        self.mapping = ActionMapping(space.low, space.high, action_mode)
        self._seed = seed
        self._obs_dim = int(self.env.observation_space.shape[0])
        self._act_dim = int(space.shape[0])
        self._dt = float(unwrapped.dt)
        self._dt_ns = int(round(self._dt * 1e9))
        self._joints = self._actuated_joints()
        self._imu_body = self._find_imu_body()
        self._zero = self._safe_command()
        # bookkeeping
        self.episode = -1          # index of the current episode; -1 before the first reset
        self.step_in_episode = 0   # steps taken in the current episode
        self.total_steps = 0       # physics/control steps since construction (drives sim_time_ns)
        self._done = True          # the next step() resets

    # ------------------------------------------------------------------------------------------- model facts
    def _actuated_joints(self) -> list[tuple[str, int, int]]:
        """(name, qpos address, dof address) per actuator, in actuator order.

        A joint transmission on a 1-dof (hinge/slide) joint names the joint; any other transmission (tendon, site,
        ball/free joint) is reported under the actuator's own name with address -1 (its state then comes from
        ``actuator_length`` / ``actuator_velocity``).
        """
        mj, m = self._mj, self.model
        one_dof = (int(mj.mjtJoint.mjJNT_HINGE), int(mj.mjtJoint.mjJNT_SLIDE))
        joint_trn = (int(mj.mjtTrn.mjTRN_JOINT), int(mj.mjtTrn.mjTRN_JOINTINPARENT))
        out = []
        for a in range(m.nu):
            j = int(m.actuator_trnid[a, 0])
            if int(m.actuator_trntype[a]) in joint_trn and int(m.jnt_type[j]) in one_dof:
                name = mj.mj_id2name(m, mj.mjtObj.mjOBJ_JOINT, j) or f"joint{j}"
                out.append((name, int(m.jnt_qposadr[j]), int(m.jnt_dofadr[j])))
            else:
                name = mj.mj_id2name(m, mj.mjtObj.mjOBJ_ACTUATOR, a) or f"actuator{a}"
                out.append((name, -1, -1))
        return out

    def _find_imu_body(self) -> int:
        mj = self._mj
        torso = mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_BODY, "torso")
        if torso >= 0:
            return int(torso)
        if self.model.nbody < 2:
            raise ValueError(f"environment '{self.env_id}' has no body to carry the IMU")
        return 1

    def _safe_command(self) -> np.ndarray:
        """The policy-unit command whose actuator control is as close to 0 as the action Box allows (zero torque)."""
        if self.mapping.mode == "paper":
            return np.zeros(self._act_dim, np.float64)
        low, high = self.mapping.low, self.mapping.high
        span = np.where(high > low, high - low, 1.0)
        return np.clip(-(high + low) / span, -1.0, 1.0)

    @property
    def obs_dim(self) -> int:
        """Size of the observation vector."""
        return self._obs_dim

    @property
    def act_dim(self) -> int:
        """Number of actuators = size of a command."""
        return self._act_dim

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Actuated joint names from the MuJoCo model, in actuator (= command) order."""
        return tuple(n for n, _, _ in self._joints)

    @property
    def dt(self) -> float:
        """Control period of one env step in seconds (``env.unwrapped.dt`` = timestep * frame_skip)."""
        return self._dt

    @property
    def dt_ns(self) -> int:
        """:attr:`dt` in integer nanoseconds (sim time advances exactly this much per step)."""
        return self._dt_ns

    @property
    def sim_time_ns(self) -> int:
        """Simulated time since construction: ``total_steps * dt_ns`` (monotonic across resets)."""
        return self.total_steps * self._dt_ns

    @property
    def imu_body(self) -> str:
        """Name of the body that carries the IMU."""
        return self._mj.mj_id2name(self.model, self._mj.mjtObj.mjOBJ_BODY, self._imu_body) or f"body{self._imu_body}"

    @property
    def zero_command(self) -> np.ndarray:
        """The safe command in policy units (maps to zero actuator control where the action Box allows it)."""
        return self._zero.copy()

    @property
    def ctrl(self) -> np.ndarray:
        """The actuator controls currently applied in MuJoCo (``data.ctrl``, a copy), shape (act_dim,)."""
        return self.data.ctrl.copy()

    @property
    def needs_reset(self) -> bool:
        """True before the first reset and after a terminated/truncated step."""
        return self._done

    # ------------------------------------------------------------------------------------------- stepping
    def check_command(self, command) -> np.ndarray:
        """``command`` as a float64 vector of shape (act_dim,), or ValueError if wrong size / not finite."""
        try:
            c = np.asarray(command, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError("command is not numeric") from None
        if c.size != self._act_dim:
            raise ValueError(f"command has {c.size} values, expected {self._act_dim}")
        if not np.isfinite(c).all():
            raise ValueError("command holds NaN/Inf")
        return c

    def reset(self, seed: int | None = None) -> StepResult:
        """Start the next episode and return its step 0 (reward 0). The very first reset uses the constructor's
        seed unless ``seed`` is given; later ones continue the env's random stream unless ``seed`` is given."""
        if seed is None and self.episode < 0:
            seed = self._seed
        obs, _ = self.env.reset(seed=seed)
        self.episode += 1
        self.step_in_episode = 0
        self._done = False
        return StepResult(self.episode, 0, np.asarray(obs, np.float32).reshape(-1), 0.0, False, False)

    def step(self, command) -> StepResult:
        """Apply ``command`` (policy units, shape (act_dim,)) for one env step (``dt`` seconds).

        Raises ValueError (nothing applied) for a wrong-size or non-finite command. If the previous step ended the
        episode (or no reset happened yet) the command is ignored and step 0 of the next episode is returned.
        """
        c = self.check_command(command)
        if self._done:
            return self.reset()
        if np.abs(c).max() > self.command_limit:   # a huge finite command must not become an infinite control cost
            self.clamped_commands += 1
            c = np.clip(c, -self.command_limit, self.command_limit)
        obs, reward, terminated, truncated, _ = self.env.step(self.mapping(c))
        self.step_in_episode += 1
        self.total_steps += 1
        self._done = bool(terminated or truncated)
        return StepResult(self.episode, self.step_in_episode, np.asarray(obs, np.float32).reshape(-1),
                          float(reward), bool(terminated), bool(truncated))

    # ------------------------------------------------------------------------------------------- driver view
    def joint_state(self) -> JointStateArrays:
        """Positions, velocities and efforts of the actuated joints (see :class:`JointStateArrays` for units)."""
        d = self.data
        n = self._act_dim
        pos, vel = np.empty(n), np.empty(n)
        for i, (_, qadr, dadr) in enumerate(self._joints):
            if qadr >= 0:
                pos[i], vel[i] = d.qpos[qadr], d.qvel[dadr]
            else:
                pos[i], vel[i] = d.actuator_length[i], d.actuator_velocity[i]
        return JointStateArrays(self.joint_names, pos, vel, np.array(d.actuator_force, dtype=np.float64))

    def imu(self) -> ImuReading:
        """The IMU body's orientation, angular velocity and proper linear acceleration (see :class:`ImuReading`).

        The models have no IMU sensors, so the reading is computed the way MuJoCo's gyro/accelerometer sensors do:
        ``mj_objectVelocity`` / ``mj_objectAcceleration`` at the body frame's origin, in the body frame (the frame
        of ``data.xquat``, not the inertial frame), after
        ``mj_rnePostConstraint`` has filled ``data.cacc`` (gymnasium calls it after each step, but not on reset;
        it is recomputed here from the current state, so it is valid after reset too). Gravity enters ``cacc`` as
        an upward acceleration of the world, which makes the linear acceleration the proper acceleration.
        """
        return imu_reading(self.model, self.data, self._imu_body)

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> "MujocoBridge":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
