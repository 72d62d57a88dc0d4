"""A MuJoCo robot seen only through what a real driver gives: joint states, an IMU, optionally a state estimator's
odometry, and a command interface (no ROS here; ``nodes/mujoco_driver.py`` is its ROS shell).

The model is the one of a gymnasium MuJoCo env (the description's ``sim.env``), stepped with raw physics: no
gymnasium reward, termination or reset logic runs (a real robot has none). The control period is the description's
``control_rate_hz``: ``substeps = round(period / timestep)`` physics steps per period; if the model's timestep does
not divide the period, the timestep is set to ``period / substeps`` (logged by the node).

Commands come in the CONTROLLER's joint order (the description's ``joints``) and are mapped by name onto the model's
actuators; ``joint_state()`` reports every 1-dof joint in the MODEL's order (as a real driver reports in its own
order): commanded and passive joints alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..envs.bridge import ImuReading, imu_reading
from ..envs.gym_env import make_env
from .description import RobotDescription


@dataclass(frozen=True)
class OdometryReading:
    """The base (the model's first body below the world): position (3,) and orientation (x, y, z, w) in the world;
    linear (3,) and angular (3,) velocity in the body frame (nav_msgs/Odometry's child frame)."""
    position: np.ndarray
    orientation_xyzw: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray


class MujocoRobot:
    """The description's robot in MuJoCo. ``env``: an already made gymnasium env to view (the reward comparison
    steps it with gymnasium's own step); default: make ``description.sim.env``. ValueError (one line) if the model
    does not fit the description."""

    def __init__(self, description: RobotDescription, *, seed: int | None = 0, env=None) -> None:
        import mujoco
        self.mj = mujoco
        self.d = description
        if env is None:
            if not description.sim.env:
                raise ValueError(f"robot description {description.source}: sim.env is not set (the gymnasium MuJoCo "
                                 "env whose model the simulated driver runs)")
            kwargs = {}
            if description.sim.reset_noise_scale is not None:
                kwargs["reset_noise_scale"] = description.sim.reset_noise_scale
            env = make_env(description.sim.env, **kwargs)
            self._owns_env = True
        else:
            self._owns_env = False
        self.env = env
        self.model, self.data = env.unwrapped.model, env.unwrapped.data
        m = self.model
        period = description.period_s
        self.substeps = max(1, int(round(period / m.opt.timestep)))
        self.timestep_changed = abs(self.substeps * m.opt.timestep - period) > 1e-9 * period
        if self.timestep_changed:
            m.opt.timestep = period / self.substeps
        self._seed = seed
        self._setup_joints()
        self.imu_body = self._body(description.sim.imu_body or "torso", fallback=1)
        self.base_body = 1
        self.ctrl = np.zeros(m.nu)
        self.sim_time = 0.0

    # ------------------------------------------------------------------------------------------ model facts
    def _setup_joints(self) -> None:
        mj, m = self.mj, self.model
        one_dof = (int(mj.mjtJoint.mjJNT_HINGE), int(mj.mjtJoint.mjJNT_SLIDE))
        self.joints = [(mj.mj_id2name(m, mj.mjtObj.mjOBJ_JOINT, j) or f"joint{j}", int(m.jnt_qposadr[j]),
                        int(m.jnt_dofadr[j])) for j in range(m.njnt) if int(m.jnt_type[j]) in one_dof]
        by_joint = {}
        for a in range(m.nu):
            j = int(m.actuator_trnid[a, 0])
            if int(m.actuator_trntype[a]) in (int(mj.mjtTrn.mjTRN_JOINT), int(mj.mjtTrn.mjTRN_JOINTINPARENT)):
                by_joint[mj.mj_id2name(m, mj.mjtObj.mjOBJ_JOINT, j)] = a
        names = {n for n, _, _ in self.joints}
        self.actuator_of = []
        for j in self.d.joints:
            if j.name not in by_joint:
                raise ValueError(f"robot description {self.d.source}: joint '{j.name}' drives no actuator of the "
                                 f"MuJoCo model of {self.d.sim.env or 'the env'} (actuated joints: "
                                 f"{', '.join(sorted(by_joint))})")
            self.actuator_of.append(by_joint[j.name])
        for p in self.d.passive_joints:
            if p not in names:
                raise ValueError(f"robot description {self.d.source}: passive joint '{p}' is not a joint of the model")
        if len(set(self.actuator_of)) != m.nu:
            raise ValueError(f"robot description {self.d.source}: commands {len(self.d.joints)} joints, the model "
                             f"has {m.nu} actuators (each must be commanded once)")
        self.ctrl_low, self.ctrl_high = m.actuator_ctrlrange[:, 0].copy(), m.actuator_ctrlrange[:, 1].copy()

    def _body(self, name: str, fallback: int) -> int:
        b = self.mj.mj_name2id(self.model, self.mj.mjtObj.mjOBJ_BODY, name)
        return int(b) if b >= 0 else fallback

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Every 1-dof joint, in the MODEL's order (the order this driver reports them in)."""
        return tuple(n for n, _, _ in self.joints)

    # ------------------------------------------------------------------------------------------ acting
    def reset(self, seed: int | None = None) -> None:
        """The env's initial state (its reset noise); the first reset uses the constructor's seed."""
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        self.env.reset(seed=seed)
        self.ctrl[:] = 0.0

    def apply(self, command: np.ndarray | None) -> None:
        """The controller's command (controller order, the model's control units; None = zero), clamped to the
        actuators' ctrlrange as motors saturate."""
        self.ctrl[:] = 0.0
        if command is not None:
            self.ctrl[self.actuator_of] = command
        np.clip(self.ctrl, self.ctrl_low, self.ctrl_high, out=self.ctrl)

    def step(self) -> None:
        """One control period of physics with the applied control."""
        self.data.ctrl[:] = self.ctrl
        self.mj.mj_step(self.model, self.data, nstep=self.substeps)
        self.sim_time += self.substeps * self.model.opt.timestep

    # ------------------------------------------------------------------------------------------ sensing
    def joint_state(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
        """(names, position, velocity, effort) of every 1-dof joint in model order; effort = the actuator force on
        the joint's dof (``qfrc_actuator``, N·m or N; 0 on passive joints)."""
        d = self.data
        q = np.array([d.qpos[a] for _, a, _ in self.joints])
        v = np.array([d.qvel[b] for _, _, b in self.joints])
        e = np.array([d.qfrc_actuator[b] for _, _, b in self.joints])
        return self.joint_names, q, v, e

    def imu(self) -> ImuReading:
        return imu_reading(self.model, self.data, self.imu_body)

    def odometry(self) -> OdometryReading:
        """What a state estimator would give for the base body (exact here; a real one drifts)."""
        mj, m, d, b = self.mj, self.model, self.data, self.base_body
        vel = np.zeros(6)
        mj.mj_objectVelocity(m, d, mj.mjtObj.mjOBJ_XBODY, b, vel, 1)
        w, x, y, z = d.xquat[b]
        return OdometryReading(d.xpos[b].copy(), np.array([x, y, z, w]), vel[3:].copy(), vel[:3].copy())

    def close(self) -> None:
        if self._owns_env:
            self.env.close()
