"""What each ROS 2 distro's rosbag2 writes and reads: the metadata.yaml field lists, the QoS text, the sqlite3 schema.

Kilted and Jazzy write rosbag2 metadata **version 9**; Humble (rosbag2 0.15.x, the ROS 2 of JetPack 6) writes
**version 5** and cannot read version 9: its yaml-cpp decoder reads ``offered_qos_profiles`` with
``as<std::string>()``, and version 9 stores a YAML *list* there ("yaml-cpp: ... bad conversion"); it also expects
integer QoS policies (``node["history"].as<int>()``) where version 9 writes names ("keep_last").

Sources (read through the project's code search; public repository ros2/rosbag2 unless named otherwise)
    Humble metadata (version 5)
        * struct ``BagMetadata`` of the humble branch, ``int version = 5`` and its members (storage_identifier,
          relative_file_paths, files, duration, starting_time, message_count, topics_with_message_count,
          compression_format, compression_mode; no custom_data, no ros_distro):
          rosbag2_storage/include/rosbag2_storage/bag_metadata.hpp as documented at
          https://docs.ros.org/en/humble/p/rosbag2_storage/generated/structrosbag2__storage_1_1BagMetadata.html
        * struct ``TopicMetadata`` of the humble branch (name, type, serialization_format and
          ``std::string offered_qos_profiles`` "Serialized std::vector<rclcpp::QoS> as a YAML string"; no
          type_description_hash): rosbag2_storage/include/rosbag2_storage/topic_metadata.hpp, program listing at
          https://docs.ros.org/en/ros2_packages/humble/api/rosbag2_storage/generated/program_listing_file_include_rosbag2_storage_topic_metadata.hpp.html
        * the yaml-cpp converters of version 5 (encode order; decode: ``version >= 3`` compression_format/mode,
          ``version >= 4`` offered_qos_profiles as string, ``version >= 5`` files): the galactic/humble
          rosbag2_storage/src/rosbag2_storage/metadata_io.cpp, read in the backport youliangtan/rosbag2 at commit
          8fd49653be6b610a54fe4f4a68a4842240742fcf (the stored upstream ros2/rosbag2 versions of that file are the
          foxy one, commit dcfadb1fc1e0d60f1aef0a72c65938dc83710c17, with version 4 and no ``files``, and the
          later ones that moved the converters to rosbag2_storage/include/rosbag2_storage/yaml.hpp, commit
          02a70b4f76f0966f0089aa93fd97e3a68ed06b03 = version 8).
    Humble QoS text
        rosbag2_transport/src/rosbag2_transport/qos.cpp, ``convert<Rosbag2QoS>::encode``: history, depth,
        reliability, durability, deadline {sec, nsec}, lifespan, liveliness, liveliness_lease_duration,
        avoid_ros_namespace_conventions, the policies as ``static_cast<int>`` (the rmw enum values); the recorder
        stores ``YAML::Dump`` of the list of the publishers' profiles (a block sequence) as the string.
    Humble sqlite3 schema ("schema version 2": no ``schema``/``metadata``/``message_definitions`` tables)
        rosbag2_storage_default_plugins/src/rosbag2_storage_default_plugins/sqlite/sqlite_storage.cpp,
        ``SqliteStorage::initialize()`` of the 0.15 line (the version with storage_preset_profile "resilient",
        sqlite pragmas and seek); the ``schema`` table with ``schema_version`` 3 came with ros2/rosbag2 PR #1156
        (merged 2022-11-22, Iron), message definitions in the db3 file with PR #1293 (0.22.0, Iron).
    Version 9 (Jazzy, Kilted)
        rosbag2_storage/include/rosbag2_storage/yaml.hpp (commit 02a70b4f76f0966f0089aa93fd97e3a68ed06b03 has
        version 8; the version-9 file adds the QoS list of PR #1476 "Use enum values for offered_qos_profiles in
        code and string names in serialized metadata", rosbag2 0.25.0 = Jazzy); ``int version = 9`` at
        https://docs.ros.org/en/jazzy/p/rosbag2_storage/generated/structrosbag2__storage_1_1BagMetadata.html

Not verified here: no Humble rosbag2 can be installed on this machine (it needs Ubuntu 22.04 + ROS apt), so no
``ros2 bag info`` on Humble has opened a bag written by this module; the format is checked field by field against
the lists below, which were read from the sources above.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

from . import BagError

DISTROS = ("humble", "jazzy", "kilted")
DEFAULT_DISTRO = "kilted"

METADATA_VERSIONS = {"humble": 5, "jazzy": 9, "kilted": 9}

# -------------------------------------------------------------------------------------------- field lists
# Types: int, str, bool; a dict is a nested map (exactly these keys, in the order rosbag2 writes them); a one-element
# list is a sequence of that element; ``None`` in a tuple marks a value that may also be null.
_TIME = {"nanoseconds_since_epoch": int}
_DURATION = {"nanoseconds": int}
_QOS_TIME = {"sec": int, "nsec": int}

#: One entry of Humble's offered_qos_profiles text (rosbag2_transport qos.cpp, convert<Rosbag2QoS>::encode).
HUMBLE_QOS_FIELDS: dict[str, Any] = {
    "history": int,                     # rmw_qos_history_policy_t: 0 system_default, 1 keep_last, 2 keep_all, 3 unknown
    "depth": int,
    "reliability": int,                 # 0 system_default, 1 reliable, 2 best_effort, 3 unknown
    "durability": int,                  # 0 system_default, 1 transient_local, 2 volatile, 3 unknown
    "deadline": _QOS_TIME,
    "lifespan": _QOS_TIME,
    "liveliness": int,                  # 0 system_default, 1 automatic, 2 manual_by_node, 3 manual_by_topic, 4 unknown
    "liveliness_lease_duration": _QOS_TIME,
    "avoid_ros_namespace_conventions": bool,
}
#: The enum values Humble's rmw (6.1) defines, per integer QoS policy.
HUMBLE_QOS_ENUMS = {"history": range(4), "reliability": range(4), "durability": range(4), "liveliness": range(5)}

#: metadata.yaml ``rosbag2_bagfile_information`` as Humble's rosbag2 (0.15.x, version 5) writes it, in its order.
HUMBLE_METADATA_FIELDS: dict[str, Any] = {
    "version": int,                     # 5
    "storage_identifier": str,          # "sqlite3" (default) or "mcap" (ros-humble-rosbag2-storage-mcap)
    "duration": _DURATION,
    "starting_time": _TIME,
    "message_count": int,
    "topics_with_message_count": [{
        "topic_metadata": {
            "name": str,
            "type": str,
            "serialization_format": str,
            "offered_qos_profiles": str,    # a YAML document (HUMBLE_QOS_FIELDS list) inside a string
        },
        "message_count": int,
    }],
    "compression_format": str,
    "compression_mode": str,
    "relative_file_paths": [str],
    "files": [{
        "path": str,
        "starting_time": _TIME,
        "duration": _DURATION,
        "message_count": int,
    }],
}

#: One entry of version 9's offered_qos_profiles list (policies by name: "keep_last", "reliable", ...).
V9_QOS_FIELDS: dict[str, Any] = {
    "history": str, "depth": int, "reliability": str, "durability": str, "deadline": _QOS_TIME,
    "lifespan": _QOS_TIME, "liveliness": str, "liveliness_lease_duration": _QOS_TIME,
    "avoid_ros_namespace_conventions": bool,
}

#: metadata.yaml as Jazzy and Kilted write it (version 9), in their order.
KILTED_METADATA_FIELDS: dict[str, Any] = {
    "version": int,                     # 9
    "storage_identifier": str,
    "duration": _DURATION,
    "starting_time": _TIME,
    "message_count": int,
    "topics_with_message_count": [{
        "topic_metadata": {
            "name": str,
            "type": str,
            "serialization_format": str,
            "offered_qos_profiles": [V9_QOS_FIELDS],
            "type_description_hash": str,   # RIHS01_<sha256>
        },
        "message_count": int,
    }],
    "compression_format": str,
    "compression_mode": str,
    "relative_file_paths": [str],
    "files": [{"path": str, "starting_time": _TIME, "duration": _DURATION, "message_count": int}],
    "custom_data": ({str: str}, None),
    "ros_distro": str,
}
JAZZY_METADATA_FIELDS = KILTED_METADATA_FIELDS
METADATA_FIELDS = {"humble": HUMBLE_METADATA_FIELDS, "jazzy": JAZZY_METADATA_FIELDS,
                   "kilted": KILTED_METADATA_FIELDS}

#: The statements Humble's SqliteStorage::initialize() runs, verbatim (sqlite_master keeps them without the ';').
HUMBLE_SQLITE_SCHEMA = (
    ("CREATE TABLE topics(id INTEGER PRIMARY KEY,name TEXT NOT NULL,type TEXT NOT NULL,"
     "serialization_format TEXT NOT NULL,offered_qos_profiles TEXT NOT NULL);"),
    ("CREATE TABLE messages(id INTEGER PRIMARY KEY,topic_id INTEGER NOT NULL,timestamp INTEGER NOT NULL, "
     "data BLOB NOT NULL);"),
    "CREATE INDEX timestamp_idx ON messages (timestamp ASC);",
)


# -------------------------------------------------------------------------------------------- distro choice
def default_distro() -> str:
    """$ROS_DISTRO when it is humble, jazzy or kilted, else kilted."""
    env = os.environ.get("ROS_DISTRO", "").strip().lower()
    return env if env in DISTROS else DEFAULT_DISTRO


def check_distro(distro: str | None) -> str:
    """``distro`` validated (``None`` or '' = :func:`default_distro`); BagError naming the choices otherwise."""
    if not distro:
        return default_distro()
    d = str(distro).strip().lower()
    if d not in DISTROS:
        raise BagError(f"unknown ROS distro '{distro}' for the bag format; choose one of {', '.join(DISTROS)}")
    return d


def default_storage(distro: str) -> str:
    """The storage ``ros2 bag record`` of that distro uses by default: sqlite3 on Humble, MCAP later."""
    return "sqlite3" if distro == "humble" else "mcap"


def distro_of_metadata(meta: dict[str, Any] | None) -> str | None:
    """The distro whose *format* a ``rosbag2_bagfile_information`` dict is in: humble for version <= 8 (the
    versions Humble's parser reads: QoS as a string), else the ``ros_distro`` it names if jazzy, else kilted; None
    without metadata."""
    if not meta:
        return None
    try:
        version = int(meta.get("version", 0))
    except (TypeError, ValueError):
        return None
    if version <= 8:
        return "humble"
    return "jazzy" if str(meta.get("ros_distro") or "").lower() == "jazzy" else DEFAULT_DISTRO


def recorded_distro(reader) -> str:
    """The distro whose message definitions a bag's bytes follow: ``custom_data.ros_distro`` (the recorder node
    stores $ROS_DISTRO there) when it names one of DISTROS, else the distro of the bag's format."""
    name = str(((reader.metadata or {}).get("custom_data") or {}).get("ros_distro") or "").lower()
    return name if name in DISTROS else distro_of_bag(reader)


