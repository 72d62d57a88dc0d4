"""Robot descriptions (config/robots/*.yaml): the shipped ones, every validation error as one line naming the field,
and the simulated robot built from a description (joints mapped by NAME between the model and the controller)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from symphony_ros.robot.description import (DescriptionError, description_from_dict, load_description,
                                            robots_dir)

PENDULUM = yaml.safe_load((robots_dir() / "inverted_pendulum.yaml").read_text())


def test_shipped_descriptions_load():
    h = load_description("mujoco_humanoid")
    assert h.act_dim == 17 and h.command_interface == "effort" and h.imu is not None
    assert h.joint_names[:3] == ("abdomen_y", "abdomen_z", "abdomen_x")          # actuator (controller) order
    assert h.command_lower == [-0.4] * 17 and h.command_upper == [0.4] * 17 and h.safe_command == [0.0] * 17
    assert h.velocity_limits is None                                            # effort interface: no rate limit
    p = load_description("inverted_pendulum")
    assert p.joint_names == ("slider",) and p.passive_joints == ("hinge",) and p.observed_joints == ("slider", "hinge")
    assert p.imu is None and p.recovery_service == "mujoco_driver/reset"
    t = load_description(robots_dir() / "template.yaml")
    assert t.command_interface == "position" and t.velocity_limits == [6.0, 8.0, 6.0, 8.0]
    ap = t.actor_parameters()
    assert ap["joint_lower"] == [-1.57, 0.0, -1.57, 0.0] and ap["safe_command"] == [-0.2, 0.4, -0.2, 0.4]
    assert ap["velocity_limits"] == [6.0, 8.0, 6.0, 8.0] and ap["max_tilt_deg"] == 45.0
    assert ap["joint_names"] == ["left_hip_pitch", "left_knee", "right_hip_pitch", "right_knee"]


def _bad(mutate):
    d = copy.deepcopy(PENDULUM)
    mutate(d)
    return d


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.pop("joints"), "joints must be a non-empty list"),
    (lambda d: d.update(joints=[]), "joints must be a non-empty list"),
    (lambda d: d["joints"].append(dict(d["joints"][0])), "joint 'slider' appears twice"),
    (lambda d: d.update(passive_joints=["slider"]), "appears twice .in joints and passive_joints"),
    (lambda d: d["joints"][0].update(position=[1.0, -1.0]), "'slider': position limits in the wrong order"),
    (lambda d: d["joints"][0].update(position=[0.5]), "position must be .lower, upper."),
    (lambda d: d.update(command_interface="torque"), "command_interface 'torque' is not one of position, effort"),
    (lambda d: d["joints"][0].pop("effort"), "needs an effort limit"),
    (lambda d: d["joints"][0].update(effort=-3.0), "effort limit must be > 0"),
    (lambda d: d["joints"][0].update(velocity=0.0), "velocity limit must be > 0"),
    (lambda d: d["joints"][0].update(safe=9.0), "safe value 9.0 is outside the command limits"),
    (lambda d: d["joints"][0].update(gear=2), "unknown field.s. gear"),
    (lambda d: d.update(controler_topic="x"), "unknown field.s. controler_topic"),
    (lambda d: d.update(controller_topic="bad topic!"), "controller_topic 'bad topic!' is not a valid ROS 2 name"),
    (lambda d: d.update(control_rate_hz=0), "control_rate_hz must be > 0"),
    (lambda d: d.update(control_rate_hz="fast"), "control_rate_hz must be a finite number"),
    (lambda d: d.update(command_mode="magic"), "command_mode 'magic'"),
    (lambda d: d.update(max_tilt_deg=200.0), "max_tilt_deg must be in"),
    (lambda d: d.update(imu={"topic": "imu", "rate": 100}), "imu: unknown field"),
])
def test_bad_descriptions_are_one_line_naming_the_field(mutate, match):
    with pytest.raises(DescriptionError, match=match) as info:
        description_from_dict(_bad(mutate), source="robot.yaml")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("robot description robot.yaml: ")


def test_bad_files(tmp_path):
    (tmp_path / "broken.yaml").write_text("joints: [\n")
    with pytest.raises(DescriptionError, match="not valid YAML"):
        load_description(tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(DescriptionError, match="must be a mapping"):
        load_description(tmp_path / "list.yaml")
    with pytest.raises(DescriptionError, match="no such file and not a shipped description .inverted_pendulum"):
        load_description("no_such_robot")


# ============================================================================================= the simulated robot
def test_mujoco_robot_maps_commands_by_name_and_reports_in_model_order():
    from symphony_ros.robot.mujoco_robot import MujocoRobot
    d = load_description("mujoco_humanoid")
    r = MujocoRobot(d, seed=3)
    try:
        r.reset()
        names, q, v, e = r.joint_state()
        assert names[:3] == ("abdomen_z", "abdomen_y", "abdomen_x")        # the model's joint order
        assert set(names) == set(d.joint_names) and q.shape == v.shape == e.shape == (17,)
        assert r.substeps == 5 and not r.timestep_changed                # 66.67 Hz = 5 x 0.003 s
        cmd = np.zeros(17)
        cmd[d.joint_names.index("abdomen_z")] = 0.3                       # controller index 1 drives abdomen_z
        cmd[d.joint_names.index("right_knee")] = 9.0                      # beyond ctrlrange: the motor saturates
        r.apply(cmd)
        r.step()
        _, _, _, e = r.joint_state()
        gear = dict(zip(names, [0.0] * 17))
        m = r.model
        import mujoco
        for a in range(m.nu):
            gear[mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, int(m.actuator_trnid[a, 0]))] = m.actuator_gear[a, 0]
        assert e[names.index("abdomen_z")] == pytest.approx(0.3 * gear["abdomen_z"])
        assert e[names.index("right_knee")] == pytest.approx(0.4 * gear["right_knee"])
        assert e[names.index("abdomen_y")] == 0.0
        imu, odom = r.imu(), r.odometry()
        assert np.linalg.norm(imu.orientation_xyzw) == pytest.approx(1.0) and odom.position[2] > 1.0
    finally:
        r.close()


def test_mujoco_robot_passive_joint_and_timestep():
    from symphony_ros.robot.mujoco_robot import MujocoRobot
    d = load_description("inverted_pendulum")
    r = MujocoRobot(d)
    try:
        r.reset()
        assert r.joint_names == ("slider", "hinge") and r.substeps == 1
        r.apply(np.array([3.0]))
        for _ in range(10):
            r.step()
        names, q, v, e = r.joint_state()
        assert q[0] > 0 and v[0] > 0 and e[1] == 0.0                      # pushed right; the hinge is passive
        assert r.sim_time == pytest.approx(10 * 0.02)
    finally:
        r.close()
    fast = description_from_dict(dict(PENDULUM, control_rate_hz=125.0), source="fast")
    r = MujocoRobot(fast)
    try:
        assert r.substeps == 1 and r.timestep_changed and r.model.opt.timestep == pytest.approx(0.008)
    finally:
        r.close()


def test_mujoco_robot_refuses_a_description_that_does_not_fit_the_model():
    from symphony_ros.robot.mujoco_robot import MujocoRobot
    wrong = description_from_dict(_bad(lambda d: d["joints"][0].update(name="cart")), source="wrong.yaml")
    with pytest.raises(ValueError, match="joint 'cart' drives no actuator"):
        MujocoRobot(wrong)
    nosim = description_from_dict(_bad(lambda d: d.pop("sim")), source="nosim.yaml")
    with pytest.raises(ValueError, match="sim.env is not set"):
        MujocoRobot(nosim)
