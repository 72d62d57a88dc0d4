"""A rosbags Typestore that knows the ROS 2 standard messages and symphony_ros' own interfaces.

The package's messages are registered from their ``.msg`` text (``msg/`` is the single source of truth), so the
message definitions and RIHS01 type hashes written into bags are the ones rosidl generates for the built interface
package (checked in the tests against the installed ``share/symphony_ros_interfaces/msg/*.json``).
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from .. import contract

INTERFACES_PACKAGE = contract.INTERFACES_PACKAGE
OWN_TYPES = contract.OWN_MESSAGES
DISTROS = ("kilted", "jazzy", "humble")

# contract message types (full ROS 2 names, as rclpy's get_topic_names_and_types spells them)
ENV_STEP = contract.ENV_STEP.msgtype
TRANSITION = contract.TRANSITIONS.msgtype
POLICY_WEIGHTS = contract.POLICY_WEIGHTS.msgtype
LEARNER_STATUS = contract.LEARNER_STATUS.msgtype
LEARNER_ACK = contract.LEARNER_ACK.msgtype
FLOAT64_MULTI_ARRAY = contract.JOINT_COMMANDS.msgtype
JOINT_STATE = contract.JOINT_STATES.msgtype
IMU = contract.IMU.msgtype
CLOCK = contract.CLOCK.msgtype


class TypestoreError(RuntimeError):
    """The package's .msg files cannot be found or parsed."""


def msg_dir() -> Path:
    """The folder holding the package's ``*.msg`` files: $SYMPHONY_ROS_MSG_DIR, the source tree, the pip/colcon
    prefix's ``share/symphony_ros/msg`` or ``share/symphony_ros_interfaces/msg``, or any AMENT_PREFIX_PATH entry."""
    candidates: list[Path] = []
    if os.environ.get("SYMPHONY_ROS_MSG_DIR"):
        candidates.append(Path(os.environ["SYMPHONY_ROS_MSG_DIR"]))
    candidates.append(Path(__file__).resolve().parents[2] / "msg")
    prefixes = [Path(sys.prefix)] + [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for prefix in prefixes:
        candidates += [prefix / "share" / "symphony_ros" / "msg", prefix / "share" / INTERFACES_PACKAGE / "msg"]
    for c in candidates:
        if all((c / f"{name}.msg").is_file() for name in OWN_TYPES):
            return c
    raise TypestoreError("cannot find symphony_ros' msg/ folder (" + ", ".join(f"{n}.msg" for n in OWN_TYPES) +
                         "); looked in " + ", ".join(str(c) for c in candidates) + "; set SYMPHONY_ROS_MSG_DIR")


@functools.lru_cache(maxsize=None)
def get_typestore(distro: str = "kilted"):
    """rosbags Typestore of ``distro`` (kilted, jazzy or humble) with the package's messages registered. Cached."""
    from rosbags.typesys import Stores, get_types_from_msg
    from rosbags.typesys import get_typestore as _get

    stores = {"kilted": "ROS2_KILTED", "jazzy": "ROS2_JAZZY", "humble": "ROS2_HUMBLE"}
    if distro not in stores:
        raise ValueError(f"unknown ROS distro '{distro}' for the bag typestore; choose one of {', '.join(stores)}")
    store = _get(getattr(Stores, stores[distro]))
    folder = msg_dir()
    types = {}
    for name in OWN_TYPES:
        path = folder / f"{name}.msg"
        try:
            types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"{INTERFACES_PACKAGE}/msg/{name}"))
        except Exception as exc:  # rosbags raises its own parse errors
            raise TypestoreError(f"cannot parse {path}: {exc}") from None
    store.register(types)
    return store


def knows(msgtype: str, typestore=None) -> bool:
    """True if the typestore can (de)serialise ``msgtype`` ('pkg/msg/Name')."""
    return msgtype in (typestore or get_typestore()).fielddefs


def deserialize(data: bytes | memoryview, msgtype: str, typestore=None):
    """CDR bytes → rosbags message object (fields as attributes, numeric arrays as numpy arrays)."""
    return (typestore or get_typestore()).deserialize_cdr(data, msgtype)


def serialize(msg, msgtype: str | None = None, typestore=None) -> bytes:
    """rosbags message object → CDR bytes (little endian), as a ROS 2 publisher puts them on the wire."""
    ts = typestore or get_typestore()
    return bytes(ts.serialize_cdr(msg, msgtype or msg.__msgtype__))


def make(msgtype: str, typestore=None, **fields):
    """A rosbags message object of ``msgtype``; missing fields get ROS defaults (zeros, empty arrays/strings)."""
    ts = typestore or get_typestore()
    cls = ts.types[msgtype]
    for name, (kind, spec) in _fields(ts, msgtype):
        if name not in fields:
            fields[name] = _default(ts, kind, spec)
    return cls(**fields)


def _fields(ts, msgtype: str):
    return [(name, (desc[0], desc[1])) for name, desc in ts.fielddefs[msgtype][1]]


def _default(ts, kind, spec):
    import numpy as np
    from rosbags.typesys.base import Nodetype

    if kind == Nodetype.BASE:
        base = spec[0]
        if base == "string":
            return ""
        if base == "bool":
            return False
        return 0.0 if base.startswith("float") else 0
    if kind == Nodetype.NAME:
        return make(spec, ts)
    if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        (ikind, ispec), count = spec
        n = count if kind == Nodetype.ARRAY else 0
        if ikind == Nodetype.BASE and ispec[0] not in ("string",):
            dtype = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8, "float32": np.float32,
                     "float64": np.float64, "int8": np.int8, "uint8": np.uint8, "int16": np.int16,
                     "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64,
                     "uint64": np.uint64}[ispec[0]]
            return np.zeros(n, dtype=dtype)
        return [_default(ts, ikind, ispec) for _ in range(n)]
    raise TypestoreError(f"cannot build a default for field kind {kind}")