# -------------------------------------------------------------------------------------------- Humble texts
_HUMBLE_INT = {"BEST_AVAILABLE": 0}   # Iron+ policy value Humble's rmw does not have: offered as system default


def _humble_enum(value) -> int:
    return _HUMBLE_INT.get(getattr(value, "name", ""), int(getattr(value, "value", value)))


def humble_qos_dicts(qos: Iterable) -> list[dict[str, Any]]:
    """rosbags Qos profiles → Humble's QoS entries (integer policies, durations as {sec, nsec})."""
    out = []
    for q in qos:
        out.append({
            "history": _humble_enum(q.history),
            "depth": int(q.depth),
            "reliability": _humble_enum(q.reliability),
            "durability": _humble_enum(q.durability),
            "deadline": {"sec": int(q.deadline.sec), "nsec": int(q.deadline.nsec)},
            "lifespan": {"sec": int(q.lifespan.sec), "nsec": int(q.lifespan.nsec)},
            "liveliness": _humble_enum(q.liveliness),
            "liveliness_lease_duration": {"sec": int(q.liveliness_lease_duration.sec),
                                          "nsec": int(q.liveliness_lease_duration.nsec)},
            "avoid_ros_namespace_conventions": bool(q.avoid_ros_namespace_conventions),
        })
    return out


