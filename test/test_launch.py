"""How users meet the package: the real `ros2 launch`, `ros2 run`, `ros2 lifecycle` and `ros2 param` over real DDS.

* launch arguments are checked before any node starts (one line, exit non-zero);
* Ctrl-C of `ros2 launch` (SIGINT to the whole process group, as a terminal sends it, while launch forwards its own:
  every node gets two) stops every node cleanly: no traceback, every process "finished cleanly", the learner's
  checkpoint written, the recorder's bag closed, no temporary files left;
* `ros2 lifecycle set /actor deactivate` gives the safe command; `ros2 param set` of a bad value is refused with the
  reason; a node that cannot start exits 1 with one line.

These need ROS 2's launch tools (on a ROS 2 install, or from ../shared/ros2_launch via the test command) and the
package installed into this interpreter's prefix (tools/setup.sh); otherwise they skip and say why.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROS2 = shutil.which("ros2", path=str(BIN) + os.pathsep + os.environ.get("PATH", ""))

pytest.importorskip("launch_ros", reason="ROS 2's launch (launch_ros) is not installed: on a pip-only machine the "
                                         "test command installs it from ../shared/ros2_launch when that exists")
if ROS2 is None:
    pytest.skip("the ros2 command line (ros2cli) is not installed", allow_module_level=True)
if not (Path(sys.prefix) / "share" / "symphony_ros" / "launch" / "train_sim.launch.py").is_file():
    pytest.skip(f"symphony_ros is not installed into {sys.prefix} (tools/setup.sh does it): ros2 launch cannot find "
                "it", allow_module_level=True)
rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from symphony_ros_interfaces.msg import LearnerStatus  # noqa: E402

from symphony_ros import contract as ct  # noqa: E402
from symphony_ros.nodes.common import qos_profile as qos  # noqa: E402


def _env() -> dict[str, str]:
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
               PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("PYTHONPATH", None)   # the installed package, as a user runs it
    return env


def _tiny_preset(path: Path) -> Path:
    text = (ROOT / "config" / "presets" / "s3.yaml").read_text()
    for key, value in dict(preset="custom", hidden_dim=32, heads_per_critic=8, batch_size=24, n_exp=150,
                           buffer_times=2, eval_episodes=0).items():
        text = "\n".join(f"{key}: {value}" if line.startswith(f"{key}:") else line for line in text.splitlines())
    path.write_text(text + "\n")
    return path


class Probe:
    """A test-side node (own context) on the graph's topics."""

    def __init__(self, name: str = "launch_probe") -> None:
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node(name, context=self.ctx)
        self.status: list = []
        self.commands: list = []
        self.node.create_subscription(LearnerStatus, "/" + ct.LEARNER_STATUS.name, self.status.append,
                                      qos(ct.LEARNER_STATUS))
        self.node.create_subscription(Float64MultiArray, "/" + ct.JOINT_COMMANDS.name,
                                      lambda m: self.commands.append(list(m.data)), qos(ct.JOINT_COMMANDS))
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)

    def spin_until(self, cond, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            self.ex.spin_once(timeout_sec=0.05)
        return bool(cond())

    def close(self) -> None:
        self.ex.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


@pytest.fixture
def probe():
    p = Probe()
    yield p
    p.close()


def _ros2(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([ROS2, *args], capture_output=True, text=True, env=_env(), timeout=timeout, cwd="/")


# ---------------------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("arg, says", [("mode:=foo", "'mode'"), ("max_steps:=-5", "'max_steps'"),
                                       ("device:=banana", "'device'"), ("robots:=0", "'robots'"),
                                       ("record:=maybe", "'record'")])
def test_launch_refuses_bad_arguments_before_any_node_starts(arg, says):
    r = _ros2("launch", "symphony_ros", "train_sim.launch.py", arg)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and says in out, out
    assert "Traceback" not in out and "process started" not in out


