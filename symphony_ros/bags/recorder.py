"""A crash-safe, splitting rosbag2 writer (pure logic: no rclpy). The recorder node feeds it the raw CDR bytes.

Layout is rosbag2's own: one bag directory holding ``metadata.yaml`` and the storage files ``<bag>_0.mcap``,
``<bag>_1.mcap``, ... (or ``.db3`` with ``storage="sqlite3"``), written through rosbags' storage writers, with each
topic's message definition, RIHS01 type hash and offered QoS profiles (rosbag2 metadata version 9).

ROS distro
    ``ros_distro`` (humble, jazzy, kilted; default $ROS_DISTRO, else kilted) picks the format the bag is written in.
    jazzy/kilted: the above. humble: what Humble's rosbag2 writes and reads (:mod:`.distro`): metadata version 5
    without type_description_hash / custom_data / ros_distro, offered_qos_profiles as a YAML string with integer
    policies, sqlite3 by default with Humble's db3 schema (no message definitions, no metadata table). MCAP stays
    available for humble, but Humble reads it only with the ``ros-humble-rosbag2-storage-mcap`` plugin installed.

Crash safety
    MCAP: messages collect in an in-memory chunk that is written to the file, complete, when it reaches 1 MiB or
    when ``flush_interval`` seconds have passed (``flush()``), so a killed recorder loses at most the chunk in
    flight; ``fsync=True`` also survives a power cut. sqlite3: the transaction is committed at the same moments.
    ``metadata.yaml`` is rewritten (atomically) at every split and at close; a bag whose recorder was killed is still
    read by :class:`symphony_ros.bags.reader.BagReader`, and :func:`symphony_ros.bags.reader.repair` rewrites its
    last file and its ``metadata.yaml`` so that ``ros2 bag`` accepts it again.
Full disk
    A few MiB are reserved (a hidden ``.reserve`` file) when the bag opens. When a write fails (ENOSPC, EDQUOT, EIO),
    the torn chunk is cut off the file, the reserve is released, the file gets its index and ``metadata.yaml`` is
    written, and :class:`~symphony_ros.bags.BagWriteError` says what happened: a closed, valid bag, never a torn one.
"""
from __future__ import annotations

import collections
import errno
import io
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import BagError, BagWriteError
from .distro import (
    METADATA_VERSIONS,
    check_distro,
    default_storage,
    metadata_text,
    qos_text,
    storage_writer_class,
)

log = logging.getLogger(__name__)

STORAGES = ("mcap", "sqlite3")
EXTENSIONS = {"mcap": ".mcap", "sqlite3": ".db3"}
METADATA_VERSION = 9
_RECORD_OVERHEAD = 32          # bytes a message costs beyond its payload (MCAP record + index entry), for splitting


def _yaml():
    from ruamel.yaml import YAML
    y = YAML(typ="safe")
    y.default_flow_style = False
    y.width = 4096
    return y


def yaml_text(obj: Any) -> str:
    s = io.StringIO()
    _yaml().dump(obj, s)
    return s.getvalue()


def atomic_write_text(path: Path, text: str, fsync: bool = False) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)


def split_file_name(bag_name: str, index: int, storage: str) -> str:
    return f"{bag_name}_{index}{EXTENSIONS[storage]}"


# ---------------------------------------------------------------------------------------------- storage files
class _At:
    """Makes a rosbags storage writer (which names its file ``<dir>/<dir>.<ext>``) create ``file`` instead."""

    def __init__(self, file: Path) -> None:
        self.file, self.name = file, file.stem

    def __truediv__(self, _other: str) -> Path:
        return self.file


