"""Tasks without ROS: the observation spec, the robot state's derived quantities, the plugin loader (built-in, entry
point, dotted path, bad plugins as one line), the TaskEngine's rules (by-name joint mapping, stale / NaN / misaligned
inputs never published, episodes, pause and resume), and humanoid_walk against gymnasium's Humanoid reward on the
same trajectory (the difference is exactly the terms a robot cannot measure)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from symphony_ros.robot.description import load_description
from symphony_ros.tasks import ObservationSpec, RobotState, Task, TaskError, available_tasks, load_task, task_class
from symphony_ros.tasks.engine import EngineSettings, TaskEngine

PEND = load_description("inverted_pendulum")
HUM = load_description("mujoco_humanoid")
PERIOD_NS = int(PEND.period_s * 1e9)


# ============================================================================================= state and spec
def _quat_about(axis: str, deg: float) -> np.ndarray:
    q = np.zeros(4)
    q["xyz".index(axis)] = math.sin(math.radians(deg) / 2)
    q[3] = math.cos(math.radians(deg) / 2)
    return q


def test_projected_gravity_and_tilt():
    s = RobotState(0, np.zeros(2), np.zeros(2), np.zeros(2))
    np.testing.assert_allclose(s.projected_gravity, [0, 0, -1], atol=1e-12)
    assert s.tilt_deg == pytest.approx(0.0, abs=1e-6)
    for axis in "xy":
        for deg in (10.0, 45.0, 90.0, 170.0):
            s.orientation_xyzw = _quat_about(axis, deg)
            assert s.tilt_deg == pytest.approx(deg)
    s.orientation_xyzw = _quat_about("z", 60.0)                       # yaw is not tilt
    assert s.tilt_deg == pytest.approx(0.0, abs=1e-6)
    s.orientation_xyzw = _quat_about("y", 90.0)                       # pitched forward: gravity along body -x
    np.testing.assert_allclose(s.projected_gravity, [1, 0, 0], atol=1e-12)


def test_observation_spec_sizes_and_blocks():
    spec = ObservationSpec(["joint_position", {"field": "joint_velocity", "scale": 0.5}, "previous_action"])
    assert spec.size(PEND) == 2 + 2 + 1 and not spec.needs_imu and spec.needs_command
    s = RobotState(0, np.array([0.1, -0.2]), np.array([1.0, 2.0]), np.zeros(2))
    np.testing.assert_allclose(spec.build(s, np.array([0.7])), [0.1, -0.2, 0.5, 1.0, 0.7])
    assert ObservationSpec(["projected_gravity", "angular_velocity"]).needs_imu
    assert ObservationSpec(["base_height"]).needs_odometry
    extra = ObservationSpec([{"field": "extra", "topic": "foot_contacts", "size": 2}])
    assert extra.size(PEND) == 2 and extra.extra_topics == {"foot_contacts": 2}


@pytest.mark.parametrize("entries, match", [
    ([], "non-empty list"),
    (["joint_angle"], "unknown field 'joint_angle'"),
    ([{"field": "joint_position", "scale": "x"}], "scale must be a finite number"),
    ([{"field": "joint_position", "offset": 1}], "unknown key"),
    ([{"field": "extra", "topic": "x"}], "needs 'topic' and 'size'"),
    ([42], "field name or a mapping"),
])
def test_bad_observation_specs(entries, match):
    with pytest.raises(TaskError, match=match):
        ObservationSpec(entries)


# ============================================================================================= plugins
class Crouch(Task):
    """A lab's own task, found by dotted path (the way an entry point names one)."""
    name = "crouch"
    params = {"target": 0.5}

    def reward(self, prev, state, command):
        return -abs(state.position[0] - self.p["target"])


class NanReward(Task):
    name = "nan_reward"

    def reward(self, prev, state, command):
        return float("nan")


class Raises(Task):
    name = "raises"

    def reward(self, prev, state, command):
        raise RuntimeError("sensor model broken")


class NotATask:
    pass


def test_loader_finds_builtin_entry_point_and_dotted_tasks():
    assert {"humanoid_stand", "humanoid_walk", "pendulum_balance"} <= set(available_tasks())
    assert task_class("pendulum_balance").name == "pendulum_balance"
    from importlib.metadata import entry_points
    eps = {ep.name: ep for ep in entry_points(group="symphony_ros.tasks")}
    if not eps:
        pytest.skip("symphony_ros is not pip-installed here (entry points come with the installed metadata)")
    assert eps["humanoid_walk"].load() is task_class("humanoid_walk")
    t = load_task("test_tasks:Crouch", PEND, {"target": 0.2})
    assert isinstance(t, Crouch) and t.p["target"] == 0.2