# ---------------------------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_of_ros2_launch_stops_every_node_cleanly_with_a_checkpoint(tmp_path, probe):
    ckpt, bag = tmp_path / "ckpt", tmp_path / "bag"
    log = open(tmp_path / "launch.log", "w")
    proc = subprocess.Popen([ROS2, "launch", "symphony_ros", "train_sim.launch.py",
                             f"preset:={_tiny_preset(tmp_path / 'tiny.yaml')}", "env:=Hopper-v5", "device:=cpu",
                             f"checkpoint_dir:={ckpt}", "record:=true", f"bag_dir:={bag}"],
                            stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=str(tmp_path),
                            start_new_session=True)     # its own process group, as a terminal's foreground job
    try:
        learning = lambda: bool(probe.status) and probe.status[-1].learning and probe.status[-1].updates > 30
        assert probe.spin_until(learning, timeout=240), (tmp_path / "launch.log").read_text()[-3000:]
        seen = probe.status[-1].transitions_stored
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)          # a terminal's Ctrl-C: every process of the group ...
        rc = proc.wait(timeout=120)                  # ... and launch forwards SIGINT to each node once more
        stop_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    out = (tmp_path / "launch.log").read_text()
    print(f"\nros2 launch stopped {stop_s:.1f} s after Ctrl-C")
    assert rc == 0, out[-3000:]
    assert "Traceback" not in out and "terminate called" not in out and "KeyboardInterrupt" not in out, out[-3000:]
    for node in ("sim_bridge-1", "actor-2", "learner-3", "recorder-4"):
        assert f"[{node}]: process has finished cleanly" in out, out[-3000:]
    # launch forwards a second SIGINT to each node; when it arrives before the node is gone it is absorbed ("SIGINT
    # again: already stopping"): either way no traceback and a clean finish (asserted above)
    assert "escalating to SIGTERM" not in out and "SIGKILL" not in out
    from symphony_ros.core.checkpoint import AgentCheckpoints, load_checkpoint
    latest = AgentCheckpoints(ckpt).latest()
    assert latest is not None and load_checkpoint(latest)["learner"]["stored"] >= seen   # state kept at the stop
    assert not [p for p in ckpt.rglob("*") if p.name.endswith(".tmp")]
    from symphony_ros.bags.reader import BagReader
    r = BagReader(bag)                                # closed: metadata written, no damage
    assert not r.damage and (bag / "metadata.yaml").is_file() and r.topics["/transitions"].count > 0