class _SafeFile:
    """Append-only file whose bytes reach the OS only in :meth:`flush`, all of them or an OSError; after a failure
    :meth:`truncate_to` cuts the file back to a known good offset. (A Python BufferedWriter's state after ENOSPC is
    undefined; this one's is exact.)"""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY)
        self.pos = os.lseek(self.fd, 0, os.SEEK_END)
        self.buf = bytearray()

    def write(self, data) -> int:
        self.buf += data
        return len(data)

    def tell(self) -> int:
        return self.pos + len(self.buf)

    def _os_write(self, view) -> int:   # one place to fail, so tests can inject a full disk
        return os.write(self.fd, view)

    def flush(self) -> None:
        data, written = bytes(self.buf), 0
        self.buf.clear()
        try:
            while written < len(data):
                n = self._os_write(data[written:] if written else data)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += n
        finally:
            self.pos += written
            if written < len(data):
                self.buf += data[written:]

    def truncate_to(self, offset: int) -> None:
        self.buf.clear()
        os.ftruncate(self.fd, offset)
        self.pos = os.lseek(self.fd, offset, os.SEEK_SET)

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd < 0:
            return
        try:
            self.flush()
        finally:
            os.close(self.fd)
            self.fd = -1


def _mcap_writer_class():
    from rosbags.rosbag2.storage_mcap import McapWriter, PendingChunk, write_channel, write_schema

    class McapFile(McapWriter):
        """rosbags' MCAP writer with crash-safe chunks: written whole at 1 MiB or on :meth:`flush`; a chunk whose
        write fails is cut off again (its messages counted in ``lost``), leaving a file that still closes validly."""

        def __init__(self, file: Path, compression, fsync: bool = False, chunk_bytes: int = 1 << 20) -> None:
            super().__init__(_At(file), compression)   # creates the file and writes the MCAP header
            self.chunk_bytes = min(int(chunk_bytes), 1 << 20)   # rosbags closes a chunk at 1 MiB anyway
            self.bio.close()
            self.bio = _SafeFile(file)
            self.fsync = fsync
            self.lost = 0
            self.messages = 0
            self._uncommitted: list[tuple[str, Any]] = []
            self._committed_times = (self.message_start_time, self.message_end_time)

        def add_msgtype(self, connection) -> None:
            super().add_msgtype(connection)
            self._uncommitted.append(("schema", self.schemas[-1]))

        def add_connection(self, connection, offered_qos_profiles: str) -> None:
            super().add_connection(connection, offered_qos_profiles)
            self._uncommitted.append(("channel", self.channels[-1]))

        def write(self, connection, timestamp: int, data) -> None:
            super().write(connection, timestamp, data)
            self.messages += 1
            if self.chunk.bio.tell() > self.chunk_bytes:
                self.close_chunk()

        def close_chunk(self) -> None:
            good, n_chunks, pending = self.bio.tell(), len(self.chunks), self.chunk
            try:
                super().close_chunk()
                self.bio.flush()
                if self.fsync:
                    self.bio.fsync()
            except OSError:
                self._rollback(good, n_chunks, pending)
                raise
            self._uncommitted.clear()
            self._committed_times = (self.message_start_time, self.message_end_time)

        def _rollback(self, good: int, n_chunks: int, pending) -> None:
            for cid, msgs in pending.msgs.items():
                self.channel_stats[cid] -= len(msgs)
                self.lost += len(msgs)
                self.messages -= len(msgs)
            del self.chunks[n_chunks:]
            self.bio.truncate_to(good)
            self.message_start_time, self.message_end_time = self._committed_times
            self.chunk = PendingChunk(2**63 - 1, 0, io.BytesIO(), collections.defaultdict(list))
            for kind, rec in self._uncommitted:   # definitions that were only in the lost chunk
                if kind == "schema":
                    write_schema(self.chunk.bio, rec)
                else:
                    write_channel(self.chunk.bio, rec, self.schemas)

        def flush(self) -> None:
            if self.chunk.msgs:
                self.close_chunk()

        def pending_messages(self) -> int:
            return sum(len(m) for m in self.chunk.msgs.values())

    return McapFile


