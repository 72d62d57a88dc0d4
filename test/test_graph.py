"""The ROS 2 training graph over real DDS (issue: ROS graph, tests a-f).

(a) in-process lockstep graph: updates == G × (steps − N_exp); (b) each node in its own process; (c) malformed
input everywhere; (d) learner SIGKILL + restart resumes while the actor holds safe commands; (e) two namespaced sims
feed one learner. The launch file itself runs in test_launch.py (the real `ros2 launch`).
"""
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip extra 'ros')")
pytest.importorskip("symphony_ros_interfaces.msg",
                    reason="symphony_ros_interfaces not built (pip install ./interfaces)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from symphony_ros_interfaces.msg import EnvStep, LearnerStatus, PolicyWeights, Transition  # noqa: E402

from symphony_ros.graph import build_graph  # noqa: E402
from symphony_ros import contract as ct  # noqa: E402
from symphony_ros.nodes.common import qos_profile as qos  # noqa: E402
from symphony_ros.training.embedded import EmbeddedGraph  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(hidden_dim=16, heads_per_critic=4, batch_size=12, n_exp=60, buffer_times=2, eval_episodes=0)
ENV = "Humanoid-v5"


def _spin_until(graph_or_exec, cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    spin = graph_or_exec.spin_once
    while time.monotonic() < deadline:
        if cond():
            return True
        try:
            spin(0.01)
        except TypeError:
            spin(timeout_sec=0.01)
    return cond()


@pytest.fixture
def graph_factory(tmp_path):
    made = []

    def make(**kw):
        args = dict(preset="s3", env=ENV, out_dir=tmp_path / f"g{len(made)}", device="cpu", mode="lockstep",
                    overrides=dict(TINY))
        args.update(kw)
        g = EmbeddedGraph(**args)
        made.append(g)
        return g
    yield make
    for g in made:
        g.shutdown()


def test_a_in_process_lockstep_graph_does_exactly_G_updates_per_learning_step(graph_factory):
    g = graph_factory(max_steps=150)
    learner = g.learner.learner
    assert _spin_until(g, lambda: learner.done, timeout=120), f"stored {learner.stored}"
    assert learner.stored == 150 and learner.rejected == 0
    assert learner.updates == 3 * (learner.stored - TINY["n_exp"])
    actor = g.actors[0]
    assert actor.transitions_sent == learner.received == 150
    assert actor.safe_commands_sent == 0 and actor.bad_actions == 0


class _Probe:
    """Test-side node on the contract topics (a mock of nothing: it is just another participant)."""

    def __init__(self, context, ns=""):
        self.node = rclpy.create_node("probe", namespace=ns or None, context=context)
        self.commands, self.weights_versions, self.status, self.transitions = [], [], [], 0
        self.node.create_subscription(Float64MultiArray, ct.JOINT_COMMANDS.name,
                                      lambda m: self.commands.append(np.array(m.data)), qos(ct.JOINT_COMMANDS))
        self.node.create_subscription(PolicyWeights, "/" + ct.POLICY_WEIGHTS.name,
                                      lambda m: self.weights_versions.append(m.version), qos(ct.POLICY_WEIGHTS))
        self.node.create_subscription(LearnerStatus, "/" + ct.LEARNER_STATUS.name,
                                      lambda m: self.status.append(m), qos(ct.LEARNER_STATUS))
        self.node.create_subscription(Transition, "/" + ct.TRANSITIONS.name, self._on_tr, qos(ct.TRANSITIONS))
        self.env_pub = self.node.create_publisher(EnvStep, ct.ENV_STEP.name, qos(ct.ENV_STEP))
        self.tr_pub = self.node.create_publisher(Transition, "/" + ct.TRANSITIONS.name, qos(ct.TRANSITIONS))
        self.cmd_pub = self.node.create_publisher(Float64MultiArray, ct.JOINT_COMMANDS.name, qos(ct.JOINT_COMMANDS))

    def _on_tr(self, m):
        self.transitions += 1


def _node_cmd(spec):
    return [sys.executable, "-m", f"symphony_ros.nodes.{spec.executable}", *spec.ros_args(),
            "-r", f"__ns:={spec.namespace or '/'}"]


def _start(spec, log_dir):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    log = open(log_dir / f"{spec.executable}.log", "ab")
    return subprocess.Popen(_node_cmd(spec), env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


@contextlib.contextmanager
def _process_graph(specs, log_dir):
    """Each node of ``specs`` in its own process, plus a probe node (own context) on an executor in this process.
    Yields (procs by executable, probe, executor); stops the processes (SIGINT) and the context on exit."""
    procs = {s.executable: _start(s, log_dir) for s in specs if s.executable != "learner"}
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    ex = None
    try:
        probe = _Probe(ctx)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(probe.node)
        # A volatile subscriber misses what is published before discovery matched it (Jazzy's Fast DDS: up to ~3 s).
        # The learner's first weights start the transition stream: start it once the probe sees the actor's publisher.
        assert _spin_until(ex, lambda: probe.node.count_publishers("/" + ct.TRANSITIONS.name) >= 2, timeout=60), \
            "the probe never discovered the actor's transitions publisher"
        procs.update({s.executable: _start(s, log_dir) for s in specs if s.executable == "learner"})
        yield procs, probe, ex
    finally:
        if ex is not None:
            ex.shutdown()
        _stop(list(procs.values()))
        rclpy.try_shutdown(context=ctx)


LIMIT = 0.4   # Humanoid's ctrlrange, given to the actor as its joint limits


def _limits(params, act_dim=17):
    params.update({"joint_lower": [-LIMIT] * act_dim, "joint_upper": [LIMIT] * act_dim})


def test_b_each_node_in_its_own_process(tmp_path):
    specs = build_graph(preset="s3", env=ENV, device="cpu", mode="lockstep", max_steps=0,
                        checkpoint_dir=str(tmp_path / "ckpt"), overrides=dict(TINY))
    for s in specs:
        if s.executable == "actor":
            _limits(s.parameters)
    with _process_graph(specs, tmp_path) as (procs, probe, ex):
        ok = _spin_until(ex, lambda: probe.status and probe.status[-1].transitions_stored >= 200, timeout=180)
        logs = {p: (tmp_path / f"{p}.log").read_text()[-2000:] for p in ("sim_bridge", "actor", "learner")}
        assert ok, f"graph did not finish: {probe.status[-1] if probe.status else None}\n{logs}"
        _stop([procs["sim_bridge"]])                         # no more steps: the transition stream ends
        _spin_until(ex, lambda: False, timeout=3.0)          # let the last transitions and status arrive
        last = probe.status[-1]
        assert last.transitions_received == last.transitions_stored == probe.transitions >= 200
        assert last.transitions_rejected == 0
        assert last.updates == 3 * (last.transitions_stored - TINY["n_exp"])      # lockstep: exactly G each
        versions = probe.weights_versions
        assert versions and versions == sorted(versions) and versions[-1] >= last.updates - 3
        assert len(probe.commands) >= 200
        cmds = np.stack(probe.commands)
        assert np.isfinite(cmds).all() and np.abs(cmds).max() <= LIMIT + 1e-12 and cmds.shape[1] == 17
    assert all(p.returncode == 0 for p in procs.values()), {k: p.returncode for k, p in procs.items()}


def test_c_malformed_inputs_are_counted_and_never_stored(graph_factory):
    g = graph_factory(max_steps=0)
    probe = _Probe(g.context)
    g.executor.add_node(probe.node)
    learner, actor, bridge = g.learner.learner, g.actors[0], g.bridges[0]
    assert _spin_until(g, lambda: learner.stored >= 80, timeout=120)
    bad_env = [EnvStep(episode=999, step=1, observation=[float("nan")] * 348),
               EnvStep(episode=999, step=2, observation=[1.0] * 5),
               EnvStep(episode=999, step=3, observation=[1.0] * 348, reward=float("inf"))]
    bad_tr = [Transition(observation=[float("nan")] * 348, action=[0.0] * 17, next_observation=[0.0] * 348),
              Transition(observation=[0.0] * 3, action=[0.0] * 17, next_observation=[0.0] * 348),
              Transition(observation=[0.0] * 348, action=[0.0] * 4, next_observation=[0.0] * 348),
              Transition(observation=[0.0] * 348, action=[0.0] * 17, next_observation=[0.0] * 348,
                         reward=float("nan"))]
    bad_cmd = [Float64MultiArray(data=[float("nan")] * 17), Float64MultiArray(data=[0.0] * 3)]
    before = (actor.bad_env_steps, learner.rejected, bridge.bad_commands)
    for m in bad_env:
        probe.env_pub.publish(m)
    for m in bad_tr:
        probe.tr_pub.publish(m)
    for m in bad_cmd:
        probe.cmd_pub.publish(m)
    assert _spin_until(g, lambda: actor.bad_env_steps >= before[0] + 3 and learner.rejected >= before[1] + 4
                       and bridge.bad_commands >= before[2] + 2, timeout=30), \
        (actor.bad_env_steps, learner.rejected, bridge.bad_commands)
    stored = learner.stored
    assert _spin_until(g, lambda: learner.stored >= stored + 20, timeout=60)      # still training afterwards
    with learner.lock:
        buf = learner.agent.buffer
        assert bool(np.isfinite(buf.packed(slice(0, buf.length)).numpy()).all())
    injected = lambda m: m.size == 3 or bool(np.isnan(m).all())      # the probe hears its own bad commands too
    from_actor = [m for m in probe.commands if not injected(m)]
    assert len(from_actor) > 20 and all(np.isfinite(m).all() and np.abs(m).max() <= 1.0 for m in from_actor)


def test_d_learner_sigkill_and_restart_resumes_while_actor_holds_safe(tmp_path):
    ckpt = tmp_path / "ckpt"
    specs = build_graph(preset="s3", env=ENV, device="cpu", mode="async", max_steps=0, checkpoint_dir=str(ckpt),
                        overrides=dict(TINY))
    for s in specs:
        if s.executable == "sim_bridge":
            s.parameters.update(rate_hz=50.0)
        if s.executable == "actor":
            _limits(s.parameters)
            s.parameters.update(learner_timeout_s=1.0, safe_command=[0.0] * 17)
        if s.executable == "learner":
            s.parameters.update(checkpoint_every_s=0.5)
    by = {s.executable: s for s in specs}
    with _process_graph(specs, tmp_path) as (procs, probe, ex):
        learning = lambda: probe.status and probe.status[-1].learning and probe.status[-1].updates > 30
        assert _spin_until(ex, learning, timeout=120), (tmp_path / "learner.log").read_text()[-3000:]
        assert _spin_until(ex, lambda: len(list(ckpt.glob("ckpt_*.pt"))) > 0, timeout=30)
        time.sleep(0.6)
        procs["learner"].kill()                              # SIGKILL: no final checkpoint
        procs["learner"].wait(timeout=10)
        killed_at = len(probe.commands)
        _spin_until(ex, lambda: False, timeout=3.0)          # learner_timeout_s = 1 s, 50 Hz commands
        during = probe.commands[killed_at + 75:]             # after the timeout has certainly passed
        assert len(during) >= 20 and all(np.array_equal(cmd, np.zeros(17)) for cmd in during)
        n_status = len(probe.status)
        procs["learner"] = _start(by["learner"], tmp_path)
        resumed = lambda: len(probe.status) > n_status and probe.status[-1].transitions_stored > 60
        assert _spin_until(ex, resumed, timeout=90), (tmp_path / "learner.log").read_text()[-3000:]
        assert "resumed" in (tmp_path / "learner.log").read_text().lower()
        first_after = probe.status[n_status]
        assert first_after.learning and first_after.buffer_fill == first_after.buffer_capacity   # buffer restored
        n_cmd = len(probe.commands)
        assert _spin_until(ex, lambda: any(not np.array_equal(x, np.zeros(17)) for x in probe.commands[n_cmd:]),
                           timeout=30)                      # the actor acts again


def test_e_two_namespaced_sims_feed_one_learner(graph_factory):
    g = graph_factory(robots=2, max_steps=160)
    learner = g.learner.learner
    assert [b.get_namespace() for b in g.bridges] == ["/robot1", "/robot2"]
    assert _spin_until(g, lambda: learner.done, timeout=180), learner.stored
    sent = [a.transitions_sent for a in g.actors]
    assert all(n > 20 for n in sent), sent                   # both robots contributed
    assert learner.stored == 160 and learner.received >= 160
    assert learner.updates == 3 * (learner.stored - TINY["n_exp"])


def test_launch_file_wires_only_the_shared_graph_definition():
    """Runs everywhere (no launch needed): the launch file's node list for given arguments is graph.build_graph's."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("train_sim_launch", ROOT / "launch" / "train_sim.launch.py")
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    values = {k: default for k, (default, _) in launch_file.ARGS.items()}
    values.update(preset="ed", env=ENV, robots="2", namespace="/lab", mode="async", max_steps="500")
    assert callable(launch_file.generate_launch_description)
    assert launch_file._specs(values) == build_graph(preset="ed", env=ENV, robots=2, namespace="/lab", mode="async",
                                                     max_steps=500, checkpoint_dir="checkpoints")
    with pytest.raises(ValueError, match="robots"):
        launch_file._specs(dict(values, robots="0"))
    specs = build_graph(preset="ed", env=ENV, robots=2, namespace="/lab", obs_dim=348, act_dim=17)
    assert [(s.executable, s.namespace) for s in specs] == [
        ("sim_bridge", "/lab/robot1"), ("actor", "/lab/robot1"), ("sim_bridge", "/lab/robot2"),
        ("actor", "/lab/robot2"), ("learner", "/lab")]
    actor = specs[1]
    assert ("transitions", "/lab/transitions") in actor.remappings and actor.params_file.name == "actor.yaml"
    assert all(s.params_file.is_file() for s in specs)