# ---------------------------------------------------------------------------------------------- lifecycle, params
def test_lifecycle_deactivate_sends_the_safe_command_and_bad_params_are_refused(tmp_path, probe):
    proc = subprocess.Popen([ROS2, "run", "symphony_ros", "actor", "--ros-args", "-p", "autostart:=false",
                             "-p", "joint_lower:=[-0.4,-0.4]", "-p", "joint_upper:=[0.4,0.4]",
                             "-p", "safe_command:=[0.1,-0.2]", "-p", "obs_timeout_s:=60.0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
                            start_new_session=True)
    try:
        for transition in ("configure", "activate"):
            r = _ros2("lifecycle", "set", "--no-daemon", "--spin-time", "5", "/actor", transition)
            assert r.returncode == 0 and "successful" in r.stdout.lower(), r.stdout + r.stderr
        assert probe.spin_until(lambda: probe.node.count_publishers("/" + ct.JOINT_COMMANDS.name) == 1, 30)
        r = _ros2("param", "set", "--no-daemon", "--spin-time", "5", "/actor", "joint_lower", "[0.0]")
        assert "failed" in (r.stdout + r.stderr).lower() and "joint_lower" in r.stdout + r.stderr, r.stdout
        r = _ros2("param", "set", "--no-daemon", "--spin-time", "5", "/actor", "device", "banana")
        assert "failed" in (r.stdout + r.stderr).lower() and "banana" in r.stdout + r.stderr, r.stdout
        r = _ros2("param", "set", "--no-daemon", "--spin-time", "5", "/actor", "symphony.gamma", "2.0")
        assert "failed" in (r.stdout + r.stderr).lower() and "gamma" in r.stdout + r.stderr, r.stdout
        r = _ros2("lifecycle", "set", "--no-daemon", "--spin-time", "5", "/actor", "deactivate")
        assert r.returncode == 0, r.stdout + r.stderr
        assert probe.spin_until(lambda: [0.1, -0.2] in probe.commands, 20), probe.commands
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in out, out


@pytest.mark.parametrize("node, params, says", [
    ("learner", ["-p", "obs_dim:=-3"], "obs_dim"),
    ("learner", ["-p", "obs_dim:=abc"], "obs_dim"),
    ("learner", ["-p", "obs_dim:=0", "-p", "act_dim:=0"], "configure failed"),
    ("actor", ["-p", "obs_timeout_s:=-1.0"], "obs_timeout_s"),
    ("actor", ["-p", "mode:=sometimes"], "mode"),
    ("sim_bridge", ["-p", "env:=NoSuchEnv-v0"], "NoSuchEnv"),
])
def test_a_node_that_cannot_start_exits_1_with_one_line(node, params, says):
    r = _ros2("run", "symphony_ros", node, "--ros-args", *params, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and says in out and "Traceback" not in out, out
    assert np.sum(["cannot start" in line for line in out.splitlines()]) == 1, out


# ---------------------------------------------------------------------------------------------- the robot graph
@pytest.mark.parametrize("launch_file, args, says", [
    ("train_robot.launch.py", [], "'robot' is required"),
    ("train_robot.launch.py", ["robot:=no_such_robot"], "no such file and not a shipped description"),
    ("train_robot.launch.py", ["robot:=inverted_pendulum", "task:=no_such_task"], "unknown task 'no_such_task'"),
    ("train_robot.launch.py", ["robot:=inverted_pendulum", "learner:=cloud"], "'learner'"),
    ("deploy.launch.py", ["robot:=inverted_pendulum"], "'policy_file' is required"),
])
def test_robot_launch_files_refuse_bad_arguments(launch_file, args, says):
    r = _ros2("launch", "symphony_ros", launch_file, *args)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and says in out, out
    assert "Traceback" not in out and "process started" not in out


def _robot_probe(probe: Probe) -> tuple[list, list]:
    from symphony_ros_interfaces.msg import EnvStep
    from symphony_ros.robot.description import load_description
    steps, cmds = [], []
    d = load_description("inverted_pendulum")
    probe.node.create_subscription(EnvStep, "/" + ct.ENV_STEP.name, steps.append, qos(ct.ENV_STEP))
    probe.node.create_subscription(Float64MultiArray, "/" + d.controller_topic, lambda m: cmds.append(list(m.data)),
                                   qos(ct.JOINT_COMMANDS))
    return steps, cmds


def _stop_launch(proc: subprocess.Popen) -> int:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_train_robot_launch_runs_the_robot_graph_on_the_simulated_driver(tmp_path, probe):
    """`ros2 launch symphony_ros train_robot.launch.py robot:=inverted_pendulum sim:=true`: driver, task, actor and
    learner start; env steps flow and every command on the controller topic is inside the description's limits;
    episodes end and restart through the driver's reset; Ctrl-C stops all four cleanly with a checkpoint."""
    steps, cmds = _robot_probe(probe)
    ckpt = tmp_path / "ckpt"
    log = open(tmp_path / "launch.log", "w")
    proc = subprocess.Popen([ROS2, "launch", "symphony_ros", "train_robot.launch.py", "robot:=inverted_pendulum",
                             "task:=pendulum_balance", "sim:=true", "device:=cpu", f"checkpoint_dir:={ckpt}",
                             f"preset:={_tiny_preset(tmp_path / 'tiny.yaml')}", "recovery_delay_s:=0.1"],
                            stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=str(tmp_path),
                            start_new_session=True)
    try:
        ok = probe.spin_until(lambda: len({m.episode for m in steps}) >= 3 and len(cmds) > 20 and bool(probe.status)
                              and probe.status[-1].transitions_stored > 0, timeout=180)   # the learner is storing
        assert ok, (tmp_path / "launch.log").read_text()[-3000:]
        rc = _stop_launch(proc)
    finally:
        log.close()
    out = (tmp_path / "launch.log").read_text()
    assert rc == 0 and "Traceback" not in out, out[-3000:]
    for node in ("mujoco_driver-1", "task-2", "actor-3", "learner-4"):
        assert f"[{node}]: process has finished cleanly" in out, out[-3000:]
    assert all(len(c) == 1 and -3.0 <= c[0] <= 3.0 for c in cmds)
    assert any(m.terminated for m in steps) and {m.step for m in steps if m.episode == steps[-1].episode} >= {0}
    from symphony_ros.core.checkpoint import AgentCheckpoints
    assert AgentCheckpoints(ckpt).latest() is not None


def test_deploy_launch_runs_an_onnx_export_without_a_learner(tmp_path, probe):
    """`ros2 launch symphony_ros deploy.launch.py ... policy_file:=actor.onnx sim:=true`: no learner, the actor runs
    the export noise-free, commands flow to the simulated driver."""
    from symphony_ros.core.agent import SymphonyAgent
    from symphony_ros.core.checkpoint import save_checkpoint
    from symphony_ros.core.config import load_preset
    from symphony_ros.core.export import export_policy
    cfg = load_preset("ed", dict(hidden_dim=16, heads_per_critic=4, batch_size=12, n_exp=100, buffer_times=1))
    agent = SymphonyAgent(4, 1, cfg, device="cpu", seed=0)
    agent.updates = 7
    save_checkpoint(tmp_path / "ckpt.pt", dict(kind="training", agent=agent.state_dict()))
    onnx = export_policy(tmp_path / "ckpt.pt", tmp_path / "actor.onnx", "onnx").path
    steps, cmds = _robot_probe(probe)
    log = open(tmp_path / "launch.log", "w")
    proc = subprocess.Popen([ROS2, "launch", "symphony_ros", "deploy.launch.py", "robot:=inverted_pendulum",
                             "task:=pendulum_balance", "sim:=true", f"policy_file:={onnx}", "recovery_delay_s:=0.1"],
                            stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=str(tmp_path),
                            start_new_session=True)
    try:
        assert probe.spin_until(lambda: len(cmds) > 20 and len({m.episode for m in steps}) >= 2, timeout=120), \
            (tmp_path / "launch.log").read_text()[-3000:]
        rc = _stop_launch(proc)
    finally:
        log.close()
    out = (tmp_path / "launch.log").read_text()
    assert rc == 0 and "Traceback" not in out, out[-3000:]
    assert "learner" not in out.split("process started")[0] and "[learner" not in out
    assert "OnnxPolicy" in out and "deploy: noise-free, no learner" in out
    assert all(len(c) == 1 and -3.0 <= c[0] <= 3.0 for c in cmds)