def _sqlite_writer_class():
    from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer

    class Sqlite3File(Sqlite3Writer):
        """rosbags' sqlite3 writer, committing on :meth:`flush` (rosbags commits only at close); database errors
        become OSError so the recorder treats them like any write failure."""

        def __init__(self, file: Path, compression, fsync: bool = False, chunk_bytes: int = 0) -> None:
            super().__init__(_At(file), compression)
            if not fsync:
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self.pending = 0
            self.lost = 0
            self.messages = 0

        def write(self, connection, timestamp: int, data) -> None:
            try:
                super().write(connection, timestamp, data)
            except sqlite3.Error as exc:
                self._failed(exc)
            self.pending += 1
            self.messages += 1

        def flush(self) -> None:
            if not self.pending:
                return
            try:
                self.conn.commit()
            except sqlite3.Error as exc:
                self._failed(exc)
            self.pending = 0

        def _failed(self, exc: sqlite3.Error):
            try:
                self.conn.rollback()
            except sqlite3.Error:
                pass
            self.lost += self.pending
            self.messages -= self.pending
            self.pending = 0
            code = errno.ENOSPC if "full" in str(exc) else errno.EIO
            raise OSError(code, f"sqlite3: {exc}") from None

        def close(self, version: int, metadata: str) -> None:
            try:
                super().close(version, metadata)
            except sqlite3.Error as exc:
                self._failed(exc)

        def pending_messages(self) -> int:
            return self.pending

    return Sqlite3File


# ---------------------------------------------------------------------------------------------- recorder
@dataclass
class _Topic:
    name: str
    msgtype: str
    msgdef: str
    rihs01: str
    qos: list
    qos_yaml: str
    index: int
    count: int = 0
    connection: Any = None


