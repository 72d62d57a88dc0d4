"""``recorder``: writes the graph's topics to a rosbag2 bag (MCAP by default, sqlite3 on request), from the raw CDR
bytes on the wire, through :class:`symphony_ros.bags.recorder.BagRecorder` (rosbags; splitting, crash-safe chunks,
clean stop on a full disk).

Which topics
    ``topics`` empty (default): every topic of the contract (:mod:`symphony_ros.contract`: joint_states, imu,
    env_step, joint_commands, transitions, policy_weights, learner_status, learner_ack) in any namespace, plus
    ``/clock``, found by polling the graph every ``discovery_period_s``; ``all_topics``: every topic whose type the bag
    typestore knows (ROS 2 standard messages and ours) except ``exclude``; or an explicit ``topics`` list (relative
    names resolve in the node's namespace).
QoS
    Contract topics are subscribed with the contract's profiles with deep queues: sensor data best
    effort, policy_weights latched (the learner's last snapshot arrives even when the recorder joins late),
    everything else reliable. Other topics follow their publishers (best effort if any publisher is). The bag stores
    the QoS the publishers offer, so ``ros2 bag play`` and ``symphony-ros replay`` republish latched topics latched.
Timestamps
    Receive time on the node's clock (system time, or sim time with ``use_sim_time``), like ``ros2 bag record``.
ROS distro
    ``ros_distro`` (humble, jazzy, kilted; '' = $ROS_DISTRO, else kilted) is the rosbag2 format written: humble
    gives what Humble's ``ros2 bag`` reads (metadata version 5, sqlite3 unless ``storage`` says mcap; see
    :mod:`symphony_ros.bags.distro`). ``storage`` '' = that distro's default (sqlite3 on humble, else mcap).
``min_interval``
    ``["policy_weights:10.0"]`` keeps at most one message per 10 s of that topic (basename or full name):
    multi-megabyte weight snapshots at the update rate would dwarf everything else. The count of skipped messages
    is logged at the end and stored in the bag's custom_data.
"""
from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rcl_interfaces.msg import ParameterDescriptor

from ..bags import BagError, BagWriteError
from ..bags.distro import DISTROS, check_distro, default_storage
from ..bags.recorder import STORAGES, BagRecorder
from ..bags.typestore import get_typestore
from .. import contract as C
from .common import ParamSpec, declare_parameters, log_at, qos_profile, run_node

NODE_NAME = "recorder"
RECORD_DEPTH = 1000   # subscription depth for contract topics (the recorder must not drop what the graph sends)
DEFAULT_EXCLUDE = ("/rosout", "/parameter_events")

PARAM_SPECS = [
    ParamSpec("output", "", "bag directory to create; '' = ./bags/symphony_<date>_<time>. An existing non-empty "
              "directory gets a _1, _2, ... suffix (a bag is never overwritten)", read_only=True),
    ParamSpec("storage", "", "storage format; '' = the ros_distro's default (humble: sqlite3, else mcap)",
              choices=("",) + STORAGES, read_only=True),
    ParamSpec("ros_distro", "", "rosbag2 format to write: humble (metadata v5, Humble's ros2 bag reads it), jazzy, "
              "kilted; '' = $ROS_DISTRO, else kilted", choices=("",) + DISTROS, read_only=True),
    ParamSpec("all_topics", False, "record every topic whose type is known (except 'exclude'), not only the "
              "contract topics", read_only=True),
    ParamSpec("max_bag_size_mb", 0.0, "split into a new file after this many MiB (0 = never)", lo=0.0, hi=1e7,
              read_only=True),
    ParamSpec("max_bag_duration_s", 0.0, "split into a new file after this many seconds (0 = never)", lo=0.0,
              hi=1e9, read_only=True),
    ParamSpec("flush_interval_s", 1.0, "write the chunk in flight at least this often: a crash loses at most this "
              "much (0 = only full 1 MiB chunks)", lo=0.0, hi=3600.0, read_only=True),
    ParamSpec("fsync", False, "fsync every chunk (survives a power cut, costs disk latency)", read_only=True),
    ParamSpec("compression", False, "zstd-compress MCAP chunks", read_only=True),
    ParamSpec("discovery_period_s", 1.0, "how often new topics are looked for", lo=0.05, hi=3600.0,
              read_only=True),
]
ARRAY_PARAMS = {
    "topics": "topics to record (empty = the contract topics in every namespace, or all with all_topics)",
    "exclude": "topics never recorded (full names); default /rosout, /parameter_events",
    "min_interval": "'topic:seconds' entries: record at most one message of that topic (basename or full name) "
                    "per interval",
}


def default_output() -> Path:
    return Path("bags") / datetime.now().strftime("symphony_%Y%m%d_%H%M%S")


def unique_output(path: Path) -> Path:
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    i = 1
    while True:
        p = path.with_name(f"{path.name}_{i}")
        if not p.exists():
            return p
        i += 1


def _basename(topic: str) -> str:
    return topic.rstrip("/").rsplit("/", 1)[-1]