@pytest.mark.parametrize("name, params, match", [
    ("no_such_task", None, "unknown task 'no_such_task'; available: humanoid_stand"),
    ("no_such_module.tasks:Walk", None, "cannot import no_such_module.tasks:Walk .ModuleNotFoundError"),
    ("test_tasks:NotATask", None, "is not a subclass of symphony_ros.tasks.Task"),
    ("pendulum_balance", {"max_angel": 0.3}, "unknown parameter 'max_angel'"),
    ("pendulum_balance", {"max_angle": "wide"}, "parameter 'max_angle' must be like 0.2"),
    ("pendulum_balance", {"pole_joint": "elbow"}, "pole_joint 'elbow' is not a joint"),
    ("humanoid_stand", {"min_height": 3.0}, "min_height 3.0 must be < max_height"),
])
def test_bad_tasks_are_one_line(name, params, match):
    with pytest.raises(TaskError, match=match) as info:
        load_task(name, PEND if "pendulum" in name or ":" in name or "no_such" in name else HUM, params)
    assert "\n" not in str(info.value)


def test_engine_refuses_plugins_that_are_nan_or_raise_on_the_probe():
    with pytest.raises(TaskError, match="non-finite reward .nan. on a neutral probe state"):
        TaskEngine(PEND, NanReward(PEND))
    with pytest.raises(TaskError, match="failed on a neutral probe state .RuntimeError: sensor model broken"):
        TaskEngine(PEND, Raises(PEND))
    with pytest.raises(TaskError, match="robot 'inverted_pendulum' has no imu"):
        TaskEngine(PEND, load_task("pendulum_balance", PEND), ObservationSpec(["projected_gravity"]))
    with pytest.raises(TaskError, match="need odometry"):
        TaskEngine(PEND, load_task("humanoid_walk", PEND), ObservationSpec(["joint_position"]))


# ============================================================================================= the engine
class Feed:
    """A driver for the engine: joint_states in the MODEL's order with stamps one period apart."""

    def __init__(self, engine: TaskEngine) -> None:
        self.e, self.t, self.reports = engine, 0, []
        engine.report = lambda kind, text: self.reports.append((kind, text))

    def js(self, hinge=0.0, slider=0.0, names=("slider", "hinge"), gap=1, velocity=None, **kw):
        self.t += gap * PERIOD_NS
        pos = {"slider": slider, "hinge": hinge, "extra_wheel": 0.0}
        vel = velocity if velocity is not None else [0.0] * len(names)
        return self.e.on_joint_states(list(names), [pos[n] for n in names], vel, [], self.t, self.t * 1e-9, **kw)


def _engine(**settings) -> TaskEngine:
    return TaskEngine(PEND, load_task("pendulum_balance", PEND), settings=EngineSettings(**settings))


def test_engine_steps_maps_by_name_and_ends_episodes():
    e = _engine(episode_time_s=0.1)                                   # 5 steps at 50 Hz
    f = Feed(e)
    first = f.js(hinge=0.05, slider=0.3, names=("hinge", "slider"))   # any order: matched by name
    assert (first.episode, first.step, first.reward) == (0, 0, 0.0)
    np.testing.assert_allclose(first.observation, [0.3, 0.05, 0.0, 0.0])   # slider, hinge (description order)
    steps = [f.js() for _ in range(4)]
    assert [s.step for s in steps] == [1, 2, 3, 4] and [s.reward for s in steps] == [1.0] * 4
    assert steps[-1].truncated and not steps[-1].terminated and steps[-1].why == "time limit"
    assert f.js() is None and e.n.paused_inputs == 1                  # paused: nothing published
    assert e.resume() and not e.resume()
    s0 = f.js()
    assert (s0.episode, s0.step) == (1, 0)
    fell = f.js(hinge=0.5)
    assert fell.terminated and fell.reward == 0.0 and "pole beyond" in fell.why
    assert e.n.returns == [4.0, 0.0] and f.js() is None