@dataclass
class _FileInfo:
    path: str
    start: int = 2**63 - 1
    end: int = 0
    count: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class BagRecorder:
    """Writes one rosbag2 bag directory, split into several files by size and/or duration.

    Args: ``path`` (a new directory), ``storage`` "mcap" | "sqlite3" (default: sqlite3 for humble, else mcap),
    ``ros_distro`` humble | jazzy | kilted (the bag format; default $ROS_DISTRO, else kilted; see the module
    docstring), ``typestore`` (default: that distro's + ours),
    ``max_bag_size`` bytes per file (0 = no size split), ``max_bag_duration`` seconds per file (0 = none),
    ``flush_interval`` seconds between forced chunk writes/commits (bounds what a crash loses), ``fsync`` (survive
    power loss too), ``compression`` (zstd chunks, MCAP only), ``reserve_bytes`` kept free for closing the bag when
    the disk fills up, ``custom_data`` (strings stored in metadata.yaml).

    Use as a context manager or call :meth:`open` / :meth:`close`. :meth:`add_topic` before the first
    :meth:`write` of a topic. Not thread-safe: call it from one thread (the recorder node's executor)."""

    def __init__(self, path: str | Path, *, storage: str | None = None, typestore=None, max_bag_size: int = 0,
                 max_bag_duration: float = 0.0, flush_interval: float = 1.0, fsync: bool = False,
                 compression: bool = False, reserve_bytes: int = 4 << 20, chunk_bytes: int = 1 << 20,
                 custom_data: dict[str, str] | None = None, ros_distro: str | None = None) -> None:
        self.ros_distro = check_distro(ros_distro)
        storage = storage or default_storage(self.ros_distro)
        if storage not in STORAGES:
            raise BagError(f"unknown bag storage '{storage}'; choose one of {', '.join(STORAGES)}")
        if compression and storage != "mcap":
            raise BagError("compression is supported for the mcap storage only")
        if max_bag_size < 0 or max_bag_duration < 0 or flush_interval < 0:
            raise BagError("max_bag_size, max_bag_duration and flush_interval must be >= 0")
        from .typestore import get_typestore
        self.path = Path(path)
        self.name = self.path.name
        self.storage_id = storage
        self.typestore = typestore or get_typestore(self.ros_distro)
        self.max_bag_size = int(max_bag_size)
        self.max_bag_duration_ns = int(float(max_bag_duration) * 1e9)
        self.flush_interval = float(flush_interval)
        self.fsync = bool(fsync)
        self.compression = bool(compression)
        self.reserve_bytes = int(reserve_bytes)
        self.chunk_bytes = int(chunk_bytes)
        self.custom_data = {str(k): str(v) for k, v in (custom_data or {}).items()}
        self.topics: dict[str, _Topic] = {}
        self.files: list[_FileInfo] = []       # closed files
        self.current: _FileInfo | None = None
        self._storage = None
        self._file_bytes = 0
        self._last_flush = time.monotonic()
        self.lost = 0
        self._lost_closed: list[int] = []   # messages lost in files already closed
        self.error: BagWriteError | None = None
        self.closed = False
        self.opened = False
        self._reserve = self.path / ".reserve"

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "BagRecorder":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> "BagRecorder":
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise BagError(f"bag output {self.path} exists already; choose a new directory (rosbag2 never "
                           "overwrites a bag)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if self.reserve_bytes > 0:
                with open(self._reserve, "wb") as f:
                    f.truncate(0)
                    try:
                        os.posix_fallocate(f.fileno(), 0, self.reserve_bytes)
                    except (AttributeError, OSError):
                        f.write(b"\0" * self.reserve_bytes)
        except OSError as exc:
            raise BagWriteError(f"cannot create bag {self.path}: {exc.strerror or exc}") from None
        self.opened = True
        self._open_file()
        return self

    def _open_file(self) -> None:
        from rosbags.rosbag2.enums import CompressionMode
        index = len(self.files)
        file = self.path / split_file_name(self.name, index, self.storage_id)
        cls = storage_writer_class(self.ros_distro, self.storage_id)
        mode = CompressionMode.STORAGE if self.compression else CompressionMode.NONE
        try:
            self._storage = cls(file, mode, fsync=self.fsync, chunk_bytes=self.chunk_bytes)
        except OSError as exc:
            raise self._write_failed(exc, f"creating {file.name}")
        self.current = _FileInfo(file.name)
        self._file_bytes = 0
        added: set[str] = set()
        for t in self.topics.values():
            self._add_to_file(t, added)

    def _add_to_file(self, t: _Topic, added: set[str] | None = None) -> None:
        from rosbags.interfaces import Connection, ConnectionExtRosbag2, MessageDefinition, MessageDefinitionFormat
        t.connection = Connection(id=t.index, topic=t.name, msgtype=t.msgtype,
                                  msgdef=MessageDefinition(MessageDefinitionFormat.MSG, t.msgdef), digest=t.rihs01,
                                  msgcount=0, ext=ConnectionExtRosbag2("cdr", list(t.qos)), owner=None)
        types = added if added is not None else {x.msgtype for x in self.topics.values() if x is not t}
        if t.msgtype not in types:
            self._storage.add_msgtype(t.connection)
            types.add(t.msgtype)
        self._storage.add_connection(t.connection, t.qos_yaml)
        self.current.counts.setdefault(t.name, 0)

    def close(self) -> None:
        """Write the pending chunk, close the storage file and write metadata.yaml. Idempotent."""
        if self.closed or not self.opened:
            self.closed = True
            return
        self.closed = True
        try:
            self._close_file()
        except OSError as exc:   # the torn chunk was cut off; with the reserve released the index fits
            raise self._write_failed(exc, "closing the bag") from None
        finally:
            self._release_reserve()
        self._write_metadata()

    def _close_file(self) -> None:
        if self._storage is None:
            return
        info = self.current
        text = self._metadata_text(self.files + [info], inner=True)
        storage = self._storage
        before = storage.lost
        try:
            storage.close(METADATA_VERSIONS[self.ros_distro], text)
        finally:
            if storage.lost != before:
                self._resync_counts(storage)
        self._storage = None
        self._lost_closed.append(storage.lost)
        self.files.append(info)
        self.current = None

    def _release_reserve(self) -> None:
        try:
            self._reserve.unlink()
        except FileNotFoundError:
            pass

    # ------------------------------------------------------------------ topics and messages
    def add_topic(self, topic: str, msgtype: str, qos: Iterable = (), rihs01: str | None = None) -> str | None:
        """Register a topic (once). ``qos``: rosbags Qos profiles offered by its publishers. ``rihs01``: the type
        hash seen on the wire; returns a warning text when it differs from the definition this bag stores."""
        if topic in self.topics:
            return None
        if msgtype not in self.typestore.fielddefs:
            raise BagError(f"cannot record '{topic}': message type '{msgtype}' is unknown to the bag typestore")
        msgdef, _ = self.typestore.generate_msgdef(msgtype, ros_version=2)
        digest = self.typestore.hash_rihs01(msgtype)
        warning = None
        if rihs01 and rihs01 != digest:
            warning = (f"topic '{topic}': the publishers' type hash {rihs01} differs from the {msgtype} definition "
                       f"this package knows ({digest}); the bag stores the local definition")
        qos = list(qos)
        t = _Topic(topic, msgtype, msgdef, digest, qos, qos_text(self.ros_distro, qos), index=len(self.topics) + 1)
        self.topics[topic] = t
        if self._storage is not None:
            try:
                self._add_to_file(t)
            except OSError as exc:
                raise self._write_failed(exc, f"adding topic {topic}")
        return warning

    def write(self, topic: str, data: bytes | memoryview, timestamp: int | None = None) -> None:
        """Store one message's CDR bytes at ``timestamp`` (ns since the epoch; default: now)."""
        if self.error is not None:
            raise self.error
        if self._storage is None:
            raise BagError(f"bag {self.path} is not open")
        t = self.topics.get(topic)
        if t is None:
            raise BagError(f"topic '{topic}' was not added to bag {self.path}")
        ts = time.time_ns() if timestamp is None else int(timestamp)
        cur = self.current
        if cur.count and ((self.max_bag_size and self._file_bytes >= self.max_bag_size) or
                          (self.max_bag_duration_ns and ts - cur.start >= self.max_bag_duration_ns)):
            self.split()
            cur = self.current
        try:
            self._storage.write(t.connection, ts, data)
        except OSError as exc:
            raise self._write_failed(exc, f"writing to {cur.path}")
        t.count += 1
        cur.count += 1
        cur.counts[topic] = cur.counts.get(topic, 0) + 1
        cur.start, cur.end = min(cur.start, ts), max(cur.end, ts)
        self._file_bytes += len(data) + _RECORD_OVERHEAD
        if self.flush_interval and time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write the chunk in flight (MCAP) / commit (sqlite3) now."""
        self._last_flush = time.monotonic()
        if self._storage is None or self.error is not None:
            return
        try:
            self._storage.flush()
        except OSError as exc:
            raise self._write_failed(exc, f"writing to {self.current.path}")

    def split(self) -> None:
        """Close the current file and continue in the next one (metadata.yaml lists the closed files)."""
        try:
            self._close_file()
        except OSError as exc:
            raise self._write_failed(exc, "closing a split file")
        self._write_metadata()
        self._open_file()

    # ------------------------------------------------------------------ failure
    def _write_failed(self, exc: OSError, doing: str) -> BagWriteError:
        """Close the bag properly after a failed write and return the error to raise."""
        storage = self._storage
        if storage is not None and self.current is not None:
            self._resync_counts(storage)   # the storage already dropped the torn chunk / rolled back
        self._release_reserve()
        closed_ok = True
        try:
            if self._storage is not None:
                self._close_file()
            self._write_metadata()
        except OSError:
            closed_ok = False
        self.closed = True
        total = sum(t.count for t in self.topics.values())
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = "the disk is full"
        else:
            reason = f"an I/O error ({exc.strerror or exc})"
        try:
            free_txt = f"; {shutil.disk_usage(self.path).free / 2**20:.1f} MiB free now"
        except OSError:
            free_txt = ""
        if closed_ok:
            msg = (f"recording stopped: {reason} while {doing} (errno {exc.errno}{free_txt}). The bag {self.path} was "
                   f"closed properly and holds {total} messages; the {self.lost} messages of the chunk in flight "
                   f"were lost.")
        else:
            msg = (f"recording stopped: {reason} while {doing} (errno {exc.errno}{free_txt}), and the bag {self.path} "
                   f"could not be finalised; its written chunks ({total} messages) are readable: run `symphony-ros "
                   f"repair {self.path}` once there is free space.")
        self.error = BagWriteError(msg)
        log.error(msg)
        return self.error

    def _resync_counts(self, storage) -> None:
        """After the storage dropped messages (rollback), make per-topic/per-file counts match what it holds."""
        cur = self.current
        if hasattr(storage, "channel_stats"):   # MCAP: exact per channel
            for t in self.topics.values():
                if t.connection is not None and t.connection.id in storage.channel_stats:
                    held = storage.channel_stats[t.connection.id]
                    t.count -= cur.counts.get(t.name, 0) - held
                    cur.counts[t.name] = held
            cur.count = sum(cur.counts.values())
        else:   # sqlite3: recount the committed rows
            rows = storage.conn.execute("SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id").fetchall()
            held = {tid: n for tid, n in rows}
            for t in self.topics.values():
                n = held.get(t.connection.id, 0) if t.connection is not None else 0
                t.count -= cur.counts.get(t.name, 0) - n
                cur.counts[t.name] = n
            cur.count = sum(cur.counts.values())
        self.lost = sum(f_lost for f_lost in self._lost_closed) + storage.lost

    # ------------------------------------------------------------------ metadata
    def _metadata_text(self, files: list[_FileInfo], inner: bool = False) -> str:
        """metadata.yaml text in the bag's distro format (``inner``: without the top key, as the storage file keeps
        it)."""
        return metadata_text(self.ros_distro, self.storage_id, files, list(self.topics.values()), self.custom_data,
                             inner)

    def _write_metadata(self) -> None:
        atomic_write_text(self.path / "metadata.yaml", self._metadata_text(self.files), self.fsync)

    # ------------------------------------------------------------------ info
    @property
    def message_count(self) -> int:
        return sum(t.count for t in self.topics.values())

    def counts(self) -> dict[str, int]:
        return {t.name: t.count for t in self.topics.values()}

    def pending_messages(self) -> int:
        return self._storage.pending_messages() if self._storage is not None else 0


def build_metadata(storage: str, files: list[_FileInfo], topics: list[_Topic],
                   custom_data: dict[str, str] | None = None, ros_distro: str = "rosbags") -> dict[str, Any]:
    """rosbag2 metadata (version 9) of a bag made of ``files`` (with their per-topic counts). For Humble's version 5
    see :func:`symphony_ros.bags.distro.build_humble_metadata`."""
    from rosbags.rosbag2.metadata import dump_qos_v9
    used = [f for f in files]
    start = min((f.start for f in used if f.count), default=0)
    end = max((f.end for f in used if f.count), default=0)
    totals = {t.name: sum(f.counts.get(t.name, 0) for f in used) for t in topics}
    return {"rosbag2_bagfile_information": {
        "version": METADATA_VERSION,
        "storage_identifier": storage,
        "relative_file_paths": [f.path for f in used],
        "duration": {"nanoseconds": max(0, end - start)},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(totals.values()),
        "topics_with_message_count": [
            {"topic_metadata": {"name": t.name, "type": t.msgtype, "serialization_format": "cdr",
                                "offered_qos_profiles": dump_qos_v9(list(t.qos)),
                                "type_description_hash": t.rihs01},
             "message_count": totals[t.name]} for t in topics],
        "compression_format": "",
        "compression_mode": "",
        "files": [{"path": f.path,
                   "starting_time": {"nanoseconds_since_epoch": f.start if f.count else 0},
                   "duration": {"nanoseconds": max(0, f.end - f.start) if f.count else 0},
                   "message_count": f.count} for f in used],
        "custom_data": dict(custom_data) if custom_data else None,
        "ros_distro": ros_distro,
    }}
