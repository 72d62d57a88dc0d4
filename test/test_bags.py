"""Bags: record (recorder node over real DDS), read back, crash/full-disk/truncation safety, replay, train from a
bag, policy re-run and the analysis numbers (checked against values computed here from the published data).

The DDS bag comes from :func:`record_graph`, which spins the real RecorderNode next to any nodes given to it: here
a ContractPublisher that publishes every contract message type like the graph does (namespaced per-robot topics,
shared learner topics at the root), with a scripted run (episodes, a dropped step, a duplicated env_step,
saturating noisy actions from a real Actor, learner status). A test recording the real graph (the embedded runner)
can pass its nodes to record_graph the same way.

Run the DDS tests in a private network namespace (README: Tests):
    unshare -n bash -c 'ip link set lo up; . .venv/bin/activate; ROS_DOMAIN_ID=64 python -m pytest -q test/test_bags.py'
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (pip extra 'bags')")
pytest.importorskip("mcap", reason="mcap not installed (pip extra 'bags')")

from symphony_ros.bags import BagDamagedError, BagError, BagWriteError  # noqa: E402
from symphony_ros.bags import typestore as T  # noqa: E402
from symphony_ros.bags.reader import BagReader, repair  # noqa: E402
from symphony_ros.bags.recorder import BagRecorder, _SafeFile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OBS, ACT = 11, 3            # Hopper-v5 sizes, so load-bag can build a real HeadlessTrainer
RATE_HZ = 100.0


def run_cli(argv: list[str]) -> int:
    """A subcommand as symphony-ros runs it (in this process)."""
    from symphony_ros.cli import build_parser
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def _env(**extra) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _ros():
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
    pytest.importorskip("symphony_ros_interfaces.msg", reason="symphony_ros_interfaces not built")
    pytest.importorskip("sensor_msgs.msg", reason="ros-sensor-msgs not installed")
    return rclpy


# ================================================================================================ pure: writer
def _fill(rec: BagRecorder, n: int, t0: int = 10**9, dt: int = 10_000_000, obs: int = 100) -> None:
    rec.add_topic("/env_step", T.ENV_STEP)
    rec.add_topic("/joint_commands", T.FLOAT64_MULTI_ARRAY)
    for i in range(n):
        rec.write("/env_step", T.serialize(T.make(T.ENV_STEP, step=i, reward=float(i),
                                                  observation=np.arange(obs, dtype=np.float32) + i)), t0 + i * dt)
        rec.write("/joint_commands", T.serialize(T.make(T.FLOAT64_MULTI_ARRAY, data=np.full(3, i / n))),
                  t0 + i * dt + 1)


def test_typestore_hashes_match_rosidl():
    """The RIHS01 hashes written into bags are the ones rosidl generated for the installed interfaces."""
    ts = T.get_typestore()
    share = Path(sys.prefix) / "share"
    checked = 0
    for name in T.OWN_TYPES + ("std_msgs/msg/Float64MultiArray", "sensor_msgs/msg/JointState"):
        full = name if "/" in name else f"{T.INTERFACES_PACKAGE}/msg/{name}"
        pkg, _, short = full.split("/")
        js = share / pkg / "msg" / f"{short}.json"
        if not js.is_file():
            continue
        hashes = {h["type_name"]: h["hash_string"] for h in json.loads(js.read_text())["type_hashes"]}
        assert ts.hash_rihs01(full) == hashes[full]
        checked += 1
    assert T.knows(T.TRANSITION, T.get_typestore("humble")) and T.knows(T.JOINT_STATE, T.get_typestore("humble"))
    if not checked:
        pytest.skip("no rosidl type description JSON installed to compare with")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_split_by_size_and_duration_reads_back(tmp_path, storage):
    from rosbags.rosbag2 import Reader
    by_size = tmp_path / "size"
    with BagRecorder(by_size, storage=storage, max_bag_size=150_000) as r:
        _fill(r, 800)
    by_time = tmp_path / "time"
    with BagRecorder(by_time, storage=storage, max_bag_duration=2.0) as r:
        _fill(r, 800)      # 8 s of data
    for bag, nfiles in ((by_size, None), (by_time, 4)):
        files = sorted(bag.glob("*.mcap" if storage == "mcap" else "*.db3"))
        assert len(files) >= 3 if nfiles is None else len(files) == nfiles
        assert not (bag / ".reserve").exists()
        with Reader(bag) as rd:       # rosbags: metadata, type hashes and every file
            assert rd.message_count == 1600
            meta = __import__("yaml").safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
            assert meta["relative_file_paths"] == [f.name for f in sorted(files, key=lambda p: int(p.stem.rsplit(
                "_", 1)[1]))]
            assert sum(f["message_count"] for f in meta["files"]) == 1600
            steps = [T.deserialize(raw, T.ENV_STEP).step for c, _, raw in rd.messages() if c.topic == "/env_step"]
            assert steps == list(range(800))
            assert {c.digest for c in rd.connections} == {T.get_typestore().hash_rihs01(T.ENV_STEP),
                                                           T.get_typestore().hash_rihs01(T.FLOAT64_MULTI_ARRAY)}
        r2 = BagReader(bag)
        assert not r2.damage and r2.message_count == 1600
    if storage == "mcap":   # the mcap library reads (and decodes, our types included) every split file
        from mcap.reader import make_reader
        from mcap_ros2.decoder import DecoderFactory
        n = 0
        for f in sorted(by_size.glob("*.mcap")):
            with open(f, "rb") as fh:
                n += sum(1 for _ in make_reader(fh, decoder_factories=[DecoderFactory()]).iter_decoded_messages())
        assert n == 1600


def test_existing_bag_is_never_overwritten(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("keep")
    with pytest.raises(BagError, match="exists already"):
        BagRecorder(tmp_path / "b").open()


def _budget_writer(budget: dict):
    """_SafeFile._os_write that runs out of space after budget['n'] bytes while the bag's reserve file exists
    (deleting the reserve frees space, like on a real disk)."""
    def write(self, view):
        if (self.path.parent / ".reserve").exists():
            if budget["n"] <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            n = min(len(view), budget["n"])
            budget["n"] -= n
            return os.write(self.fd, view[:n])
        return os.write(self.fd, view)
    return write


def test_full_disk_closes_the_bag_with_a_clear_error(tmp_path, monkeypatch):
    from rosbags.rosbag2 import Reader
    monkeypatch.setattr(_SafeFile, "_os_write", _budget_writer({"n": 1_300_000}))
    rec = BagRecorder(tmp_path / "full", flush_interval=0, chunk_bytes=200_000)
    rec.open()
    with pytest.raises(BagWriteError) as err:
        _fill(rec, 10_000)
    text = str(err.value)
    assert "disk is full" in text and "closed properly" in text and "lost" in text
    with pytest.raises(BagWriteError):    # further writes refuse with the same error
        rec.write("/env_step", b"\0" * 8)
    monkeypatch.undo()
    with Reader(tmp_path / "full") as rd:   # a valid, closed bag: metadata + index
        n = rd.message_count
        assert n == sum(1 for _ in rd.messages()) == rec.message_count > 0
    steps = [T.deserialize(m.data, T.ENV_STEP).step for m in BagReader(tmp_path / "full").messages(["/env_step"])]
    assert steps == list(range(len(steps)))          # a prefix of what was written, nothing torn


def test_full_disk_while_closing_still_closes_the_bag(tmp_path, monkeypatch):
    from rosbags.rosbag2 import Reader
    rec = BagRecorder(tmp_path / "b", flush_interval=0, chunk_bytes=1 << 20)
    rec.open()
    _fill(rec, 300)            # < 1 chunk: everything is still in flight
    rec.flush()
    _fill_more = [T.serialize(T.make(T.ENV_STEP, step=300 + i)) for i in range(100)]
    for i, d in enumerate(_fill_more):
        rec.write("/env_step", d, 2 * 10**9 + i)
    monkeypatch.setattr(_SafeFile, "_os_write", _budget_writer({"n": 0}))
    with pytest.raises(BagWriteError, match="disk is full while closing the bag.*closed properly"):
        rec.close()
    monkeypatch.undo()
    with Reader(tmp_path / "b") as rd:
        assert rd.message_count == 600 == rec.message_count     # the 100 in flight were lost, the rest is whole
    assert rec.lost == 100


def test_full_disk_on_a_real_tmpfs(tmp_path):
    """A real ENOSPC: a 3 MiB tmpfs in a private mount namespace (root only; skipped elsewhere)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a private tmpfs")
    script = textwrap.dedent(f"""
        import json, numpy as np
        from symphony_ros.bags.recorder import BagRecorder
        from symphony_ros.bags import BagWriteError
        from symphony_ros.bags import typestore as T
        from rosbags.rosbag2 import Reader
        rec = BagRecorder('{tmp_path}/mnt/bag', flush_interval=0, chunk_bytes=100_000, reserve_bytes=256 << 10)
        rec.open(); rec.add_topic('/env_step', T.ENV_STEP)
        err = ''
        try:
            for i in range(100_000):
                rec.write('/env_step', T.serialize(T.make(T.ENV_STEP, step=i, observation=np.ones(300, np.float32))),
                          10**9 + i)
        except BagWriteError as e:
            err = str(e)
        with Reader('{tmp_path}/mnt/bag') as rd:
            print(json.dumps(dict(err=err, held=rec.message_count, read=sum(1 for _ in rd.messages()))))
    """)
    (tmp_path / "mnt").mkdir()
    cmd = ["unshare", "-m", "bash", "-c", f"mount -t tmpfs -o size=3m tmpfs {tmp_path}/mnt && "
           f"{sys.executable} -c \"$0\"", script]
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
    if p.returncode != 0 and "mount" in p.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()[:200]}")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert "disk is full" in res["err"] and "closed properly" in res["err"]
    assert res["read"] == res["held"] > 1000


