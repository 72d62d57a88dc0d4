"""Bags for ROS 2 Humble (JetPack 6): the Humble writer's metadata.yaml key by key against Humble's field list, its
sqlite3 schema against the one Humble's rosbag2 creates (written out literally here), ``symphony-ros convert``
(round trip, atomic, refusing a non-empty --out, message types whose layout differs), reading a hand-made Humble
bag (metadata.yaml text and db3 tables written literally here, not by our writer) with BagReader, ``info`` and
``analyze``, and the recorder node's ``ros_distro`` parameter over real DDS (also as the graph's recorder spec).

The DDS test runs in a private network namespace like test_bags.py:
    unshare -n bash -c 'ip link set lo up; ROS_DOMAIN_ID=51 python -m pytest -q test/test_bags_humble.py'
What is not tested here: a real Humble ``ros2 bag`` opening these bags (none can be installed on this machine).
"""
from __future__ import annotations

import sqlite3
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (pip extra 'bags')")
pytest.importorskip("mcap", reason="mcap not installed (pip extra 'bags')")

from ruamel.yaml import YAML

from symphony_ros.bags import BagError
from symphony_ros.bags import distro as D
from symphony_ros.bags import typestore as T
from symphony_ros.bags.reader import BagReader, repair
from symphony_ros.bags.recorder import BagRecorder

# Humble's SqliteStorage::initialize() (rosbag2_storage_default_plugins 0.15), typed out again here on purpose
HUMBLE_DB3_SQL = {
    ("table", "topics"): "CREATE TABLE topics(id INTEGER PRIMARY KEY,name TEXT NOT NULL,type TEXT NOT NULL,"
                         "serialization_format TEXT NOT NULL,offered_qos_profiles TEXT NOT NULL)",
    ("table", "messages"): "CREATE TABLE messages(id INTEGER PRIMARY KEY,topic_id INTEGER NOT NULL,"
                           "timestamp INTEGER NOT NULL, data BLOB NOT NULL)",
    ("index", "timestamp_idx"): "CREATE INDEX timestamp_idx ON messages (timestamp ASC)",
}
HUMBLE_TOP_KEYS = ["version", "storage_identifier", "duration", "starting_time", "message_count",
                   "topics_with_message_count", "compression_format", "compression_mode", "relative_file_paths",
                   "files"]
HUMBLE_TOPIC_KEYS = ["name", "type", "serialization_format", "offered_qos_profiles"]
HUMBLE_QOS_KEYS = ["history", "depth", "reliability", "durability", "deadline", "lifespan", "liveliness",
                   "liveliness_lease_duration", "avoid_ros_namespace_conventions"]


def run_cli(argv: list[str]) -> int:
    from symphony_ros.cli import build_parser
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def _yaml(path: Path):
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _qos(reliability="RELIABLE", durability="VOLATILE", depth=10):
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )
    inf = QosTime(9223372036, 854775807)
    return Qos(QosHistory.KEEP_LAST, depth, QosReliability[reliability], QosDurability[durability], inf, inf,
               QosLiveliness.AUTOMATIC, inf, False)


TOPICS = {   # topic -> (type, offered QoS)
    "/robot1/joint_states": (T.JOINT_STATE, [_qos("BEST_EFFORT", depth=5)]),
    "/robot1/imu": (T.IMU, [_qos("BEST_EFFORT")]),
    "/robot1/joint_commands": (T.FLOAT64_MULTI_ARRAY, [_qos()]),
    "/clock": (T.CLOCK, [_qos(depth=1)]),
    "/robot1/env_step": (T.ENV_STEP, [_qos()]),
    "/policy_weights": (T.POLICY_WEIGHTS, [_qos(durability="TRANSIENT_LOCAL", depth=1),
                                           _qos(reliability="BEST_AVAILABLE", depth=1)]),
}


