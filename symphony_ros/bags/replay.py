"""Republish a bag's topics with their recorded timing, as ``ros2 bag play`` does: the raw CDR bytes go back on the
wire unchanged, each topic with the QoS its publishers offered when it was recorded (a latched topic stays latched).

Options: ``rate`` (2.0 = twice as fast), ``loop``, ``topics`` (a filter), ``start_offset_s`` (skip the first
seconds of the bag), ``remap`` ({old: new} topic names), ``wait_for_subscribers_s`` (wait until every publisher is
matched, or the time is up, before the first message), ``delay_s`` (extra pause before starting).

:func:`schedule` is the pure timing logic (tested without DDS); :class:`BagPlayer` publishes through an rclpy node.
"""
from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import BagError
from .reader import BagMessage, BagReader


@dataclass
class ReplayOptions:
    rate: float = 1.0
    loop: bool = False
    topics: list[str] | None = None
    start_offset_s: float = 0.0
    remap: dict[str, str] = field(default_factory=dict)
    wait_for_subscribers_s: float = 0.0
    delay_s: float = 0.0

    def check(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"replay rate must be > 0, got {self.rate}")
        if self.start_offset_s < 0 or self.delay_s < 0 or self.wait_for_subscribers_s < 0:
            raise ValueError("start offset, delay and wait time must be >= 0")


@dataclass
class ReplayStats:
    published: dict[str, int] = field(default_factory=dict)
    loops: int = 0
    wall_s: float = 0.0
    max_late_s: float = 0.0     # worst lateness of a publication against its schedule
    damage: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.published.values())


def schedule(messages: Iterable[BagMessage], rate: float = 1.0, start_offset_ns: int = 0
             ) -> Iterator[tuple[float, BagMessage]]:
    """(seconds after playback start, message): recorded time since the bag's first message (``start_offset_ns``
    later) divided by ``rate``. Messages before the offset are skipped; a timestamp that goes backwards (storage
    order of a repaired/crashed file) is due at once."""
    t0 = None
    for m in messages:
        if t0 is None:
            t0 = m.timestamp + start_offset_ns
        if m.timestamp < t0:
            continue
        yield (m.timestamp - t0) / 1e9 / rate, m


def _message_class(msgtype: str):
    pkg, _, name = msgtype.replace("/msg/", "/").partition("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError):
        raise BagError(f"cannot replay type {msgtype}: its Python message package '{pkg}' is not installed") from None


def publisher_qos(topic: str, offered: list[Any]):
    """rclpy QoSProfile to republish ``topic``: the recorded publishers' reliability and durability (latched stays
    latched), the contract depth (:mod:`symphony_ros.nodes.common`) or 100."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from ..nodes import common as C
    from rosbags.interfaces import QosDurability, QosReliability
    base = topic.rstrip("/").rsplit("/", 1)[-1]
    contract = {C.TOPIC_JOINT_STATES: C.QOS_SENSOR, C.TOPIC_IMU: C.QOS_SENSOR, C.TOPIC_ENV_STEP: C.QOS_ENV_STEP,
                C.TOPIC_JOINT_COMMANDS: C.QOS_COMMAND, C.TOPIC_TRANSITIONS: C.QOS_TRANSITIONS,
                C.TOPIC_POLICY_WEIGHTS: C.QOS_LATCHED, C.TOPIC_LEARNER_STATUS: C.QOS_RELIABLE,
                C.TOPIC_LEARNER_ACK: C.QOS_ACK}.get(base)
    if not offered:
        return contract or QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    best_effort = any(q.reliability == QosReliability.BEST_EFFORT for q in offered)
    latched = all(q.durability == QosDurability.TRANSIENT_LOCAL for q in offered)
    depth = contract.depth if contract is not None else 100
    return QoSProfile(depth=1 if latched else depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class BagPlayer:
    """Publishes a bag through ``node`` (any rclpy node; the CLI makes one called 'replay')."""

    def __init__(self, node, bag: str | Path | BagReader, options: ReplayOptions | None = None) -> None:
        self.node = node
        self.opts = options or ReplayOptions()
        self.opts.check()
        self.reader = bag if isinstance(bag, BagReader) else BagReader(bag)
        names = list(self.reader.topics)
        if self.opts.topics:
            missing = [t for t in self.opts.topics if t not in self.reader.topics]
            if missing:
                raise BagError(f"topic(s) {', '.join(missing)} not in bag {self.reader.path} (it has "
                               f"{', '.join(sorted(names))})")
            names = [t for t in names if t in self.opts.topics]
        self.topics = names
        self.publishers = {}
        for t in names:
            meta = self.reader.topics[t]
            cls = _message_class(meta.msgtype)
            out = self.opts.remap.get(t, t)
            self.publishers[t] = node.create_publisher(cls, out, publisher_qos(t, meta.qos))
        self.stop_event = threading.Event()

    def wait_for_subscribers(self, timeout_s: float) -> bool:
        """Wait until every publisher has at least one subscription (or the timeout). True if all matched."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not self.stop_event.is_set():
            if all(p.get_subscription_count() > 0 for p in self.publishers.values()):
                return True
            time.sleep(0.01)
        return all(p.get_subscription_count() > 0 for p in self.publishers.values())

    def play(self) -> ReplayStats:
        """Publish until the bag ends (or forever with ``loop``, until :attr:`stop_event` is set)."""
        stats = ReplayStats({t: 0 for t in self.topics})
        if self.opts.wait_for_subscribers_s:
            self.wait_for_subscribers(self.opts.wait_for_subscribers_s)
        if self.opts.delay_s:
            self.stop_event.wait(self.opts.delay_s)
        wall0 = time.perf_counter()
        offset_ns = int(self.opts.start_offset_s * 1e9)
        try:
            self._play(stats, offset_ns)
        except KeyboardInterrupt:
            self.stop_event.set()
        stats.wall_s = time.perf_counter() - wall0
        stats.damage = list(self.reader.damage)
        return stats

    def _play(self, stats: ReplayStats, offset_ns: int) -> None:
        while not self.stop_event.is_set():
            start = time.perf_counter()
            n_loop = 0
            for due, m in schedule(self.reader.messages(self.topics), self.opts.rate, offset_ns):
                wait = start + due - time.perf_counter()
                if wait > 0:
                    if self.stop_event.wait(wait):
                        break
                else:
                    stats.max_late_s = max(stats.max_late_s, -wait)
                self.publishers[m.topic].publish(m.data)
                stats.published[m.topic] += 1
                n_loop += 1
            stats.loops += 1
            if not self.opts.loop or n_loop == 0:
                break

    def close(self) -> None:
        for p in self.publishers.values():
            self.node.destroy_publisher(p)
        self.publishers.clear()


def replay(bag: str | Path, options: ReplayOptions | None = None, *, linger_s: float = 0.5) -> ReplayStats:
    """Stand-alone replay (``symphony-ros replay``): its own rclpy context and node 'replay'. Ctrl-C stops it."""
    import rclpy
    rclpy.init()
    node = None
    player = None
    try:
        node = rclpy.create_node("replay")
        player = BagPlayer(node, bag, options)
        for d in player.reader.damage:
            node.get_logger().error(d)
        stats = player.play()
        time.sleep(linger_s)   # let reliable/latched samples reach their readers before the publishers go
        return stats
    finally:
        if player is not None:
            player.close()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