@pytest.mark.parametrize("split", [False, True])
def test_killed_writer_loses_at_most_the_chunk_in_flight_and_repairs(tmp_path, split):
    """A process writing a bag is SIGKILLed: everything flushed before is readable (without metadata.yaml, or with
    one that lists only the files closed at splits), and repair() makes the bag whole for rosbags (and ros2 bag)."""
    from rosbags.rosbag2 import Reader
    script = textwrap.dedent(f"""
        import os, signal, sys, numpy as np
        from symphony_ros.bags.recorder import BagRecorder
        from symphony_ros.bags import typestore as T
        rec = BagRecorder('{tmp_path}/bag', flush_interval=0, max_bag_size={100_000 if split else 0})
        rec.open(); rec.add_topic('/env_step', T.ENV_STEP)
        for i in range(3000):
            rec.write('/env_step', T.serialize(T.make(T.ENV_STEP, step=i, observation=np.ones(50, np.float32))),
                      10**9 + i * 1000)
            if i % 100 == 99:
                rec.flush()
                print(i + 1, flush=True)     # everything up to here is on disk
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(), timeout=120)
    assert p.returncode == -signal.SIGKILL
    flushed = int(p.stdout.split()[-1])
    r = BagReader(tmp_path / "bag")
    if split:
        assert len(r.files) > 3 and any("not listed in metadata.yaml" in d for d in r.damage)
    else:
        assert any("no metadata.yaml" in d for d in r.damage)
    steps = [T.deserialize(m.data, T.ENV_STEP).step for m in r.messages()]
    assert flushed <= len(steps) <= 3000 and steps == list(range(len(steps)))
    with pytest.raises(BagDamagedError):
        BagReader(tmp_path / "bag", strict=True)
    rep = repair(tmp_path / "bag")
    assert rep.messages == len(steps)
    with Reader(tmp_path / "bag") as rd:
        assert rd.message_count == len(steps) == sum(1 for _ in rd.messages())
    assert not BagReader(tmp_path / "bag").damage


def test_killed_sqlite3_writer_keeps_committed_messages(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from symphony_ros.bags.recorder import BagRecorder
        from symphony_ros.bags import typestore as T
        rec = BagRecorder('{tmp_path}/bag', storage='sqlite3', flush_interval=0)
        rec.open(); rec.add_topic('/env_step', T.ENV_STEP)
        for i in range(1000):
            rec.write('/env_step', T.serialize(T.make(T.ENV_STEP, step=i)), 10**9 + i)
            if i == 599:
                rec.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(), timeout=120)
    assert p.returncode == -signal.SIGKILL
    r = BagReader(tmp_path / "bag")
    steps = [T.deserialize(m.data, T.ENV_STEP).step for m in r.messages()]
    assert steps == list(range(600))
    repair(tmp_path / "bag")
    from rosbags.rosbag2 import Reader
    with Reader(tmp_path / "bag") as rd:
        assert rd.message_count == 600


def test_not_a_bag_is_a_clear_error(tmp_path, capsys):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "junk_0.mcap").write_bytes(b"this is not mcap at all")
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        BagReader(junk)
    assert run_cli(["analyze", str(junk), "--out", str(tmp_path / "rep")]) == 2
    assert "not a rosbag2 bag" in capsys.readouterr().err
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "nothing")


def test_a_nan_command_is_counted_and_the_report_still_written(tmp_path):
    bag = tmp_path / "nan"
    with BagRecorder(bag) as r:
        _fill(r, 40)
        r.write("/joint_commands", T.serialize(T.make(T.FLOAT64_MULTI_ARRAY, data=np.array([np.nan, 0.0, 1.0]))),
                10**9 + 41 * 10_000_000)
    assert run_cli(["analyze", str(bag), "--out", str(tmp_path / "rep")]) == 0
    res = json.loads((tmp_path / "rep" / "analysis.json").read_text())
    c = res["robots"]["/"]["commands"]
    assert c["count"] == 40 and c["non_finite"] == 1 and np.isfinite(c["saturation_mean"])
    assert (tmp_path / "rep" / "report.html").is_file()


def test_schedule_rate_offset():
    from symphony_ros.bags.reader import BagMessage
    from symphony_ros.bags.replay import schedule
    msgs = [BagMessage("/a", "x", 10**9 + i * 100_000_000, b"") for i in range(10)]   # 10 Hz
    due = [d for d, _ in schedule(msgs, rate=2.0)]
    assert due == pytest.approx([i * 0.05 for i in range(10)])
    due = [(d, m.timestamp) for d, m in schedule(msgs, rate=1.0, start_offset_ns=450_000_000)]
    assert [t for _, t in due] == [m.timestamp for m in msgs[5:]]
    assert due[0][0] == pytest.approx(0.05) and due[-1][0] == pytest.approx(0.45)


def test_player_loop_filter_offset_remap_without_dds(tmp_path):
    """BagPlayer's logic with a stand-in node (publishers that only count): loop, topic filter, start offset,
    remap, and the recorded QoS (latched stays latched)."""
    _ros()
    from symphony_ros.bags.replay import ReplayOptions
    from symphony_ros.nodes.replay import BagPlayer
    bag = tmp_path / "b"
    with BagRecorder(bag) as r:
        _fill(r, 50, dt=2_000_000)          # 100 ms of env_step + joint_commands
        r.add_topic("/policy_weights", T.POLICY_WEIGHTS, [_latched_qos()])
        r.write("/policy_weights", T.serialize(T.make(T.POLICY_WEIGHTS, version=3)), 10**9)
    sent = []

    class Pub:
        def __init__(self, name, qos):
            self.name, self.qos_profile = name, qos

        def publish(self, data):
            sent.append((self.name, data))
            if len(sent) >= 3 * 40:        # third pass of the looped topic: stop
                player.stop_event.set()

    node = SimpleNamespace(create_publisher=lambda cls, name, qos: Pub(name, qos),
                           destroy_publisher=lambda p: None)
    player = BagPlayer(node, bag, ReplayOptions(rate=4.0, loop=True, topics=["/env_step"], start_offset_s=0.02,
                                                remap={"/env_step": "/robot9/env_step"}))
    t0 = time.perf_counter()
    stats = player.play()
    assert {n for n, _ in sent} == {"/robot9/env_step"}
    steps = [T.deserialize(d, T.ENV_STEP).step for _, d in sent]
    assert steps[:40] == list(range(10, 50)) and steps[40:80] == list(range(10, 50))   # offset 20 ms = 10 steps
    assert stats.loops >= 3 and stats.published["/env_step"] == len(sent)
    # pacing: the player never publishes before a message's due time, so two full passes take at least their
    # schedule (a lower bound; how much later it runs depends on the machine's load)
    assert time.perf_counter() - t0 >= 2 * 0.078 / 4.0
    latched = BagPlayer(node, bag, ReplayOptions(topics=["/policy_weights"]))
    from rclpy.qos import DurabilityPolicy
    assert latched.publishers["/policy_weights"].qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
    with pytest.raises(BagError, match="not in bag"):
        BagPlayer(node, bag, ReplayOptions(topics=["/nope"]))


def _latched_qos():
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
    inf = QosTime(9223372036, 854775807)
    return Qos(QosHistory.UNKNOWN, 0, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, inf, inf,
               QosLiveliness.AUTOMATIC, inf, False)


# ================================================================================================ DDS recording
def scripted_run(actor, seed: int = 0) -> list[dict]:
    """The run the ContractPublisher plays, one dict per control tick (what to publish)."""
    import torch
    rng = np.random.default_rng(seed)
    ticks = []
    status_k = 0
    episodes = [(30, "terminated"), (40, "truncated"), (25, None)]   # last step index, how it ends
    prev = None
    for ep, (last, end) in enumerate(episodes):
        for step in range(last + 1):
            obs = rng.standard_normal(OBS).astype(np.float32)
            reward = 0.0 if step == 0 else float(np.float32(1.0 + 0.1 * step * (ep + 1) + rng.normal(0, 0.2)))
            final = step == last and end is not None
            tick = dict(ep=ep, step=step, obs=obs, reward=reward, terminated=final and end == "terminated",
                        truncated=final and end == "truncated", drop=(ep == 1 and step == 10),
                        duplicate=(ep == 0 and step == 5), action=None, transition=None, status=None)
            if not final and not tick["drop"]:
                with torch.no_grad():
                    a_raw, s_raw, _ = actor.net(torch.as_tensor(obs)[None]).chunk(3, dim=-1)
                    pre = torch.tanh(s_raw / 2).abs() * torch.tanh(a_raw / 2)
                eps = rng.normal(0, 1.5, ACT)
                tick["action"] = np.tanh(pre[0].numpy().astype(np.float64) + eps).astype(np.float32)
            if step > 0 and prev is not None and prev["action"] is not None and not tick["drop"] \
                    and prev["ep"] == ep:
                tick["transition"] = dict(obs=prev["obs"], action=prev["action"], reward=reward, next_obs=obs,
                                          terminated=tick["terminated"], truncated=tick["truncated"], ep=ep,
                                          step=step)
            if len(ticks) % 10 == 0:
                k = status_k
                tick["status"] = dict(updates=30 * k, sigma=float(np.float32(0.5 - 0.01 * k)),
                                      beta=float(np.float32(0.2 + 0.005 * k)), learning=k >= 2,
                                      reward_scale=float(np.float32(1.7 if k >= 2 else 1.0)))
                status_k += 1
            ticks.append(tick)
            if not tick["drop"]:
                prev = tick
    return ticks


class ContractPublisher:
    """Publishes a scripted run with the graph's topic names, types and QoS (common.py): /robot1/{env_step,
    joint_states, imu, joint_commands} and the shared /transitions, /learner_status, /learner_ack,
    /policy_weights (latched)."""

    def __init__(self, rclpy, actor, ticks):
        from sensor_msgs.msg import Imu, JointState
        from std_msgs.msg import Float64MultiArray
        from symphony_ros.core.policy import flatten_actor
        from symphony_ros import contract as ct
        from symphony_ros.nodes.common import qos_profile as qos
        from symphony_ros_interfaces.msg import EnvStep, LearnerAck, LearnerStatus, PolicyWeights, Transition
        self.M = SimpleNamespace(Imu=Imu, JointState=JointState, F=Float64MultiArray, EnvStep=EnvStep,
                                 LearnerAck=LearnerAck, LearnerStatus=LearnerStatus, Transition=Transition)
        self.node = rclpy.create_node("contract_publisher")
        n = self.node
        self.pubs = dict(
            env_step=n.create_publisher(EnvStep, "/robot1/env_step", qos(ct.ENV_STEP)),
            joint_states=n.create_publisher(JointState, "/robot1/joint_states", qos(ct.JOINT_STATES)),
            imu=n.create_publisher(Imu, "/robot1/imu", qos(ct.JOINT_STATES)),
            joint_commands=n.create_publisher(Float64MultiArray, "/robot1/joint_commands", qos(ct.JOINT_COMMANDS)),
            transitions=n.create_publisher(Transition, "/transitions", qos(ct.TRANSITIONS)),
            learner_status=n.create_publisher(LearnerStatus, "/learner_status", qos(ct.LEARNER_STATUS)),
            learner_ack=n.create_publisher(LearnerAck, "/learner_ack", qos(ct.LEARNER_ACK)),
            policy_weights=n.create_publisher(PolicyWeights, "/policy_weights", qos(ct.POLICY_WEIGHTS)))
        layout, flat = flatten_actor(actor)
        w = PolicyWeights(version=7, preset="s3", layout=layout)
        w.data = flat.tolist()
        self.weights = flat
        self.pubs["policy_weights"].publish(w)      # latched: before the recorder exists
        self.ticks = ticks
        self.i = 0
        self.published = {k: 0 for k in self.pubs}
        self.published["policy_weights"] = 1

    def matched(self) -> bool:
        return all(p.get_subscription_count() > 0 for k, p in self.pubs.items())

    def done(self) -> bool:
        return self.i >= len(self.ticks)

    def tick(self) -> None:
        from symphony_ros.nodes.common import set_stamp
        M, t = self.M, self.ticks[self.i]
        self.i += 1
        now = time.time_ns()
        if not t["drop"]:
            e = M.EnvStep(episode=t["ep"], step=t["step"], reward=t["reward"], terminated=t["terminated"],
                          truncated=t["truncated"])
            e.observation = t["obs"].tolist()
            set_stamp(e.header, now)
            e.header.frame_id = "robot1"
            js = M.JointState(name=[f"j{j}" for j in range(ACT)], position=t["obs"][:ACT].astype(float).tolist(),
                              velocity=t["obs"][ACT:2 * ACT].astype(float).tolist(), effort=[])
            set_stamp(js.header, now)
            imu = M.Imu()
            imu.angular_velocity.x = float(t["obs"][0])
            for k, msg in (("env_step", e), ("joint_states", js), ("imu", imu)):
                self.pubs[k].publish(msg)
                self.published[k] += 1
            if t["duplicate"]:
                self.pubs["env_step"].publish(e)
                self.published["env_step"] += 1
        if t["transition"] is not None:
            tr = t["transition"]
            m = M.Transition(episode=tr["ep"], step=tr["step"], reward=tr["reward"], terminated=tr["terminated"],
                             truncated=tr["truncated"])
            m.observation, m.action, m.next_observation = tr["obs"].tolist(), tr["action"].tolist(), \
                tr["next_obs"].tolist()
            m.header.frame_id = "robot1"
            set_stamp(m.header, now)
            self.pubs["transitions"].publish(m)
            ack = M.LearnerAck(header=m.header, transitions_stored=self.published["transitions"] + 1, stored=True)
            self.pubs["learner_ack"].publish(ack)
            self.published["transitions"] += 1
            self.published["learner_ack"] += 1
        if t["action"] is not None:
            self.pubs["joint_commands"].publish(M.F(data=t["action"].astype(float).tolist()))
            self.published["joint_commands"] += 1
        if t["status"] is not None:
            s = t["status"]
            self.pubs["learner_status"].publish(M.LearnerStatus(
                updates=s["updates"], sigma_mean=s["sigma"], beta_mean=s["beta"], learning=s["learning"],
                reward_scale=s["reward_scale"], critic_loss=0.1, actor_loss=-0.2))
            self.published["learner_status"] += 1


def record_graph(rclpy, nodes, bag: Path, drive, *, timeout: float = 30.0, **params):
    """Spin a RecorderNode (``params``: its parameters) with ``nodes`` in one executor; ``drive(executor, recorder)``
    runs the scenario and returns when it is over. Returns the recorder's per-topic counts; the bag is closed."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from symphony_ros.nodes.recorder import RecorderNode
    overrides = [Parameter("output", value=str(bag)), Parameter("discovery_period_s", value=0.1)]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    rec = RecorderNode(parameter_overrides=overrides)
    ex = SingleThreadedExecutor()
    for n in nodes + [rec]:
        ex.add_node(n)
    try:
        drive(ex, rec)
        end = time.monotonic() + 0.5        # drain
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)
        return dict(rec.counts)
    finally:
        ex.remove_node(rec)
        rec.destroy_node()
        ex.shutdown()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One real DDS recording shared by the tests below: (bag path, publisher, ticks, actor file, recorder
    counts)."""
    rclpy = _ros()
    from symphony_ros.core.config import load_preset
    from symphony_ros.core.policy import build_actor, export_actor
    import torch
    torch.manual_seed(3)
    cfg = load_preset("s3", dict(hidden_dim=32, heads_per_critic=8, batch_size=24, n_exp=200, buffer_times=3))
    actor = build_actor(OBS, ACT, cfg)
    base = tmp_path_factory.mktemp("bags")
    actor_file = export_actor(base / "actor.pt", actor, cfg, 7)
    ticks = scripted_run(actor)
    bag = base / "run"
    rclpy.init()
    try:
        pub = ContractPublisher(rclpy, actor, ticks)

        def drive(ex, rec):
            end = time.monotonic() + 10
            while not pub.matched():
                assert time.monotonic() < end, "the recorder did not subscribe every contract topic"
                ex.spin_once(timeout_sec=0.02)
            nxt = time.perf_counter()
            while not pub.done():
                pub.tick()
                # the recorder stamps messages when its callback runs: let it take this tick's messages before the
                # next tick publishes, or a loaded machine reorders env_step/joint_commands in the bag
                end = time.monotonic() + 10
                while sum(rec.counts.values()) < sum(pub.published.values()) and time.monotonic() < end:
                    ex.spin_once(timeout_sec=0.01)
                nxt += 1.0 / RATE_HZ
                while (left := nxt - time.perf_counter()) > 0:
                    ex.spin_once(timeout_sec=left)
        counts = record_graph(rclpy, [pub.node], bag, drive, flush_interval_s=0.2)
        pub.node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return SimpleNamespace(bag=bag, pub=pub, ticks=ticks, actor=actor, actor_file=actor_file, counts=counts, cfg=cfg)


TOPIC_OF = {"env_step": "/robot1/env_step", "joint_states": "/robot1/joint_states", "imu": "/robot1/imu",
            "joint_commands": "/robot1/joint_commands", "transitions": "/transitions",
            "learner_status": "/learner_status", "learner_ack": "/learner_ack", "policy_weights": "/policy_weights"}


def test_record_reads_back_equal_counts_and_values(recorded):
    from rosbags.rosbag2 import Reader
    pub, bag = recorded.pub, recorded.bag
    expected = {TOPIC_OF[k]: n for k, n in pub.published.items()}
    assert recorded.counts == expected
    with Reader(bag) as rd:      # rosbags accepts the metadata, hashes and QoS of the node's bag
        assert {c.topic: c.msgcount for c in rd.connections} == expected
        qos = {c.topic: c.ext.offered_qos_profiles for c in rd.connections}
        assert qos["/policy_weights"][0].durability.name == "TRANSIENT_LOCAL"
        assert qos["/robot1/joint_states"][0].reliability.name == "BEST_EFFORT"
        assert qos["/transitions"][0].reliability.name == "RELIABLE"
    r = BagReader(bag)
    assert not r.damage
    env = [msg for _, msg in r.decoded(["/robot1/env_step"])]
    sent = [t for t in recorded.ticks if not t["drop"]]
    sent = [x for t in sent for x in ([t, t] if t["duplicate"] else [t])]
    assert [(m.episode, m.step) for m in env] == [(t["ep"], t["step"]) for t in sent]
    for m, t in zip(env, sent):
        np.testing.assert_array_equal(m.observation, t["obs"])
        assert m.reward == np.float32(t["reward"]) and m.terminated == t["terminated"]
    cmds = [msg.data for _, msg in r.decoded(["/robot1/joint_commands"])]
    np.testing.assert_array_equal(np.stack(cmds), np.stack([t["action"] for t in recorded.ticks
                                                            if t["action"] is not None]).astype(np.float64))
    js = [msg for _, msg in r.decoded(["/robot1/joint_states"])]
    assert [list(m.name) for m in js[:1]] == [["j0", "j1", "j2"]] and len(js[0].effort) == 0
    (w,) = [msg for _, msg in r.decoded(["/policy_weights"])]
    assert w.version == 7
    np.testing.assert_array_equal(w.data, recorded.pub.weights)
    # the mcap library reads and decodes the same file (our message definitions included)
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    (f,) = bag.glob("*.mcap")
    with open(f, "rb") as fh:
        decoded = [(c.topic, m) for _, c, _, m in make_reader(fh, decoder_factories=[DecoderFactory()])
                   .iter_decoded_messages()]
    assert len(decoded) == sum(expected.values())
    steps = [m.step for t, m in decoded if t == "/robot1/env_step"]
    assert steps == [t["step"] for t in sent]


def _recorded_timing(bag):
    """(sorted joint_commands receive times, [(env_step receive time, final)] of the first copy of each (episode,
    step), time order) as recorded in ``bag``."""
    r = BagReader(bag)
    cmd_t = sorted(m.timestamp for m in r.messages(["/robot1/joint_commands"]))
    seen, env = set(), []
    for m, msg in r.decoded(["/robot1/env_step"]):
        if (msg.episode, msg.step) not in seen:
            seen.add((msg.episode, msg.step))
            env.append((m.timestamp, bool(msg.terminated or msg.truncated)))
    return cmd_t, sorted(env)


def _episodes(ticks):
    out = {}
    seen = set()
    for t in ticks:
        if t["drop"] or (t["ep"], t["step"]) in seen:
            continue
        seen.add((t["ep"], t["step"]))
        e = out.setdefault(t["ep"], dict(ret=0.0, length=0, done=False))
        e["ret"] += np.float32(t["reward"])
        e["length"] = max(e["length"], t["step"])
        e["done"] = e["done"] or t["terminated"] or t["truncated"]
    return [e for e in out.values() if e["done"]]


def test_analysis_numbers_match_an_independent_computation(recorded, tmp_path):
    assert run_cli(["analyze", str(recorded.bag), "--out", str(tmp_path / "rep")]) == 0
    res = json.loads((tmp_path / "rep" / "analysis.json").read_text())
    html_text = (tmp_path / "rep" / "report.html").read_text()
    assert html_text.count("data:image/png;base64,") >= 4
    robot = res["robots"]["/robot1"]
    ticks = recorded.ticks
    # episodes
    eps = _episodes(ticks)
    assert robot["episodes"]["count"] == 2
    np.testing.assert_allclose(robot["episodes"]["returns"], [e["ret"] for e in eps], rtol=1e-6)
    assert robot["episodes"]["lengths"] == [30, 40]
    assert robot["episodes"]["terminated"] == [True, False]
    # commands: saturation, smoothness, high-frequency share
    # a command belongs to the episode of the latest env_step recorded before it (the bag's receive order)
    rd = BagReader(recorded.bag)
    env_ep = sorted((m.timestamp, int(msg.episode)) for m, msg in rd.decoded(["/robot1/env_step"]))
    acts = []
    for m, msg in rd.decoded(["/robot1/joint_commands"]):
        before = [e for t, e in env_ep if t <= m.timestamp]
        acts.append((m.timestamp, before[-1] if before else env_ep[0][1], np.asarray(msg.data, np.float64)))
    acts.sort(key=lambda x: x[0])
    a = np.stack([x for _, _, x in acts])
    ep = np.array([e for _, e, _ in acts])
    np.testing.assert_array_equal(np.sort(a, axis=0), np.sort(np.stack(
        [t["action"] for t in ticks if t["action"] is not None]).astype(np.float64), axis=0))   # all recorded
    sat = ((a >= 0.9) | (a <= -0.9)).mean(axis=0)
    np.testing.assert_allclose(robot["commands"]["saturation"], sat)
    assert 0.1 < sat.mean() < 0.9      # the scripted noise does saturate
    mad = np.mean([np.abs(a[i] - a[i - 1]) for i in range(1, len(a)) if ep[i] == ep[i - 1]], axis=0)
    np.testing.assert_allclose(robot["commands"]["mean_abs_delta"], mad, rtol=1e-9)
    hi, tot = np.zeros(ACT), np.zeros(ACT)
    for e in np.unique(ep):
        x = a[ep == e] - a[ep == e].mean(axis=0)
        p = np.abs(np.fft.rfft(x, axis=0)) ** 2
        k = np.arange(p.shape[0]) / len(x)          # frequency in units of the control rate
        hi += p[k > 0.25].sum(axis=0)
        tot += p[k > 0].sum(axis=0)
    np.testing.assert_allclose(robot["commands"]["hf_share"], hi / tot, rtol=1e-9)
    # control rate and timing: from the bag's own receive timestamps (what the recorder saw under whatever load)
    cmd_t, env = _recorded_timing(recorded.bag)
    assert robot["commands"]["control_rate_hz"] == pytest.approx(1e9 / np.median(np.diff(cmd_t)), rel=1e-9)
    # learner
    st = [t["status"] for t in ticks if t["status"] is not None]
    L = res["learner"]
    np.testing.assert_allclose(L["sigma_mean"], [s["sigma"] for s in st], rtol=1e-6)
    np.testing.assert_allclose(L["beta_mean"], [s["beta"] for s in st], rtol=1e-6)
    assert L["reward_scale_final"] == pytest.approx(1.7, rel=1e-6) and L["updates_final"] == st[-1]["updates"]
    rewards = [np.float32(t["reward"]) for t in ticks if not t["drop"] and t["step"] > 0]
    assert robot["rewards"]["abs_mean"] == pytest.approx(float(np.mean(np.abs(rewards))), rel=1e-6)
    # control timing
    tm = robot["timing"]
    assert tm["dropped_steps"] == 1 and tm["duplicate_env_steps"] == 1 and tm["missing_episodes"] == 0
    unanswered, latency = 0, []
    for i, (t_env, final) in enumerate(env):          # first command after each env_step, before the next one
        nxt = env[i + 1][0] if i + 1 < len(env) else None
        after = [c for c in cmd_t if c >= t_env]
        answered = bool(after) and (nxt is None or after[0] < nxt)
        if final:
            continue
        if answered:
            latency.append((after[0] - t_env) / 1e6)
        elif nxt is not None:                         # the last env_step may still be waiting when recording stopped
            unanswered += 1
    assert tm["unanswered_steps"] == unanswered
    assert tm["response_latency_ms"]["median"] == pytest.approx(np.median(latency), rel=1e-9)
    n_env = sum(1 for t in ticks if not t["drop"] and t["step"] > 0)
    assert tm["transitions_missing"] == max(0, n_env - 1 - recorded.pub.published["transitions"])
    env_t = [t for t, _ in env]
    assert tm["env_step"]["interval_ms"]["median"] == pytest.approx(np.median(np.diff(env_t)) / 1e6, rel=1e-9)
    times = [m.timestamp for m in BagReader(recorded.bag).messages(["/robot1/env_step"])]
    dt = np.diff(times) / 1e6
    assert res["timing"]["/robot1/env_step"]["interval_ms"]["std"] == pytest.approx(dt.std(), rel=1e-9)


def test_compare_two_bags_side_by_side(recorded, tmp_path):
    assert run_cli(["analyze", str(recorded.bag), str(recorded.bag), "--out", str(tmp_path)]) == 0
    cmp = json.loads((tmp_path / "comparison.json").read_text())
    rows = {r["metric"]: r for r in cmp["comparison"]["metrics"]}
    assert rows["episodes"]["a"] == rows["episodes"]["b"] == 2 and rows["return mean"]["delta"] == 0
    assert len(cmp["results"]) == 2
    assert "Side by side" in (tmp_path / "report.html").read_text()


def test_truncated_bag_gives_a_clear_error_and_its_readable_part_is_analysed(recorded, tmp_path, capsys):
    bag = tmp_path / "cut"
    shutil.copytree(recorded.bag, bag)
    (f,) = bag.glob("*.mcap")
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    assert run_cli(["analyze", str(bag), "--out", str(tmp_path / "rep")]) == 3
    err = capsys.readouterr().err
    assert "damaged bag" in err and "truncated" in err
    res = json.loads((tmp_path / "rep" / "analysis.json").read_text())
    assert res["damage"] and not res["complete"]
    n_env = res["topics"]["/robot1/env_step"]["count"]
    assert 0 < n_env < recorded.pub.published["env_step"]
    assert "damaged" in (tmp_path / "rep" / "report.html").read_text()
    assert run_cli(["info", str(bag)]) == 3
    with pytest.raises(BagDamagedError, match="truncated"):
        BagReader(bag, strict=True)


def test_train_from_bag_fills_the_buffer_with_exactly_its_transitions(recorded):
    from symphony_ros.bags.from_bag import load_transitions_into
    from symphony_ros.core.agent import SymphonyAgent
    agent = SymphonyAgent(OBS, ACT, recorded.cfg, device="cpu")
    n = load_transitions_into(agent, recorded.bag)
    sent = [t["transition"] for t in recorded.ticks if t["transition"] is not None]
    assert n == len(sent) == agent.buffer.length and not agent.learning
    rows = agent.buffer.packed(slice(0, n)).numpy()
    want = np.stack([np.concatenate([s["obs"], s["action"], [np.float32(s["reward"])], s["next_obs"],
                                     [0.0 if s["terminated"] else recorded.cfg.gamma]]) for s in sent])
    np.testing.assert_array_equal(rows, want.astype(np.float32))
    assert agent.buffer.terminal[:n].tolist() == [s["terminated"] for s in sent]
    other = SymphonyAgent(OBS + 1, ACT, recorded.cfg, device="cpu")
    with pytest.raises(ValueError, match="obs_dim"):
        load_transitions_into(other, recorded.bag)


def test_load_bag_cli_trains_a_headless_learner(recorded, tmp_path):
    pytest.importorskip("gymnasium")
    out = tmp_path / "run"
    rc = run_cli(["load-bag", str(recorded.bag), "--env", "Hopper-v5", "--out", str(out), "--device", "cpu",
                  "--updates", "3", "--no-progress", "--set", "hidden_dim=32", "--set", "heads_per_critic=8",
                  "--set", "batch_size=24", "--set", "n_exp=200", "--set", "buffer_times=3"])
    assert rc == 0
    from symphony_ros.core.checkpoint import CheckpointManager
    path, payload = CheckpointManager(out / "checkpoints").load_latest(kind="training")
    n = recorded.pub.published["transitions"]
    assert payload["agent"]["updates"] == 3 and payload["trainer"]["total_steps"] == n
    assert payload["buffer"]["meta"]["filled"] is True          # the buffer is saved incrementally beside it


def test_rerun_compares_a_checkpoint_with_the_recorded_actions(recorded, tmp_path):
    import torch
    from symphony_ros.bags.from_bag import rerun
    res = rerun(recorded.bag, recorded.actor_file)
    sent = [t["transition"] for t in recorded.ticks if t["transition"] is not None]
    obs = torch.as_tensor(np.stack([s["obs"] for s in sent]))
    with torch.no_grad():
        a_raw, s_raw, _ = recorded.actor.net(obs).chunk(3, dim=-1)
        mine = torch.tanh(torch.tanh(s_raw / 2).abs() * torch.tanh(a_raw / 2)).numpy().astype(np.float64)
    d = np.stack([s["action"] for s in sent]).astype(np.float64) - mine
    assert res.samples == len(sent) and res.source == "transitions"
    np.testing.assert_allclose(res.mean_abs_diff, np.abs(d).mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.max_abs_diff, np.abs(d).max(0), rtol=1e-5, atol=1e-6)
    assert run_cli(["rerun", str(recorded.bag), "--checkpoint", str(recorded.actor_file), "--out",
                    str(tmp_path / "rerun.json")]) == 0
    assert json.loads((tmp_path / "rerun.json").read_text())["samples"] == len(sent)


def test_replay_delivers_in_order_at_the_recorded_pace(recorded):
    rclpy = _ros()
    import threading
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from symphony_ros.bags.replay import ReplayOptions
    from symphony_ros.nodes.replay import BagPlayer
    from symphony_ros import contract as ct
    from symphony_ros.nodes.common import qos_profile as qos
    from symphony_ros_interfaces.msg import EnvStep, PolicyWeights, Transition
    reader = BagReader(recorded.bag)
    want = [m.data for m in reader.messages(["/robot1/env_step"])]
    span = (reader.topics and (lambda ts: (ts[-1] - ts[0]) / 1e9)(
        [m.timestamp for m in reader.messages(["/robot1/env_step"])]))
    rate = 2.0
    rclpy.init()
    try:
        sub = rclpy.create_node("replay_probe")
        got: dict[str, list] = {"env": [], "tr": []}
        deep = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        sub.create_subscription(EnvStep, "/robot1/env_step", lambda d: got["env"].append((time.perf_counter(), d)),
                                deep, raw=True)
        sub.create_subscription(Transition, "/transitions", lambda d: got["tr"].append(d), deep, raw=True)
        player_node = rclpy.create_node("replay")
        player = BagPlayer(player_node, reader, ReplayOptions(rate=rate, topics=["/robot1/env_step", "/transitions",
                                                                                 "/policy_weights"],
                                                              wait_for_subscribers_s=5.0))
        assert player.publishers["/policy_weights"].qos_profile.durability == qos(ct.POLICY_WEIGHTS).durability
        ex = SingleThreadedExecutor()
        ex.add_node(sub)
        result = {}
        th = threading.Thread(target=lambda: result.setdefault("stats", player.play()))
        th.start()
        while th.is_alive():
            ex.spin_once(timeout_sec=0.01)
        end = time.monotonic() + 10.0      # drain: wait for both topics (a loaded machine delivers late)
        while time.monotonic() < end and (len(got["env"]) < len(want) or
                                          len(got["tr"]) < recorded.pub.published["transitions"]):
            ex.spin_once(timeout_sec=0.01)
        assert [d for _, d in got["env"]] == want                  # every message, in order, bytes unchanged
        assert len(got["tr"]) == recorded.pub.published["transitions"]
        stats = result["stats"]
        assert stats.published["/robot1/env_step"] == len(want)
        assert stats.wall_s >= span / rate                        # paced: never ahead of the recorded schedule
        # the latched weights reach a subscriber that joins after the replay
        late = []
        sub.create_subscription(PolicyWeights, "/policy_weights", late.append, qos(ct.POLICY_WEIGHTS))
        end = time.monotonic() + 3.0
        while time.monotonic() < end and not late:
            ex.spin_once(timeout_sec=0.02)
        assert late and late[0].version == 7
        player.close()
        ex.shutdown()
    finally:
        rclpy.try_shutdown()


def _readable(bag) -> int:
    """Messages of a bag being written that a reader can already read (0 while nothing is on disk)."""
    try:
        return sum(1 for _ in BagReader(bag).messages())
    except BagError:
        return 0


def test_recorder_process_survives_sigint_and_sigkill(tmp_path):
    """The stand-alone recorder (`symphony-ros record`): Ctrl-C closes a valid bag; SIGKILL leaves a bag whose
    flushed chunks are readable and that repair() makes whole."""
    rclpy = _ros()
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Float64MultiArray
    from symphony_ros import contract as ct
    from symphony_ros.nodes.common import qos_profile as qos
    harness = ("import sys; sys.argv[0] = 'symphony-ros'; from test_bags import run_cli; "
               "sys.exit(run_cli(sys.argv[1:]))")
    results = {}
    rclpy.init()
    try:
        node = rclpy.create_node("cmd_publisher")
        pub = node.create_publisher(Float64MultiArray, "/robot1/joint_commands", qos(ct.JOINT_COMMANDS))
        ex = SingleThreadedExecutor()
        ex.add_node(node)
        for sig in (signal.SIGINT, signal.SIGKILL):
            bag = tmp_path / f"bag_{sig.name}"
            proc = subprocess.Popen([sys.executable, "-c", harness, "record", "-o", str(bag),
                                     "--flush-interval-s", "0.1"], cwd=ROOT / "test", env=_env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                end = time.monotonic() + 20
                while pub.get_subscription_count() == 0:
                    assert time.monotonic() < end and proc.poll() is None, "recorder did not subscribe"
                    ex.spin_once(timeout_sec=0.05)
                for i in range(60):
                    pub.publish(Float64MultiArray(data=[float(i)] * 3))
                    ex.spin_once(timeout_sec=0.01)
                end = time.monotonic() + 20   # wait until every message is in a chunk written to the file
                while _readable(bag) < 60:
                    assert time.monotonic() < end and proc.poll() is None, f"recorder wrote {_readable(bag)} of 60"
                    ex.spin_once(timeout_sec=0.05)
                proc.send_signal(sig)
                out, _ = proc.communicate(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.kill()
            results[sig] = (bag, proc.returncode, out)
    finally:
        rclpy.try_shutdown()
    from rosbags.rosbag2 import Reader
    bag, rc, out = results[signal.SIGINT]
    assert rc == 0, out
    with Reader(bag) as rd:
        assert rd.message_count == 60
    bag, rc, out = results[signal.SIGKILL]
    assert rc == -signal.SIGKILL
    r = BagReader(bag)
    assert r.damage and [T.deserialize(m.data, T.FLOAT64_MULTI_ARRAY).data[0] for m in r.messages()] == \
        [float(i) for i in range(60)]
    repair(bag)
    with Reader(bag) as rd:
        assert rd.message_count == 60


# ================================================================================================ the real graph
def test_real_graph_recording_reads_back_and_feeds_a_buffer(tmp_path):
    """The embedded graph (sim bridge, actor, learner, recorder: graph.build_graph(record=True)) records its own
    run; the bag holds every stored transition, the analysis finds no dropped step, and loading the bag into a
    fresh buffer gives back exactly the transitions on the wire (at least all sent before the drain)."""
    _ros()
    pytest.importorskip("gymnasium")
    from symphony_ros.bags.analysis import analyze
    from symphony_ros.bags.from_bag import load_transitions_into, read_transitions
    from symphony_ros.core.agent import SymphonyAgent
    from symphony_ros.core.config import load_preset
    from symphony_ros.training.embedded import EmbeddedGraph
    tiny = dict(hidden_dim=16, heads_per_critic=4, batch_size=12, n_exp=60, buffer_times=2, eval_episodes=0)
    g = EmbeddedGraph(preset="s3", env="Hopper-v5", out_dir=tmp_path, device="cpu", mode="lockstep", max_steps=150,
                      overrides=dict(tiny), record=True)
    try:
        learner = g.learner.learner
        end = time.monotonic() + 120
        while not learner.done and time.monotonic() < end:
            g.spin_once(0.01)
        assert learner.done, f"stored {learner.stored}"
        at_done = g.actors[0].transitions_sent
        end = time.monotonic() + 0.5     # the graph runs on; the recorder takes everything sent so far
        while time.monotonic() < end:
            g.spin_once(0.01)
        assert learner.stored == 150
    finally:
        g.shutdown()
    sent = g.actors[0].transitions_sent
    bag = tmp_path / "bag"
    r = BagReader(bag)
    assert not r.damage
    n = r.topics["/transitions"].count
    assert 150 <= at_done <= n <= sent      # none lost: at least what was sent before the drain
    res = analyze(r)
    robot = res["robots"]["/"]
    assert robot["timing"]["dropped_steps"] == 0 and robot["timing"]["unanswered_steps"] == 0
    assert robot["timing"]["transitions_missing"] == 0
    assert res["learner"]["samples"] >= 1
    cfg = load_preset("s3", dict(tiny, n_exp=1000))
    tr = read_transitions(bag)
    agent = SymphonyAgent(tr["observation"].shape[1], tr["action"].shape[1], cfg, device="cpu")
    assert load_transitions_into(agent, bag) == n == agent.buffer.length
    rows = agent.buffer.packed(slice(0, n))
    np.testing.assert_array_equal(rows[:, :tr["observation"].shape[1]].numpy(), tr["observation"])


def test_graph_learner_bootstraps_from_a_recorded_bag(tmp_path):
    """Train from bags inside the graph: a new graph whose learner gets `from_bag` stores exactly the bag's
    transitions at configure (before any live one), then keeps learning from live data."""
    _ros()
    pytest.importorskip("gymnasium")
    from symphony_ros.bags.from_bag import read_transitions
    from symphony_ros.training.embedded import EmbeddedGraph
    tiny = dict(hidden_dim=16, heads_per_critic=4, batch_size=12, n_exp=60, buffer_times=2, eval_episodes=0)
    first = EmbeddedGraph(preset="s3", env="Hopper-v5", out_dir=tmp_path / "first", device="cpu", mode="lockstep",
                          max_steps=90, overrides=dict(tiny), record=True)
    try:
        end = time.monotonic() + 120
        while not first.learner.learner.done and time.monotonic() < end:
            first.spin_once(0.01)
        assert first.learner.learner.done
        end = time.monotonic() + 4.0     # the graph runs on; the recorder (discovery period 1 s) keeps recording
        while time.monotonic() < end:
            first.spin_once(0.01)
    finally:
        first.shutdown()
    bag = tmp_path / "first" / "bag"
    tr = read_transitions(bag)
    n = len(tr["reward"])
    assert n >= 90
    second = EmbeddedGraph(preset="s3", env="Hopper-v5", out_dir=tmp_path / "second", device="cpu",
                           mode="lockstep", max_steps=n + 30, overrides=dict(tiny), from_bag=[str(bag)])
    try:
        learner = second.learner.learner
        buf = learner.agent.buffer
        # the bag was stored at configure: the first n rows ARE the bag's transitions (exploration ends after 60,
        # then rewards are divided by the frozen scale and rows beyond 60 go into the filled buffer)
        assert learner.stored == n and learner.rejected == 0 and learner.learning   # no live data yet (no spin)
        assert buf.reward_scale == pytest.approx(float(np.abs(tr["reward"][:60]).mean()), rel=1e-5)
        S, d = tr["observation"].shape[1], tr["action"].shape[1]
        rows = {buf.data[i, :S + d].numpy().tobytes() for i in range(buf.capacity)}
        bag_rows = [np.concatenate([tr["observation"][i], tr["action"][i]]).astype(np.float32).tobytes()
                    for i in range(n)]
        assert all(r in rows for r in bag_rows[-40:])                   # the newest bag rows (capacity is 120)
        live = {r for r in rows if r not in set(bag_rows)}
        assert not live                                                 # nothing but the bag so far
        end = time.monotonic() + 120
        while not learner.done and time.monotonic() < end:
            second.spin_once(0.01)
        assert learner.done and learner.stored == n + 30          # then 30 live transitions
        assert learner.updates == 3 * 30                          # lockstep: G per live transition only
    finally:
        second.shutdown()