def _message(msgtype: str, i: int, ts=None) -> bytes:
    ts = ts or T.get_typestore()
    if msgtype == T.JOINT_STATE:
        return T.serialize(T.make(msgtype, ts, name=["a", "b"], position=np.array([i, -i], float),
                                  velocity=np.zeros(2), effort=np.zeros(0)), typestore=ts)
    if msgtype == T.IMU:
        m = T.make(msgtype, ts)
        m.angular_velocity.x = float(i)
        return T.serialize(m, typestore=ts)
    if msgtype == T.FLOAT64_MULTI_ARRAY:
        return T.serialize(T.make(msgtype, ts, data=np.full(3, i / 10.0)), typestore=ts)
    if msgtype == T.CLOCK:
        m = T.make(msgtype, ts)
        m.clock.sec = i
        return T.serialize(m, typestore=ts)
    if msgtype == T.ENV_STEP:
        return T.serialize(T.make(msgtype, ts, episode=0, step=i, reward=float(i), terminated=i == 9,
                                  observation=np.arange(4, dtype=np.float32) + i), typestore=ts)
    return T.serialize(T.make(msgtype, ts, version=i, data=np.arange(5, dtype=np.float32)), typestore=ts)


def _write_bag(path: Path, ros_distro: str, storage: str | None = None, n: int = 10, **kw) -> list[tuple]:
    """A bag with every TOPICS topic, n messages each; returns [(topic, timestamp, bytes)] in write order."""
    written = []
    with BagRecorder(path, ros_distro=ros_distro, storage=storage, **kw) as rec:
        for topic, (msgtype, qos) in TOPICS.items():
            rec.add_topic(topic, msgtype, qos)
        for i in range(n):
            for k, (topic, (msgtype, _)) in enumerate(TOPICS.items()):
                ts = 1_700_000_000_000_000_000 + i * 10_000_000 + k
                data = _message(msgtype, i)
                rec.write(topic, data, ts)
                written.append((topic, ts, data))
    return written


def _messages(bag: Path) -> list[tuple]:
    with BagReader(bag) as r:
        assert not r.damage, r.damage
        return [(m.topic, m.timestamp, bytes(m.data)) for m in r.messages()]


# ================================================================================================ the Humble writer
@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_humble_metadata_is_humbles_field_list_key_by_key(tmp_path, storage):
    bag = tmp_path / "hb"
    written = _write_bag(bag, "humble", storage, n=60, max_bag_size=4000)   # split into several files
    meta = _yaml(bag / "metadata.yaml")
    assert list(meta) == ["rosbag2_bagfile_information"]
    info = meta["rosbag2_bagfile_information"]
    assert list(info) == HUMBLE_TOP_KEYS                  # no extra key, none missing, Humble's order
    assert info["version"] == 5 and info["version"] <= 8
    assert info["storage_identifier"] == storage
    files = sorted((p.name for p in bag.iterdir() if p.suffix in (".db3", ".mcap")),
                   key=lambda s: int(s.rsplit("_", 1)[1].split(".")[0]))
    assert len(files) >= 3 and info["relative_file_paths"] == files
    assert [f["path"] for f in info["files"]] == files
    for f in info["files"]:
        assert list(f) == ["path", "starting_time", "duration", "message_count"]
        assert list(f["starting_time"]) == ["nanoseconds_since_epoch"] and list(f["duration"]) == ["nanoseconds"]
    assert sum(f["message_count"] for f in info["files"]) == info["message_count"] == len(written)
    assert info["starting_time"]["nanoseconds_since_epoch"] == written[0][1]
    assert info["duration"]["nanoseconds"] == written[-1][1] - written[0][1]
    assert info["compression_format"] == "" and info["compression_mode"] == ""
    assert [t["topic_metadata"]["name"] for t in info["topics_with_message_count"]] == list(TOPICS)
    for t in info["topics_with_message_count"]:
        assert list(t) == ["topic_metadata", "message_count"] and t["message_count"] == 60
        tm = t["topic_metadata"]
        assert list(tm) == HUMBLE_TOPIC_KEYS           # no type_description_hash
        assert tm["type"] == TOPICS[tm["name"]][0] and tm["serialization_format"] == "cdr"
        assert isinstance(tm["offered_qos_profiles"], str)
        profiles = YAML(typ="safe").load(tm["offered_qos_profiles"])
        assert len(profiles) == len(TOPICS[tm["name"]][1])
        for p, q in zip(profiles, TOPICS[tm["name"]][1]):
            assert list(p) == HUMBLE_QOS_KEYS
            assert all(type(p[k]) is int for k in ("history", "depth", "reliability", "durability", "liveliness"))
            assert p["history"] == 1 and p["depth"] == q.depth and p["liveliness"] == 1
            assert p["reliability"] == {"RELIABLE": 1, "BEST_EFFORT": 2, "BEST_AVAILABLE": 0}[q.reliability.name]
            assert p["durability"] == {"VOLATILE": 2, "TRANSIENT_LOCAL": 1}[q.durability.name]
            assert p["deadline"] == {"sec": 9223372036, "nsec": 854775807}
            assert p["avoid_ros_namespace_conventions"] is False
    assert D.check_metadata(meta, "humble") == []
    # the same metadata also reads back through rosbags' own rosbag2 reader (which knows version 5)
    from rosbags.rosbag2 import Reader
    with Reader(bag) as rd:
        assert rd.message_count == len(written)
        got = [(c.topic, ts, bytes(raw)) for c, ts, raw in rd.messages()]
    assert sorted(got) == sorted(written)
    assert sorted(_messages(bag)) == sorted(written)          # and through our tolerant reader