def humble_qos_yaml(qos: Iterable) -> str:
    """The ``offered_qos_profiles`` string Humble's recorder stores (YAML::Dump of the profile list, block style).
    No profiles give ``[]`` (an empty list: Humble's player then offers its default QoS)."""
    dicts = humble_qos_dicts(qos)
    return "\n".join(_emit(dicts, 0)) if dicts else "[]"


_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_/.\-]*")
_NOT_PLAIN = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "~"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _PLAIN.fullmatch(s) and s.lower() not in _NOT_PLAIN:
        return s
    return json.dumps(s)   # a YAML double-quoted scalar (JSON escapes are YAML escapes)


def _emit(node: Any, indent: int) -> list[str]:
    """yaml-cpp's block style: ``key: value``, nested maps indented by 2, sequences as ``- `` items."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines += _emit(v, indent + 2)
            else:
                text = "[]" if isinstance(v, list) else "{}" if isinstance(v, dict) else _scalar(v)
                lines.append(f"{pad}{k}: {text}")
    elif isinstance(node, list):
        for item in node:
            sub = _emit(item, indent + 2) if isinstance(item, (dict, list)) and item else [pad + "  " + _scalar(item)]
            lines.append(f"{pad}- {sub[0].lstrip()}")
            lines += sub[1:]
    return lines


def dump_humble_metadata(meta: dict[str, Any]) -> str:
    """metadata.yaml text of a ``{"rosbag2_bagfile_information": ...}`` dict, laid out as Humble's yaml-cpp writes
    it (the QoS text as a double-quoted string)."""
    return "\n".join(_emit(meta, 0)) + "\n"


def build_humble_metadata(storage: str, files: list, topics: list) -> dict[str, Any]:
    """Humble's metadata (version 5, HUMBLE_METADATA_FIELDS, nothing else) of a bag made of ``files`` (objects with
    path, start, end, count, counts) holding ``topics`` (objects with name, msgtype, qos)."""
    start = min((f.start for f in files if f.count), default=0)
    end = max((f.end for f in files if f.count), default=0)
    totals = {t.name: sum(f.counts.get(t.name, 0) for f in files) for t in topics}
    return {"rosbag2_bagfile_information": {
        "version": METADATA_VERSIONS["humble"],
        "storage_identifier": storage,
        "duration": {"nanoseconds": max(0, end - start)},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(totals.values()),
        "topics_with_message_count": [
            {"topic_metadata": {"name": t.name, "type": t.msgtype, "serialization_format": "cdr",
                                "offered_qos_profiles": humble_qos_yaml(t.qos)},
             "message_count": totals[t.name]} for t in topics],
        "compression_format": "",
        "compression_mode": "",
        "relative_file_paths": [f.path for f in files],
        "files": [{"path": f.path,
                   "starting_time": {"nanoseconds_since_epoch": f.start if f.count else 0},
                   "duration": {"nanoseconds": max(0, f.end - f.start) if f.count else 0},
                   "message_count": f.count} for f in files],
    }}


# -------------------------------------------------------------------------------------------- checking
def check_fields(value: Any, spec: Any, where: str = "rosbag2_bagfile_information") -> list[str]:
    """Problems of ``value`` against a field list (missing / extra keys, wrong types), one sentence each; [] = ok."""
    if isinstance(spec, tuple):   # alternatives, e.g. ({str: str}, None)
        results = [check_fields(value, s, where) if s is not None else ([] if value is None else ["x"])
                   for s in spec]
        return [] if any(not r for r in results) else [f"{where}: {value!r} matches none of the allowed forms"]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected a map, got {type(value).__name__}"]
        if len(spec) == 1 and next(iter(spec)) is str:   # {str: str}: any keys
            vt = next(iter(spec.values()))
            return [p for k, v in value.items() for p in check_fields(v, vt, f"{where}.{k}")]
        problems = [f"{where}: key '{k}' missing" for k in spec if k not in value]
        problems += [f"{where}: extra key '{k}'" for k in value if k not in spec]
        for k, s in spec.items():
            if k in value:
                problems += check_fields(value[k], s, f"{where}.{k}")
        return problems
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{where}: expected a sequence, got {type(value).__name__}"]
        return [p for i, v in enumerate(value) for p in check_fields(v, spec[0], f"{where}[{i}]")]
    if spec is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, spec)
    return [] if ok else [f"{where}: expected {spec.__name__}, got {type(value).__name__} {value!r}"]


def check_humble_qos_text(text: Any, where: str = "offered_qos_profiles") -> list[str]:
    """Problems of an offered_qos_profiles value as Humble reads it: a string holding a YAML list of
    HUMBLE_QOS_FIELDS entries with Humble's integer enum values."""
    if not isinstance(text, str):
        return [f"{where}: Humble reads a string here, got {type(text).__name__}"]
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    try:
        items = YAML(typ="safe").load(text)
    except YAMLError as exc:
        return [f"{where}: not YAML ({exc})"]
    problems = check_fields(items, [HUMBLE_QOS_FIELDS], where)
    for i, q in enumerate(items if isinstance(items, list) else []):
        for k, allowed in HUMBLE_QOS_ENUMS.items():
            if isinstance(q, dict) and isinstance(q.get(k), int) and q[k] not in allowed:
                problems.append(f"{where}[{i}].{k}: {q[k]} is not a Humble rmw value")
    return problems