def contract_topic(topic: str) -> C.Topic | None:
    """The contract topic a graph topic name is (any namespace; /clock by its absolute name), or None."""
    if topic == C.CLOCK.name:
        return C.CLOCK
    t = C.topic_by_basename(topic)
    return t if t is not None and t.scope != "global" else None


def subscription_qos(topic: str, offered: list[Any]) -> QoSProfile:
    """The QoS the recorder subscribes ``topic`` with: the contract's reliability and durability with a deep queue
    for contract topics, else one compatible with every publisher in ``offered`` (rclpy QoSProfiles)."""
    known = contract_topic(topic)
    if known is not None:
        q = known.qos
        return qos_profile(q if q.transient_local or q.depth >= RECORD_DEPTH else
                           C.QosSpec("record", reliable=q.reliable, depth=RECORD_DEPTH))
    best_effort = any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered)
    latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(depth=RECORD_DEPTH,
                      reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
                      history=HistoryPolicy.KEEP_LAST)


def rosbags_qos(q) -> Any:
    """rclpy QoSProfile (as offered by a publisher) → rosbags Qos for the bag's metadata."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    def t(d) -> QosTime:
        ns = int(d.nanoseconds)
        return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)

    def enum(cls, value, default):
        try:
            return cls[value.name.upper()]
        except (KeyError, AttributeError):
            return default
    return Qos(history=enum(QosHistory, q.history, QosHistory.UNKNOWN), depth=int(q.depth or 0),
               reliability=enum(QosReliability, q.reliability, QosReliability.UNKNOWN),
               durability=enum(QosDurability, q.durability, QosDurability.UNKNOWN),
               deadline=t(q.deadline), lifespan=t(q.lifespan),
               liveliness=enum(QosLiveliness, q.liveliness, QosLiveliness.UNKNOWN),
               liveliness_lease_duration=t(q.liveliness_lease_duration),
               avoid_ros_namespace_conventions=bool(q.avoid_ros_namespace_conventions))


class RecorderNode(Node):
    """Records topics to a bag from construction until :meth:`destroy_node` (which closes the bag)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        p = declare_parameters(self, PARAM_SPECS)
        arrays = {}
        for name, desc in ARRAY_PARAMS.items():
            self.declare_parameter(name, Parameter.Type.STRING_ARRAY,
                                   ParameterDescriptor(description=desc, read_only=True))
            try:
                value = self.get_parameter(name).value
            except ParameterUninitializedException:
                value = None
            arrays[name] = [v for v in (value or []) if v]
        self.ros_distro = check_distro(p["ros_distro"])
        storage = p["storage"] or default_storage(self.ros_distro)
        self.typestore = get_typestore(self.ros_distro)
        out = Path(p["output"]) if p["output"] else default_output()
        out = unique_output(out)
        self.explicit = [self._resolve(t) for t in arrays["topics"]]
        self.all_topics = bool(p["all_topics"])
        self.exclude = set(arrays["exclude"]) if arrays["exclude"] else set(DEFAULT_EXCLUDE)
        self.min_interval = self._parse_intervals(arrays["min_interval"])
        self.recorder = BagRecorder(out, storage=storage, typestore=self.typestore, ros_distro=self.ros_distro,
                                    max_bag_size=int(p["max_bag_size_mb"] * 2**20),
                                    max_bag_duration=p["max_bag_duration_s"], flush_interval=p["flush_interval_s"],
                                    fsync=p["fsync"], compression=p["compression"],
                                    custom_data={"recorded_by": "symphony_ros recorder",
                                                 "ros_distro": os.environ.get("ROS_DISTRO", "kilted")})
        self.recorder.open()
        self.output = out
        self.subscriptions_by_topic: dict[str, Any] = {}
        self.throttled: dict[str, int] = {}
        self._last_kept: dict[str, int] = {}
        self.failed: BagWriteError | None = None
        self._closed = False
        self.get_logger().info(f"recording to {out} ({storage}, {self.ros_distro} format)")
        self.discover()
        self._discovery_timer = self.create_timer(p["discovery_period_s"], self.discover)
        self._flush_timer = (self.create_timer(p["flush_interval_s"], self._flush) if p["flush_interval_s"] > 0
                             else None)

    # ------------------------------------------------------------------ setup helpers
    def _resolve(self, topic: str) -> str:
        try:
            return self.resolve_topic_name(topic)
        except Exception:  # older rclpy
            if topic.startswith("/"):
                return topic
            ns = self.get_namespace().rstrip("/")
            return f"{ns}/{topic}"

    @staticmethod
    def _parse_intervals(entries: list[str]) -> dict[str, int]:
        out = {}
        for e in entries:
            name, sep, secs = e.rpartition(":")
            try:
                value = float(secs)
                if not sep or not name or value < 0:
                    raise ValueError
            except ValueError:
                raise ValueError(f"parameter 'min_interval' entry {e!r} is not 'topic:seconds'") from None
            out[name] = int(value * 1e9)
        return out

    def wanted(self, topic: str) -> bool:
        if topic in self.exclude:
            return False
        if self.explicit:
            return topic in self.explicit
        if self.all_topics:
            return True
        return contract_topic(topic) is not None

    # ------------------------------------------------------------------ discovery
    def discover(self) -> None:
        """Subscribe to every wanted topic that has appeared since the last call."""
        if self.failed is not None or self._closed:
            return
        for topic, types in self.get_topic_names_and_types():
            if topic in self.subscriptions_by_topic or not self.wanted(topic):
                continue
            msgtype = next((t for t in types if t in self.typestore.fielddefs), None)
            if msgtype is None:
                self.subscriptions_by_topic[topic] = None   # unknown type: never retried
                self.get_logger().warning(f"not recording '{topic}': type {', '.join(types)} unknown to the "
                                          "bag typestore")
                continue
            self._subscribe(topic, msgtype)

    def _subscribe(self, topic: str, msgtype: str) -> None:
        infos = self.get_publishers_info_by_topic(topic)
        offered = [i.qos_profile for i in infos]
        hashes = {str(getattr(i, "topic_type_hash", "") or "") for i in infos} - {""}
        rihs = next(iter(hashes)) if len(hashes) == 1 else None
        try:
            warning = self.recorder.add_topic(topic, msgtype, [rosbags_qos(q) for q in offered], rihs01=rihs)
        except BagWriteError as exc:
            self._fail(exc)
            return
        except BagError as exc:
            self.get_logger().warning(str(exc))
            self.subscriptions_by_topic[topic] = None
            return
        if warning:
            self.get_logger().warning(warning)
        module, _, name = msgtype.replace("/msg/", "/").partition("/")
        try:
            import importlib
            cls = getattr(importlib.import_module(f"{module}.msg"), name)
        except (ImportError, AttributeError):
            self.get_logger().warning(f"not recording '{topic}': Python type {msgtype} is not installed")
            self.subscriptions_by_topic[topic] = None
            return
        interval = self.min_interval.get(topic, self.min_interval.get(_basename(topic), 0))
        callback = (lambda data, _t=topic: self._on_message(_t, data)) if not interval else \
            (lambda data, _t=topic, _i=interval: self._on_throttled(_t, _i, data))
        self.subscriptions_by_topic[topic] = self.create_subscription(
            cls, topic, callback, subscription_qos(topic, offered), raw=True)
        self.get_logger().info(f"recording {topic} [{msgtype}]")

    # ------------------------------------------------------------------ messages
    def _on_message(self, topic: str, data: bytes) -> None:
        if self.failed is not None:
            return
        try:
            self.recorder.write(topic, data, self.get_clock().now().nanoseconds)
        except BagWriteError as exc:
            self._fail(exc)

    def _on_throttled(self, topic: str, interval_ns: int, data: bytes) -> None:
        now = self.get_clock().now().nanoseconds
        last = self._last_kept.get(topic)
        if last is not None and now - last < interval_ns:
            self.throttled[topic] = self.throttled.get(topic, 0) + 1
            return
        self._last_kept[topic] = now
        self._on_message(topic, data)

    def _flush(self) -> None:
        if self.failed is not None or self._closed:
            return
        try:
            self.recorder.flush()
        except BagWriteError as exc:
            self._fail(exc)

    def _fail(self, exc: BagWriteError) -> None:
        """Stop recording after a write failure (the bag was already closed properly); the node stays up so the
        rest of the graph carries on."""
        if self.failed is not None:
            return
        self.failed = exc
        self.get_logger().error(str(exc))
        for sub in self.subscriptions_by_topic.values():
            if sub is not None:
                self.destroy_subscription(sub)
        self.subscriptions_by_topic = {t: None for t in self.subscriptions_by_topic}

    # ------------------------------------------------------------------ info / shutdown
    @property
    def counts(self) -> dict[str, int]:
        return self.recorder.counts()

    def _log(self, level: str, text: str) -> None:
        """Node logger while the context is up; stderr after a signal shut it down (rosout is gone then)."""
        if self.context.ok():
            log_at(self.get_logger(), level, text)
        else:
            print(f"[{level.upper()}] [{NODE_NAME}]: {text}", file=sys.stderr)

    def close(self) -> None:
        """Close the bag (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.throttled:
            self.recorder.custom_data["throttled_messages"] = ", ".join(f"{t}={n}" for t, n in self.throttled.items())
        try:
            self.recorder.close()
        except BagWriteError as exc:
            self._log("error", str(exc))
            return
        if self.failed is None:
            extra = (f"; skipped by min_interval: {self.throttled}" if self.throttled else "")
            self._log("info", f"bag {self.output} closed: {self.recorder.message_count} messages{extra}")

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    """``ros2 run symphony_ros recorder [--ros-args -p output:=DIR ...]``: record until Ctrl-C / SIGTERM.
    Returns 1 if a parameter is invalid or the bag cannot be created."""
    return run_node(RecorderNode, argv, name=NODE_NAME)



if __name__ == "__main__":
    sys.exit(main())