def test_the_field_check_fails_a_kilted_bag(tmp_path):
    """check_metadata is not a rubber stamp: a version-9 bag breaks it where Humble's parser breaks."""
    bag = tmp_path / "k"
    _write_bag(bag, "kilted", n=2)
    meta = _yaml(bag / "metadata.yaml")
    problems = "\n".join(D.check_metadata(meta, "humble"))
    assert "extra key 'custom_data'" in problems and "extra key 'ros_distro'" in problems
    assert "extra key 'type_description_hash'" in problems
    assert "Humble reads a string here, got list" in problems and "version is 9, humble writes 5" in problems
    assert D.check_metadata(meta, "kilted") == []


def test_humble_sqlite_schema_is_humbles(tmp_path):
    bag = tmp_path / "hb"
    written = _write_bag(bag, "humble", n=5)
    (db,) = bag.glob("*.db3")
    con = sqlite3.connect(db)
    try:
        rows = {(t, n): sql for t, n, sql in con.execute("SELECT type, name, sql FROM sqlite_master")}
        assert rows == HUMBLE_DB3_SQL           # no schema, metadata or message_definitions table
        assert [r[1] for r in con.execute("PRAGMA table_info(topics)")] == [
            "id", "name", "type", "serialization_format", "offered_qos_profiles"]
        topics = con.execute("SELECT id, name, type, serialization_format, offered_qos_profiles FROM topics "
                             "ORDER BY id").fetchall()
        assert [t[1] for t in topics] == list(TOPICS) and [t[0] for t in topics] == list(range(1, len(TOPICS) + 1))
        for _, name, msgtype, fmt, qos in topics:
            assert msgtype == TOPICS[name][0] and fmt == "cdr"
            assert D.check_humble_qos_text(qos) == []
        assert con.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == len(written)
    finally:
        con.close()


def test_distro_defaults_and_bad_names(monkeypatch, tmp_path):
    monkeypatch.setenv("ROS_DISTRO", "humble")
    rec = BagRecorder(tmp_path / "a")
    assert rec.ros_distro == "humble" and rec.storage_id == "sqlite3"
    monkeypatch.setenv("ROS_DISTRO", "rolling")          # not one we write: kilted
    rec = BagRecorder(tmp_path / "b")
    assert rec.ros_distro == "kilted" and rec.storage_id == "mcap"
    monkeypatch.delenv("ROS_DISTRO")
    assert BagRecorder(tmp_path / "c", ros_distro="humble", storage="mcap").storage_id == "mcap"
    with pytest.raises(BagError, match="unknown ROS distro 'foxy'.*humble, jazzy, kilted"):
        BagRecorder(tmp_path / "d", ros_distro="foxy")


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_repair_keeps_a_humble_bag_humble(tmp_path, storage):
    bag = tmp_path / "hb"
    written = _write_bag(bag, "humble", storage, n=8)
    (bag / "metadata.yaml").unlink()                    # as if the recorder died before closing: the format is
    with BagReader(bag) as r:                           # told from the storage file alone
        assert D.distro_of_bag(r) == "humble"
    rep = repair(bag)
    assert rep.messages == len(written)
    assert D.check_metadata(_yaml(bag / "metadata.yaml"), "humble") == []
    assert sorted(_messages(bag)) == sorted(written)
    kilted = tmp_path / "k"
    _write_bag(kilted, "kilted", storage, n=3)
    (kilted / "metadata.yaml").unlink()
    with BagReader(kilted) as r:
        assert D.distro_of_bag(r) == "kilted"
    repair(kilted)
    assert D.check_metadata(_yaml(kilted / "metadata.yaml"), "kilted") == []


