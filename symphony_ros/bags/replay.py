"""Republish a bag's topics with their recorded timing, as ``ros2 bag play`` does: the raw CDR bytes go back on the
wire unchanged, each topic with the QoS its publishers offered when it was recorded (a latched topic stays latched).

Options: ``rate`` (2.0 = twice as fast), ``loop``, ``topics`` (a filter), ``start_offset_s`` (skip the first
seconds of the bag), ``remap`` ({old: new} topic names), ``wait_for_subscribers_s`` (wait until every publisher is
matched, or the time is up, before the first message), ``delay_s`` (extra pause before starting).

:func:`schedule` is the pure timing logic and :func:`replay_qos` the QoS decision (tested without DDS); the player
that publishes through an rclpy node is :class:`symphony_ros.nodes.replay.BagPlayer`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from .. import contract
from .reader import BagMessage


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


def replay_qos(topic: str, offered: list[Any]) -> contract.QosSpec:
    """The QoS to republish ``topic`` with: the recorded publishers' reliability and durability (a latched topic
    stays latched), the contract depth of the topic (:mod:`symphony_ros.contract`) or 100."""
    from rosbags.interfaces import QosDurability, QosReliability
    known = contract.topic_by_basename(topic)
    base = known.qos if known is not None else None
    if not offered:
        return base or contract.QosSpec("replay", reliable=True, depth=100)
    best_effort = any(q.reliability == QosReliability.BEST_EFFORT for q in offered)
    latched = all(q.durability == QosDurability.TRANSIENT_LOCAL for q in offered)
    depth = base.depth if base is not None else 100
    return contract.QosSpec("replay", reliable=not best_effort, depth=1 if latched else depth,
                            transient_local=latched)