def check_metadata(meta: dict[str, Any], distro: str) -> list[str]:
    """Problems of a loaded metadata.yaml (the whole document) against ``distro``'s field list."""
    if not isinstance(meta, dict) or set(meta) != {"rosbag2_bagfile_information"}:
        return ["metadata.yaml must hold exactly one key, rosbag2_bagfile_information"]
    info = meta["rosbag2_bagfile_information"]
    problems = check_fields(info, METADATA_FIELDS[distro])
    if isinstance(info, dict) and info.get("version") != METADATA_VERSIONS[distro]:
        problems.append(f"version is {info.get('version')!r}, {distro} writes {METADATA_VERSIONS[distro]}")
    if distro == "humble" and isinstance(info, dict):
        for i, t in enumerate(info.get("topics_with_message_count") or []):
            tm = (t or {}).get("topic_metadata") or {}
            problems += check_humble_qos_text(tm.get("offered_qos_profiles"),
                                              f"topics_with_message_count[{i}].offered_qos_profiles")
    return problems


# -------------------------------------------------------------------------------------------- Humble sqlite3
def humble_sqlite_writer_class():
    """The crash-safe sqlite3 writer (:mod:`.recorder`) creating Humble's db3 layout: HUMBLE_SQLITE_SCHEMA only, the
    QoS text in ``topics``, no message definitions, no metadata/schema tables."""
    import sqlite3

    from .recorder import _sqlite_writer_class

    base = _sqlite_writer_class()

    class HumbleSqlite3File(base):
        SQLITE_SCHEMA = "\n".join(HUMBLE_SQLITE_SCHEMA)

        def add_msgtype(self, connection) -> None:   # Humble's db3 has no message_definitions table
            pass

        def add_connection(self, connection, offered_qos_profiles: str) -> None:
            self.cursor.execute("INSERT INTO topics (id, name, type, serialization_format, offered_qos_profiles) "
                                "VALUES (?, ?, ?, ?, ?)", (connection.id, connection.topic, connection.msgtype,
                                                           connection.ext.serialization_format,
                                                           offered_qos_profiles))

        def close(self, version: int, metadata: str) -> None:   # no metadata table: commit and close (no
            try:                                                # PRAGMA optimize: it would add sqlite_stat1)
                self.conn.commit()
                self.conn.close()
            except sqlite3.Error as exc:
                self._failed(exc)

    return HumbleSqlite3File


