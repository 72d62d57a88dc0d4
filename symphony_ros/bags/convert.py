"""Rewrite a bag in another ROS distro's rosbag2 format (``symphony-ros convert``), e.g. a Kilted/Jazzy bag
(metadata version 9, MCAP or sqlite3) as one Humble's ``ros2 bag`` opens (version 5, sqlite3 by default).

Messages are copied as they are: same topics, same timestamps (the recorder's receive times), same CDR bytes, in
the source's storage order. Only the container changes (:mod:`.distro`): metadata.yaml, the QoS text, the storage
file layout. CDR bytes mean the same in both distros only when the message type has the same layout there;
:func:`symphony_ros.bags.distro.layout_differences` compares the two typestores (ours registered in both from the
same ``.msg`` files). For the types this package records (sensor_msgs/JointState, sensor_msgs/Imu,
std_msgs/Float64MultiArray, rosgraph_msgs/Clock and the symphony_ros_interfaces messages) the layouts are
identical in humble, jazzy and kilted; a topic whose type differs (e.g. sensor_msgs/Range, which gained a
``variance`` field after Humble) is left out with a warning, unless ``keep_incompatible``.

Atomic: the new bag is written into a hidden temporary directory next to ``out``, read back and counted, and only
then renamed to ``out``; a failure leaves no ``out`` behind. A non-empty ``out`` is refused.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import BagError


@dataclass
class ConvertReport:
    source: Path
    out: Path
    source_distro: str
    ros_distro: str
    storage: str
    messages: int = 0
    topics: dict[str, int] = field(default_factory=dict)          # topic -> messages copied
    skipped: dict[str, int] = field(default_factory=dict)         # topic -> messages left out
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        s = (f"converted {self.source} ({self.source_distro}) -> {self.out} ({self.ros_distro}, {self.storage}): "
             f"{self.messages} messages on {len(self.topics)} topic(s)")
        if self.skipped:
            s += f"; left out {sum(self.skipped.values())} messages of {', '.join(sorted(self.skipped))}"
        return s


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BagError(f"--out {out} exists and is not an empty directory; choose a new one (convert never "
                       "overwrites)")


def convert_bag(source: str | Path, out: str | Path, *, ros_distro: str = "humble", storage: str | None = None,
                from_distro: str | None = None, keep_incompatible: bool = False) -> ConvertReport:
    """Write the bag ``source`` (directory or storage file) as a new bag ``out`` in ``ros_distro``'s format.

    ``storage``: mcap | sqlite3, default that distro's (sqlite3 for humble; Humble reads MCAP only with the
    ros-humble-rosbag2-storage-mcap plugin). ``from_distro``: the distro whose message definitions the source
    bytes follow (default: what the source's metadata says, see :func:`.distro.recorded_distro`).
    Raises BagError (one sentence) for a missing/damaged source, a non-empty ``out``, an unknown distro."""
    from .distro import (
        check_distro,
        default_storage,
        layout_differences,
        recorded_distro,
    )
    from .reader import BagReader
    from .recorder import STORAGES, BagRecorder
    from .typestore import get_typestore

    source, out = Path(source), Path(out)
    target = check_distro(ros_distro)
    storage = storage or default_storage(target)
    if storage not in STORAGES:
        raise BagError(f"unknown bag storage '{storage}'; choose one of {', '.join(STORAGES)}")
    _check_out(out)
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise BagError(f"--out {out} must not be the source bag {source} or inside it")
    reader = BagReader(source)
    try:
        if reader.damaged:
            raise BagError(f"bag {source} is damaged ({reader.damage[0]}); run `symphony-ros repair {source}` "
                           "first, then convert")
        src = check_distro(from_distro) if from_distro else recorded_distro(reader)
        rep = ConvertReport(source, out, src, target, storage)
        differ = layout_differences({t.msgtype for t in reader.topics.values()}, src, target)
        known = get_typestore(target).fielddefs
        keep: list[str] = []
        for name, t in reader.topics.items():
            if t.msgtype not in known:
                rep.skipped[name] = t.count
                rep.warnings.append(f"topic {name}: type {t.msgtype} is unknown to the {target} typestore; left out")
            elif t.msgtype in differ and not keep_incompatible:
                rep.skipped[name] = t.count
                rep.warnings.append(f"topic {name}: {differ[t.msgtype]}; its {t.count} messages are left out "
                                    "(--keep-incompatible copies the bytes anyway)")
            else:
                if t.msgtype in differ:
                    rep.warnings.append(f"topic {name}: {differ[t.msgtype]}; bytes copied as they are "
                                        f"(--keep-incompatible): {target} will not decode them correctly")
                keep.append(name)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.convert-", dir=out.parent))
        try:
            bag = tmp / out.name
            wanted = set(keep)
            with BagRecorder(bag, storage=storage, ros_distro=target, flush_interval=0.0) as rec:
                for name in keep:
                    t = reader.topics[name]
                    rec.add_topic(name, t.msgtype, t.qos)
                for m in reader.messages(wanted):
                    rec.write(m.topic, m.data, m.timestamp)
                    rep.topics[m.topic] = rep.topics.get(m.topic, 0) + 1
            rep.messages = sum(rep.topics.values())
            for name in keep:
                rep.topics.setdefault(name, 0)
            with BagReader(bag) as check:      # read the result back before it replaces anything
                if check.damaged or check.message_count != rep.messages:
                    raise BagError(f"the converted bag reads back {check.message_count} messages instead of "
                                   f"{rep.messages}" + (f" ({check.damage[0]})" if check.damage else ""))
            _check_out(out)                    # nobody created it meanwhile
            if out.exists():
                out.rmdir()
            os.rename(bag, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        reader.close()
    return rep