def test_format_distro_and_recorded_distro(tmp_path):
    """A version-9 bag recorded on a Humble machine (custom_data.ros_distro) keeps its v9 format on repair, and
    convert takes its message definitions to be Humble's."""
    bag = tmp_path / "v9_on_humble"
    _write_bag(bag, "kilted", n=3, custom_data={"ros_distro": "humble"})
    with BagReader(bag) as r:
        assert D.distro_of_bag(r) == "kilted" and D.recorded_distro(r) == "humble"
    repair(bag)
    assert D.check_metadata(_yaml(bag / "metadata.yaml"), "kilted") == []
    from symphony_ros.bags.convert import convert_bag
    rep = convert_bag(bag, tmp_path / "o", ros_distro="humble")
    assert (rep.source_distro, rep.ros_distro, rep.storage, rep.messages) == ("humble", "humble", "sqlite3",
                                                                              3 * len(TOPICS))


# ================================================================================================ convert
def _assert_same_topics(a: Path, b: Path) -> None:
    with BagReader(a) as ra, BagReader(b) as rb:
        assert {n: (t.msgtype, t.count) for n, t in ra.topics.items()} == \
            {n: (t.msgtype, t.count) for n, t in rb.topics.items()}
        for n, t in ra.topics.items():
            assert [(q.reliability, q.durability, q.depth) for q in rb.topics[n].qos] == \
                [(q.reliability if q.reliability.name != "BEST_AVAILABLE" else type(q.reliability)(0),
                  q.durability, q.depth) for q in t.qos]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_convert_kilted_to_humble_round_trip(tmp_path, storage, capsys):
    src = tmp_path / "kilted"
    written = _write_bag(src, "kilted", storage, n=25, max_bag_size=6000)
    out = tmp_path / "for_humble"
    assert run_cli(["convert", str(src), "--ros-distro", "humble", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{len(written)} messages on {len(TOPICS)} topic(s)" in text
    assert D.check_metadata(_yaml(out / "metadata.yaml"), "humble") == []
    assert [p.suffix for p in out.iterdir() if p.suffix in (".db3", ".mcap")] == [".db3"]
    assert not list(tmp_path.glob(".for_humble.convert-*"))
    got, want = _messages(out), _messages(src)
    assert len(got) == len(written) and sorted(got) == sorted(written)   # topics, timestamps, bytes
    assert [m[:2] for m in got] == [m[:2] for m in want]                 # storage (receive-time) order kept
    _assert_same_topics(src, out)
    # and back: the Humble bag as a Kilted one gives the same messages again
    back = tmp_path / "back"
    assert run_cli(["convert", str(out), "--ros-distro", "kilted", "--out", str(back)]) == 0
    assert D.check_metadata(_yaml(back / "metadata.yaml"), "kilted") == []
    assert sorted(_messages(back)) == sorted(written)


def test_convert_refuses_a_non_empty_out_and_leaves_it_alone(tmp_path, capsys):
    src = tmp_path / "src"
    _write_bag(src, "kilted", n=3)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert run_cli(["convert", str(src), "--ros-distro", "humble", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an empty directory" in err[0] and str(out) in err[0]
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".out.convert-*"))
    empty = tmp_path / "empty"
    empty.mkdir()                                        # an empty directory is fine, as for record
    assert run_cli(["convert", str(src), "--ros-distro", "humble", "--out", str(empty)]) == 0
    assert (empty / "metadata.yaml").is_file()
    assert run_cli(["convert", str(tmp_path / "nope"), "--ros-distro", "humble", "--out", str(tmp_path / "x")]) \
        == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_convert_refuses_a_damaged_bag(tmp_path, capsys):
    src = tmp_path / "src"
    _write_bag(src, "kilted", n=50)
    (mcap,) = src.glob("*.mcap")
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    assert run_cli(["convert", str(src), "--ros-distro", "humble", "--out", str(tmp_path / "o")]) == 2
    assert "symphony-ros repair" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_recorded_types_have_the_same_cdr_layout_in_every_distro():
    ours = [T.JOINT_STATE, T.IMU, T.FLOAT64_MULTI_ARRAY, T.CLOCK, T.ENV_STEP, T.TRANSITION, T.POLICY_WEIGHTS,
            T.LEARNER_STATUS, T.LEARNER_ACK]
    for a in D.DISTROS:
        for b in D.DISTROS:
            assert D.layout_differences(ours, a, b) == {}
    # the comparison does find a real difference: sensor_msgs/Range gained `variance` after Humble
    diff = D.layout_differences(["sensor_msgs/msg/Range"], "kilted", "humble")
    assert "sensor_msgs/msg/Range" in diff["sensor_msgs/msg/Range"]
    hum, kil = T.get_typestore("humble"), T.get_typestore("kilted")
    assert [f for f, _ in kil.fielddefs["sensor_msgs/msg/Range"][1]] != \
        [f for f, _ in hum.fielddefs["sensor_msgs/msg/Range"][1]]


def test_convert_leaves_out_a_type_whose_layout_differs(tmp_path, capsys):
    src = tmp_path / "src"
    ts = T.get_typestore("kilted")
    rng = T.serialize(T.make("sensor_msgs/msg/Range", ts, range=1.5), typestore=ts)
    with BagRecorder(src, ros_distro="kilted") as rec:
        rec.add_topic("/range", "sensor_msgs/msg/Range", [_qos()])
        rec.add_topic("/clock", T.CLOCK, [_qos()])
        for i in range(4):
            rec.write("/range", rng, 10 + i)
            rec.write("/clock", _message(T.CLOCK, i), 20 + i)
    out = tmp_path / "o"
    assert run_cli(["convert", str(src), "--ros-distro", "humble", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "topic /range: sensor_msgs/msg/Range differs between kilted and humble" in cap.err
    assert "left out 4 messages of /range" in cap.out
    assert {m[0] for m in _messages(out)} == {"/clock"}
    kept = tmp_path / "kept"
    assert run_cli(["convert", str(src), "--ros-distro", "humble", "--out", str(kept), "--keep-incompatible"]) == 0
    assert "will not decode them correctly" in capsys.readouterr().err
    assert sorted(m for m in _messages(kept) if m[0] == "/range") == [("/range", 10 + i, rng) for i in range(4)]


# ================================================================================================ a Humble bag
HAND_MADE_QOS = ("- history: 1\n  depth: 10\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 9223372036\n"
                 "    nsec: 854775807\n  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n  liveliness: 1\n"
                 "  liveliness_lease_duration:\n    sec: 9223372036\n    nsec: 854775807\n"
                 "  avoid_ros_namespace_conventions: false")
T0 = 1_650_000_000_000_000_000


def _hand_made_humble_bag(root: Path) -> tuple[Path, list[tuple]]:
    """A bag as Humble's `ros2 bag record` leaves it: db3 tables and metadata.yaml written out literally here."""
    bag = root / "rosbag2_2022_05_01-12_00_00"
    bag.mkdir()
    db = bag / "rosbag2_2022_05_01-12_00_00_0.db3"
    con = sqlite3.connect(db)
    for sql in HUMBLE_DB3_SQL.values():
        con.execute(sql)
    con.execute("INSERT INTO topics VALUES (1, '/env_step', 'symphony_ros_interfaces/msg/EnvStep', 'cdr', ?)",
                (HAND_MADE_QOS,))
    con.execute("INSERT INTO topics VALUES (2, '/joint_commands', 'std_msgs/msg/Float64MultiArray', 'cdr', ?)",
                (HAND_MADE_QOS,))
    hum = T.get_typestore("humble")
    msgs = []
    for i in range(10):
        e = _message(T.ENV_STEP, i, hum)
        c = T.serialize(T.make(T.FLOAT64_MULTI_ARRAY, hum, data=np.array([1.0, -0.5, i / 10.0])), typestore=hum)
        for tid, topic, ts, data in ((1, "/env_step", T0 + i * 10_000_000, e),
                                     (2, "/joint_commands", T0 + i * 10_000_000 + 2_000_000, c)):
            con.execute("INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)", (tid, ts, data))
            msgs.append((topic, ts, data))
    con.commit()
    con.close()
    end = msgs[-1][1]
    qos_yaml = HAND_MADE_QOS.replace("\n", "\\n")
    (bag / "metadata.yaml").write_text(textwrap.dedent(f"""\
        rosbag2_bagfile_information:
          version: 5
          storage_identifier: sqlite3
          duration:
            nanoseconds: {end - T0}
          starting_time:
            nanoseconds_since_epoch: {T0}
          message_count: 20
          topics_with_message_count:
            - topic_metadata:
                name: /env_step
                type: symphony_ros_interfaces/msg/EnvStep
                serialization_format: cdr
                offered_qos_profiles: "{qos_yaml}"
              message_count: 10
            - topic_metadata:
                name: /joint_commands
                type: std_msgs/msg/Float64MultiArray
                serialization_format: cdr
                offered_qos_profiles: "{qos_yaml}"
              message_count: 10
          compression_format: ""
          compression_mode: ""
          relative_file_paths:
            - rosbag2_2022_05_01-12_00_00_0.db3
          files:
            - path: rosbag2_2022_05_01-12_00_00_0.db3
              starting_time:
                nanoseconds_since_epoch: {T0}
              duration:
                nanoseconds: {end - T0}
              message_count: 20
        """), encoding="utf-8")
    return bag, msgs


def test_hand_made_humble_bag_is_humbles_format():
    """The fixture itself passes the field check (so the reading tests below read Humble's format)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        bag, _ = _hand_made_humble_bag(Path(d))
        assert D.check_metadata(_yaml(bag / "metadata.yaml"), "humble") == []


def test_reading_a_hand_made_humble_bag(tmp_path, capsys):
    bag, msgs = _hand_made_humble_bag(tmp_path)
    with BagReader(bag) as r:
        assert not r.damage and r.metadata["version"] == 5
        assert {n: (t.msgtype, t.count) for n, t in r.topics.items()} == {
            "/env_step": (T.ENV_STEP, 10), "/joint_commands": (T.FLOAT64_MULTI_ARRAY, 10)}
        assert all(t.msgdef == "" for t in r.topics.values())        # Humble's db3 has no definitions
        q = r.topics["/env_step"].qos[0]
        assert (q.reliability.name, q.durability.name, q.depth) == ("RELIABLE", "VOLATILE", 10)
        assert [(m.topic, m.timestamp, m.data) for m in r.messages()] == msgs
        steps = [d.step for _, d in r.decoded(["/env_step"])]
        assert steps == list(range(10))
        assert r.duration_s == pytest.approx((msgs[-1][1] - T0) / 1e9)
    assert run_cli(["info", str(bag)]) == 0
    out = capsys.readouterr().out
    assert "Messages: 20" in out and "/env_step" in out and "sqlite3" in out
    rep_dir = tmp_path / "report"
    assert run_cli(["analyze", str(bag), "--out", str(rep_dir)]) == 0
    import json
    res = json.loads((rep_dir / "analysis.json").read_text())
    assert res["message_count"] == 20
    robot = res["robots"]["/"]
    assert robot["episodes"]["count"] == 1 and robot["episodes"]["return_last"] == pytest.approx(sum(range(1, 10)))
    assert robot["commands"]["count"] == 10
    # and a Humble bag converts to a Kilted one with the same messages
    out_bag = tmp_path / "kilted"
    assert run_cli(["convert", str(bag), "--ros-distro", "kilted", "--out", str(out_bag)]) == 0
    assert sorted(_messages(out_bag)) == sorted(msgs)
    assert D.check_metadata(_yaml(out_bag / "metadata.yaml"), "kilted") == []


# ================================================================================================ options
def test_record_and_train_options_reach_the_recorder_node():
    from symphony_ros.cli.bags import record_argv, recorder_parameters
    from symphony_ros.cli import build_parser
    from symphony_ros.graph import build_graph
    args = build_parser().parse_args(["record", "--ros-distro", "humble", "-o", "/tmp/x"])
    argv = record_argv(args)
    assert "ros_distro:='humble'" in argv and "storage:=''" in argv   # strings always quoted
    train = build_parser().parse_args(["train", "--record", "--record-ros-distro", "humble"])
    assert recorder_parameters(train) == {"ros_distro": "humble"}
    assert recorder_parameters(build_parser().parse_args(["train", "--record"])) == {}
    specs = build_graph(record=True, bag_dir="/tmp/b", obs_dim=OBS_DIM, act_dim=ACT_DIM,
                        recorder_parameters=recorder_parameters(train))
    (rec,) = [s for s in specs if s.executable == "recorder"]
    assert rec.parameters == {"output": "/tmp/b", "ros_distro": "humble"}


OBS_DIM, ACT_DIM = 11, 3


def test_recorder_node_writes_humble_bags_over_dds(tmp_path):
    """The recorder node, built from the graph's recorder spec with ros_distro humble, records real DDS traffic
    into a Humble bag whose QoS text carries the publishers' real offered profiles."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
    pytest.importorskip("sensor_msgs.msg", reason="ros-sensor-msgs not installed")
    pytest.importorskip("symphony_ros_interfaces.msg", reason="symphony_ros_interfaces not built")
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from symphony_ros.graph import build_graph
    from symphony_ros import contract as ct
    from symphony_ros.nodes.common import qos_profile as qos
    from symphony_ros.nodes.recorder import RecorderNode
    bag = tmp_path / "dds_humble"
    (spec,) = [s for s in build_graph(record=True, bag_dir=str(bag), obs_dim=OBS_DIM, act_dim=ACT_DIM,
                                      recorder_parameters={"ros_distro": "humble"}) if s.executable == "recorder"]
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    try:
        pub_node = rclpy.create_node("humble_pub", context=ctx)
        js = pub_node.create_publisher(JointState, "/robot1/joint_states", qos(ct.JOINT_STATES))
        cmd = pub_node.create_publisher(Float64MultiArray, "/robot1/joint_commands", qos(ct.JOINT_COMMANDS))
        rec = RecorderNode(cli_args=spec.ros_args() + ["-p", "discovery_period_s:=0.1"], context=ctx)
        assert rec.ros_distro == "humble" and rec.recorder.storage_id == "sqlite3"
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(pub_node)
        ex.add_node(rec)
        deadline = time.monotonic() + 15
        while js.get_subscription_count() == 0 or cmd.get_subscription_count() == 0:
            assert time.monotonic() < deadline, "the recorder did not subscribe"
            ex.spin_once(timeout_sec=0.05)
        n = 20
        for i in range(n):
            js.publish(JointState(name=["a"], position=[float(i)]))
            cmd.publish(Float64MultiArray(data=[float(i), -float(i)]))
            ex.spin_once(timeout_sec=0.01)
        deadline = time.monotonic() + 15
        while rec.counts.get("/robot1/joint_commands", 0) < n or rec.counts.get("/robot1/joint_states", 0) < 1:
            assert time.monotonic() < deadline, f"recorded only {rec.counts}"
            ex.spin_once(timeout_sec=0.05)
        ex.remove_node(rec)
        rec.destroy_node()
        ex.shutdown()
        pub_node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
    meta = _yaml(bag / "metadata.yaml")
    assert D.check_metadata(meta, "humble") == []
    tms = {t["topic_metadata"]["name"]: t for t in meta["rosbag2_bagfile_information"]["topics_with_message_count"]}
    assert tms["/robot1/joint_commands"]["message_count"] == n
    js_qos = YAML(typ="safe").load(tms["/robot1/joint_states"]["topic_metadata"]["offered_qos_profiles"])
    assert js_qos[0]["reliability"] == 2            # the sensor publisher offers best effort
    cmd_qos = YAML(typ="safe").load(tms["/robot1/joint_commands"]["topic_metadata"]["offered_qos_profiles"])
    assert cmd_qos[0]["reliability"] == 1 and cmd_qos[0]["durability"] == 2   # reliable, volatile
    # DDS discovery does not carry history/depth: unknown (3) and 0, as in the bags Humble's own recorder writes
    assert (cmd_qos[0]["history"], cmd_qos[0]["depth"]) == (3, 0)
    (db,) = bag.glob("*.db3")
    con = sqlite3.connect(db)
    try:
        assert {(t, nm): s for t, nm, s in con.execute("SELECT type, name, sql FROM sqlite_master")} == HUMBLE_DB3_SQL
    finally:
        con.close()
    with BagReader(bag) as r:
        vals = [list(d.data) for _, d in r.decoded(["/robot1/joint_commands"])]
    assert vals == [[float(i), -float(i)] for i in range(n)]