# -------------------------------------------------------------------------------------------- message types
def _deps(ts, msgtype: str, acc: dict[str, Any]) -> None:
    if msgtype in acc or msgtype not in ts.fielddefs:
        return
    acc[msgtype] = ts.fielddefs[msgtype]
    for _, (kind, spec) in ts.fielddefs[msgtype][1]:
        for name in re.findall(r"'([A-Za-z0-9_]+/msg/[A-Za-z0-9_]+)'", repr(spec)):
            _deps(ts, name, acc)


def layout_differences(msgtypes: Iterable[str], src: str, dst: str) -> dict[str, str]:
    """Per message type whose CDR layout is not the same in the ``src`` and ``dst`` typestores (ours registered in
    both): a sentence saying why (the differing nested types, or that one side does not know it). Same layout =
    the same field definitions recursively, so the CDR bytes decode the same."""
    from .typestore import get_typestore
    a, b = get_typestore(src), get_typestore(dst)
    out: dict[str, str] = {}
    for t in sorted(set(msgtypes)):
        if t not in a.fielddefs or t not in b.fielddefs:
            missing = [d for d, ts in ((src, a), (dst, b)) if t not in ts.fielddefs]
            out[t] = f"{t} is unknown to the {' and '.join(missing)} typestore: its layout cannot be checked"
            continue
        da, db = {}, {}
        _deps(a, t, da)
        _deps(b, t, db)
        diff = sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))
        if diff:
            out[t] = f"{t} differs between {src} and {dst} in {', '.join(diff)}"
    return out