def test_engine_never_publishes_untrustworthy_inputs():
    e = _engine()
    f = Feed(e)
    assert f.js() is not None
    assert f.js(names=("slider",)) is None                            # missing joint
    assert f.js(names=("slider", "hinge", "extra_wheel")) is None     # extra joint
    assert f.js(names=("slider",)) is None                            # same set again: reported once only
    assert e.n.missing_joints == 2 and e.n.extra_joints == 1
    assert len([k for k, _ in f.reports if k == "joints"]) == 2
    assert "missing hinge" in f.reports[0][1] and "extra extra_wheel" in f.reports[1][1]
    assert f.js(hinge=float("nan")) is None                           # NaN
    assert f.js(velocity=[0.0]) is None                               # sizes do not match the names
    assert e.n.bad_joint_states == 2
    ok = f.js()
    assert ok is not None and ok.step == 6                            # refused periods still count: no chain across
    assert e.n.skipped_periods == 5
    gap = f.js(gap=4)                                                 # the driver's stamps show 3 lost periods
    assert gap.step == 10 and e.n.skipped_periods == 8
    t = f.t
    assert e.on_joint_states(["slider", "hinge"], [0, 0], [0, 0], [], t, 0.0) is None   # not newer: duplicate
    assert e.n.duplicates == 1


def test_engine_stale_and_bad_imu():
    spec = ObservationSpec(["joint_position", "projected_gravity"])
    e = TaskEngine(HUM, load_task("humanoid_stand", HUM), spec)
    names = list(HUM.joint_names)

    def js(t_s):
        return e.on_joint_states(names, [0.0] * 17, [0.0] * 17, [], int(t_s * 1e9), t_s)

    assert js(1.0) is None and e.n.stale_imu == 1                    # never received
    e.on_imu([0, 0, 0, 1], [0, 0, 0], [0, 0, 9.81], now=1.0)
    out = js(1.01)
    assert out is not None and out.observation.shape == (17 + 3,)
    np.testing.assert_allclose(out.observation[-3:], [0, 0, -1], atol=1e-9)
    assert js(1.01 + 2 * HUM.period_s) is None and e.n.stale_imu == 2   # older than one period
    e.on_imu([0, 0, 0, 0], [0, 0, 0], [0, 0, 9.81], now=2.0)           # zero quaternion: refused, kept the old one
    e.on_imu([0, 0, 0, 1], [math.nan, 0, 0], [0, 0, 9.81], now=2.0)
    assert e.n.bad_imu == 2
    e.on_imu(_quat_about("x", 80.0), [0, 0, 0], [0, 0, 9.81], now=2.0)
    fell = js(2.0)
    assert fell.terminated and "tilt 80" in fell.why


def test_engine_runtime_plugin_errors_are_counted_not_published():
    class Flaky(Task):
        name = "flaky"
        calls = 0

        def reward(self, prev, state, command):
            Flaky.calls += 1
            if Flaky.calls == 3:
                raise ZeroDivisionError("boom")
            return float("nan") if Flaky.calls == 4 else 1.0

    e = TaskEngine(PEND, Flaky(PEND))
    f = Feed(e)
    outs = [f.js() for _ in range(5)]
    assert [o is not None for o in outs] == [True, True, False, False, True]
    assert e.n.task_errors == 2 and outs[4].step == 4


# ============================================================================================= vs gymnasium
def test_humanoid_walk_reward_matches_gymnasium_but_for_what_a_robot_cannot_measure():
    """Same trajectory (gymnasium's own step), two rewards: ours from the driver's view (odometry of the torso,
    the command) and gymnasium's. Their difference is exactly 1.25·(v_torso − v_com) + gymnasium's contact cost."""
    from symphony_ros.envs.bridge import MujocoBridge
    from symphony_ros.robot.mujoco_robot import MujocoRobot
    from symphony_ros.tasks.base import Odometry
    task = load_task("humanoid_walk", HUM)
    bridge = MujocoBridge("Humanoid-v5", action_mode="rescale", seed=5)
    robot = MujocoRobot(HUM, env=bridge.env)
    rng = np.random.default_rng(5)
    try:
        bridge.reset(seed=5)
        env = bridge.env
        checked = 0
        for _ in range(60):
            a = rng.uniform(-1, 1, 17)
            command = bridge.mapping(a)                                # what the controller would receive
            _, r_gym, terminated, _, info = env.step(command)
            o = robot.odometry()
            st = RobotState(0, np.zeros(17), np.zeros(17), np.zeros(17),
                            odometry=Odometry(o.position, o.orientation_xyzw, o.linear_velocity, o.angular_velocity))
            ours = task.reward(st, st, command)
            vx_torso = float(st.base_linear_velocity[0])
            expected = 1.25 * (vx_torso - info["x_velocity"]) - info["reward_contact"]
            assert ours - r_gym == pytest.approx(expected, abs=1e-9)
            assert task.fallen(st)[0] == terminated                    # the same healthy range
            checked += 1
            if terminated:
                break
        assert checked >= 10
    finally:
        bridge.close()
