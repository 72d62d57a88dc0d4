"""Replay a bag onto the graph (``symphony-ros replay``): :class:`BagPlayer` republishes a bag's raw CDR bytes through
an rclpy node with the recorded timing and QoS; the timing and QoS rules are the pure :mod:`symphony_ros.bags.replay`.
"""
from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path

from ..bags import BagError
from ..bags.reader import BagReader
from ..bags.replay import ReplayOptions, ReplayStats, replay_qos, schedule
from .common import qos_profile


def _message_class(msgtype: str):
    pkg, _, name = msgtype.replace("/msg/", "/").partition("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError):
        raise BagError(f"cannot replay type {msgtype}: its Python message package '{pkg}' is not installed") from None


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
            self.publishers[t] = node.create_publisher(cls, out, qos_profile(replay_qos(t, meta.qos)))
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