# -------------------------------------------------------------------------------------------- whole-bag helpers
def metadata_text(distro: str, storage: str, files: list, topics: list, custom_data: dict[str, str] | None = None,
                  inner: bool = False) -> str:
    """metadata.yaml text of ``distro``'s format (``inner``: the ``rosbag2_bagfile_information`` map alone, as the
    storage files keep it). ``custom_data`` exists from version 6 on, so humble drops it."""
    from .recorder import build_metadata, yaml_text
    if distro == "humble":
        meta = build_humble_metadata(storage, files, topics)
        return dump_humble_metadata(meta["rosbag2_bagfile_information"]).strip() if inner else \
            dump_humble_metadata(meta)
    meta = build_metadata(storage, files, topics, custom_data, distro)
    return yaml_text(meta["rosbag2_bagfile_information"]).strip() if inner else yaml_text(meta)


def qos_text(distro: str, qos: list) -> str:
    """The offered_qos_profiles text a storage file (MCAP channel / db3 topics row) keeps in ``distro``'s format."""
    if distro == "humble":
        return humble_qos_yaml(qos)
    from rosbags.rosbag2.metadata import dump_qos_v9

    from .recorder import yaml_text
    return yaml_text(dump_qos_v9(list(qos))).strip() if qos else "[]"


def storage_writer_class(distro: str, storage: str):
    """The crash-safe storage writer class (:mod:`.recorder`) for ``storage`` in ``distro``'s layout."""
    from .recorder import _mcap_writer_class, _sqlite_writer_class
    if storage == "mcap":
        return _mcap_writer_class()
    return humble_sqlite_writer_class() if distro == "humble" else _sqlite_writer_class()


def distro_of_file(path, storage: str) -> str | None:
    """humble if a storage file is in Humble's layout (db3 without the ``schema`` table; MCAP channels whose QoS
    text has integer policies), kilted for the later layout, None if it cannot be told."""
    import sqlite3
    try:
        if storage == "sqlite3":
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            finally:
                con.close()
            return "kilted" if "schema" in names else "humble" if "topics" in names else None
        from mcap.records import Channel
        from mcap.stream_reader import StreamReader
        from ruamel.yaml import YAML
        with open(path, "rb") as f:
            for rec in StreamReader(f).records:
                if isinstance(rec, Channel):
                    items = YAML(typ="safe").load(rec.metadata.get("offered_qos_profiles", "") or "[]")
                    if isinstance(items, list) and items and isinstance(items[0], dict):
                        return "humble" if isinstance(items[0].get("history"), int) else "kilted"
    except Exception:  # noqa: BLE001 - any unreadable/unparsable file just does not tell its distro
        return None
    return None


def distro_of_bag(reader) -> str:
    """The format a :class:`~symphony_ros.bags.reader.BagReader`'s bag is in: from its metadata.yaml, else from its
    first storage file that tells, else kilted."""
    d = distro_of_metadata(reader.metadata)
    if d:
        return d
    for fs in reader.files:
        d = distro_of_file(fs.read_path or fs.path, fs.storage)
        if d:
            return d
    return DEFAULT_DISTRO
