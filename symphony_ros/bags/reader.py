"""Read rosbag2 bags (MCAP or sqlite3), including the ones a crash, a full disk or a copy cut short left behind.

:class:`BagReader` opens a bag directory (with or without ``metadata.yaml``) or one storage file. Complete files
are read through their index; a truncated or corrupt file is read record by record up to the damage, and every
problem found is kept in :attr:`BagReader.damage` as one clear sentence (``strict=True`` raises
:class:`~symphony_ros.bags.BagDamagedError` instead). :func:`repair` rewrites a damaged bag so that rosbags and
``ros2 bag`` accept it again (readable messages kept, ``metadata.yaml`` rebuilt).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple

from . import BagDamagedError, BagError

MCAP_MAGIC = b"\x89MCAP0\r\n"
SQLITE_MAGIC = b"SQLite format 3\x00"


class BagMessage(NamedTuple):
    topic: str
    msgtype: str
    timestamp: int          # ns since the epoch (the recorder's receive time)
    data: bytes             # CDR bytes as on the wire


@dataclass
class TopicMeta:
    name: str
    msgtype: str
    count: int = 0
    qos: list = field(default_factory=list)     # rosbags Qos profiles offered by the recorded publishers
    rihs01: str = ""
    msgdef: str = ""


@dataclass
class FileState:
    path: Path
    storage: str            # "mcap" | "sqlite3"
    intact: bool = True
    problem: str = ""
    count: int = 0
    start: int = 2**63 - 1
    end: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    read_path: Path | None = None   # sqlite3 with a hot journal: a rolled-back temporary copy


def _storage_of(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head.startswith(MCAP_MAGIC):
        return "mcap"
    if head.startswith(SQLITE_MAGIC):
        return "sqlite3"
    return None


def _split_index(p: Path) -> tuple[int, str]:
    stem = p.stem
    tail = stem.rsplit("_", 1)[-1]
    return (int(tail) if tail.isdigit() else 0, p.name)


class BagReader:
    """Messages of a rosbag2 bag in storage order (files in split order; within a file, the order the recorder
    wrote them, i.e. receive order). ``path``: bag directory, or one ``.mcap``/``.db3`` file."""

    def __init__(self, path: str | Path, *, strict: bool = False, typestore=None) -> None:
        self.path = Path(path)
        self.strict = strict
        self._typestore = typestore
        self.damage: list[str] = []
        self.topics: dict[str, TopicMeta] = {}
        self.files: list[FileState] = []
        self.metadata: dict[str, Any] | None = None
        self._tmpdirs: list[str] = []
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        self._open()

    # ------------------------------------------------------------------ context
    def __enter__(self) -> "BagReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for d in self._tmpdirs:
            shutil.rmtree(d, ignore_errors=True)
        self._tmpdirs.clear()

    def __del__(self) -> None:  # temporary copies of sqlite files with a hot journal
        try:
            self.close()
        except Exception:
            pass

    @property
    def typestore(self):
        if self._typestore is None:
            from .typestore import get_typestore
            self._typestore = get_typestore()
        return self._typestore

    # ------------------------------------------------------------------ opening
    def _problem(self, text: str, readable: int | None = None) -> None:
        self.damage.append(text)
        if self.strict:
            raise BagDamagedError(text, readable or 0)

    def _open(self) -> None:
        if self.path.is_file():
            storage = _storage_of(self.path)
            if storage is None:
                raise BagError(f"{self.path} is not a rosbag2 storage file (neither MCAP nor sqlite3)")
            paths = [(self.path, storage)]
        else:
            paths = self._files_of_dir()
        for p, storage in paths:
            fs = FileState(p, storage)
            self.files.append(fs)
            try:
                if storage == "mcap":
                    self._inspect_mcap(fs)
                else:
                    self._inspect_sqlite(fs)
            except BagDamagedError:
                raise
            except Exception as exc:  # unreadable beyond our tolerant paths
                fs.intact = False
                fs.problem = f"file {p.name} cannot be read ({type(exc).__name__}: {exc})"
                self._problem(fs.problem, 0)
        if self.metadata is not None:
            self._apply_metadata_qos()

    def _files_of_dir(self) -> list[tuple[Path, str]]:
        meta = self.path / "metadata.yaml"
        listed: list[Path] = []
        if meta.is_file():
            try:
                from ruamel.yaml import YAML
                self.metadata = YAML(typ="safe").load(meta.read_text(encoding="utf-8"))["rosbag2_bagfile_information"]
                listed = [self.path / Path(x).name for x in self.metadata.get("relative_file_paths") or []]
            except Exception as exc:
                self.metadata = None
                self._problem(f"bag {self.path}: metadata.yaml is unreadable ({type(exc).__name__}: {exc}); "
                              "reading the storage files directly")
        else:
            on_disk = [p for p in self.path.iterdir() if p.suffix in (".mcap", ".db3")]
            if on_disk:
                self._problem(f"bag {self.path} has no metadata.yaml (its recorder was stopped before closing it); "
                              "reading the storage files directly (`symphony-ros repair` rebuilds it)")
        for p in listed:
            if not p.is_file():
                self._problem(f"bag {self.path}: file {p.name} listed in metadata.yaml is missing")
        extra = sorted((p for p in self.path.iterdir() if p.suffix in (".mcap", ".db3") and p not in listed),
                       key=_split_index)
        if listed and extra:
            self._problem(f"bag {self.path}: {', '.join(p.name for p in extra)} not listed in metadata.yaml (the "
                          "recorder stopped before closing it); read as well")
        paths = []
        for p in [p for p in listed if p.is_file()] + extra:
            storage = _storage_of(p)
            if storage is None:
                self._problem(f"bag {self.path}: {p.name} is neither an MCAP nor a sqlite3 file (empty or corrupt)")
                continue
            paths.append((p, storage))
        if not paths:
            raise BagError(f"{self.path} is not a rosbag2 bag: no readable .mcap or .db3 file in it")
        return paths

    def _topic(self, name: str, msgtype: str, msgdef: str = "", qos: list | None = None) -> TopicMeta:
        t = self.topics.get(name)
        if t is None:
            t = self.topics[name] = TopicMeta(name, msgtype, 0, list(qos or []), "", msgdef)
            try:
                if msgtype in self.typestore.fielddefs:
                    t.rihs01 = self.typestore.hash_rihs01(msgtype)
            except Exception:
                pass
        return t

    def _apply_metadata_qos(self) -> None:
        from rosbags.rosbag2.metadata import parse_qos
        for entry in self.metadata.get("topics_with_message_count") or []:
            tm = entry.get("topic_metadata", {})
            t = self.topics.get(tm.get("name"))
            if t is None:
                continue
            if tm.get("type_description_hash"):
                t.rihs01 = tm["type_description_hash"]
            if not t.qos and tm.get("offered_qos_profiles"):
                try:
                    t.qos = parse_qos(tm["offered_qos_profiles"])
                except Exception:
                    pass

    # ---------------- MCAP
    def _inspect_mcap(self, fs: FileState) -> None:
        from mcap.reader import make_reader
        summary = None
        try:
            with open(fs.path, "rb") as f:
                summary = make_reader(f).get_summary()
        except Exception:
            summary = None
        if summary is not None and summary.statistics is not None and summary.chunk_indexes is not None:
            st = summary.statistics
            for cid, ch in summary.channels.items():
                schema = summary.schemas.get(ch.schema_id)
                t = self._topic(ch.topic, schema.name if schema else "", _text(schema.data) if schema else "",
                                _qos_of_channel(ch))
                n = st.channel_message_counts.get(cid, 0)
                t.count += n
                fs.counts[ch.topic] = fs.counts.get(ch.topic, 0) + n
            fs.count = st.message_count
            if fs.count:
                fs.start, fs.end = st.message_start_time, st.message_end_time
            return
        # no footer/summary: the writer did not finish; scan what is there
        fs.intact = False
        n = 0
        for topic, msgtype, ts, _ in self._scan_mcap(fs, inspect=True):
            n += 1
            fs.counts[topic] = fs.counts.get(topic, 0) + 1
            fs.start, fs.end = min(fs.start, ts), max(fs.end, ts)
        fs.count = n
        for topic, c in fs.counts.items():
            self.topics[topic].count += c
        if not fs.problem:
            fs.problem = (f"file {fs.path.name} has no MCAP index/footer (the recorder did not close it); "
                          f"{n} messages readable")
        self._problem(fs.problem, n)

    def _scan_mcap(self, fs: FileState, inspect: bool = False, topics: set[str] | None = None
                   ) -> Iterator[BagMessage]:
        """Record-by-record read of an MCAP file up to its end or its first damage."""
        from mcap.records import Channel, Footer, Message, Schema
        from mcap.stream_reader import StreamReader
        schemas: dict[int, Any] = {}
        channels: dict[int, tuple[str, str]] = {}
        n = 0
        size = fs.path.stat().st_size
        with open(fs.path, "rb") as f:
            reader = StreamReader(f, record_size_limit=max(size, 1 << 20))
            try:
                for rec in reader.records:
                    if isinstance(rec, Message):
                        ch = channels.get(rec.channel_id)
                        if ch is None:
                            continue
                        n += 1
                        if topics is None or ch[0] in topics:
                            yield BagMessage(ch[0], ch[1], rec.log_time, rec.data)
                    elif isinstance(rec, Schema):
                        schemas[rec.id] = rec
                    elif isinstance(rec, Channel):
                        schema = schemas.get(rec.schema_id)
                        msgtype = schema.name if schema else ""
                        channels[rec.id] = (rec.topic, msgtype)
                        if inspect:
                            self._topic(rec.topic, msgtype, _text(schema.data) if schema else "",
                                        _qos_of_channel(rec))
                    elif isinstance(rec, Footer):
                        break
            except Exception as exc:
                if inspect:   # reported once, by _inspect_mcap; later reads stop at the same place silently
                    where = f.tell()
                    what = ("it ends in the middle of a record (truncated)" if where >= size or
                            type(exc).__name__ == "EndOfFile" else
                            f"a record is corrupt ({type(exc).__name__}: {exc})")
                    fs.problem = (f"file {fs.path.name} is damaged near byte {where} of {size}: {what}; the {n} "
                                  "messages before it are readable")

    # ---------------- sqlite3
    def _inspect_sqlite(self, fs: FileState) -> None:
        journal = fs.path.with_name(fs.path.name + "-journal")
        wal = fs.path.with_name(fs.path.name + "-wal")
        read_path = fs.path
        if (journal.is_file() and journal.stat().st_size > 0) or (wal.is_file() and wal.stat().st_size > 0):
            tmp = tempfile.mkdtemp(prefix="symphony_bag_")
            self._tmpdirs.append(tmp)
            read_path = Path(tmp) / fs.path.name
            for src in (fs.path, journal, wal):
                if src.is_file():
                    shutil.copy2(src, Path(tmp) / src.name)
            con = sqlite3.connect(read_path)   # read-write on the copy: rolls the unfinished transaction back
            con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            con.close()
            fs.intact = False
            fs.problem = (f"file {fs.path.name} has an unfinished transaction (the recorder was killed); the "
                          "messages after its last commit are lost, the rest is readable")
        fs.read_path = read_path
        con = sqlite3.connect(f"file:{read_path}?mode=ro", uri=True)
        try:
            topics = con.execute("SELECT id, name, type, offered_qos_profiles FROM topics").fetchall()
            defs = {}
            try:
                defs = {r[0]: r[1] for r in con.execute(
                    "SELECT topic_type, encoded_message_definition FROM message_definitions")}
            except sqlite3.Error:
                pass
            from rosbags.rosbag2.metadata import parse_qos
            for tid, name, msgtype, qos_text in topics:
                try:
                    qos = parse_qos(qos_text) if qos_text else []
                except Exception:
                    qos = []
                self._topic(name, msgtype, defs.get(msgtype, ""), qos)
            names = {tid: name for tid, name, _, _ in topics}
            try:
                rows = con.execute("SELECT topic_id, COUNT(*), MIN(timestamp), MAX(timestamp) FROM messages "
                                   "GROUP BY topic_id").fetchall()
                for tid, n, t0, t1 in rows:
                    name = names.get(tid)
                    if name is None:
                        continue
                    fs.counts[name] = n
                    self.topics[name].count += n
                    fs.count += n
                    fs.start, fs.end = min(fs.start, t0), max(fs.end, t1)
            except sqlite3.DatabaseError as exc:
                n = sum(1 for _ in self._scan_sqlite(fs, count_only=True))
                fs.intact = False
                fs.problem = (f"file {fs.path.name} is corrupt ({exc}); {n} messages readable before the damage")
        except sqlite3.DatabaseError as exc:
            fs.intact = False
            fs.problem = f"file {fs.path.name} is not a readable sqlite3 bag ({exc})"
        finally:
            con.close()
        if fs.problem:
            self._problem(fs.problem, fs.count)

    def _scan_sqlite(self, fs: FileState, count_only: bool = False, topics: set[str] | None = None
                     ) -> Iterator[BagMessage]:
        con = sqlite3.connect(f"file:{fs.read_path or fs.path}?mode=ro", uri=True)
        try:
            info = {tid: (name, msgtype) for tid, name, msgtype in
                    con.execute("SELECT id, name, type FROM topics")}
            wanted = None if topics is None else [tid for tid, (n, _) in info.items() if n in topics]
            q = "SELECT topic_id, timestamp, data FROM messages"
            if wanted is not None:
                if not wanted:
                    return
                q += f" WHERE topic_id IN ({','.join(str(int(w)) for w in wanted)})"
            q += " ORDER BY id" if not fs.intact else " ORDER BY timestamp, id"
            cur = con.execute(q)
            try:
                for tid, ts, data in cur:
                    name, msgtype = info.get(tid, ("", ""))
                    yield BagMessage(name, msgtype, int(ts), b"" if count_only else bytes(data))
            except sqlite3.DatabaseError as exc:
                text = f"file {fs.path.name} is corrupt ({exc}); reading stopped there"
                if text not in self.damage:
                    self._problem(text)
        finally:
            con.close()

    # ------------------------------------------------------------------ reading
    @property
    def damaged(self) -> bool:
        return bool(self.damage)

    @property
    def message_count(self) -> int:
        return sum(t.count for t in self.topics.values())

    @property
    def start_ns(self) -> int:
        return min((f.start for f in self.files if f.count), default=0)

    @property
    def end_ns(self) -> int:
        return max((f.end for f in self.files if f.count), default=0)

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9

    def topic_names(self, basename: str | None = None, msgtype: str | None = None) -> list[str]:
        """Topics whose last name component is ``basename`` and/or whose type is ``msgtype``, sorted."""
        out = []
        for name, t in self.topics.items():
            if basename is not None and name.rstrip("/").rsplit("/", 1)[-1] != basename:
                continue
            if msgtype is not None and t.msgtype != msgtype:
                continue
            out.append(name)
        return sorted(out)

    def messages(self, topics: Iterable[str] | None = None, start_ns: int | None = None,
                 end_ns: int | None = None) -> Iterator[BagMessage]:
        """Raw messages (storage order), optionally only ``topics`` and timestamps in [start_ns, end_ns)."""
        wanted = None if topics is None else set(topics)
        for fs in self.files:
            if fs.count == 0 and fs.intact:
                continue
            if (start_ns is not None and fs.count and fs.end < start_ns) or \
                    (end_ns is not None and fs.count and fs.start >= end_ns):
                continue
            it = self._iter_file(fs, wanted)
            for m in it:
                if start_ns is not None and m.timestamp < start_ns:
                    continue
                if end_ns is not None and m.timestamp >= end_ns:
                    continue
                yield m

    def _iter_file(self, fs: FileState, wanted: set[str] | None) -> Iterator[BagMessage]:
        if fs.storage == "sqlite3":
            yield from self._scan_sqlite(fs, topics=wanted)
            return
        if not fs.intact:
            yield from self._scan_mcap(fs, topics=wanted)
            return
        from mcap.reader import make_reader
        n = 0
        with open(fs.path, "rb") as f:
            reader = make_reader(f)
            try:
                for schema, channel, msg in reader.iter_messages(topics=list(wanted) if wanted is not None
                                                                 else None, log_time_order=True):
                    n += 1
                    yield BagMessage(channel.topic, schema.name if schema else "", msg.log_time, msg.data)
            except Exception as exc:
                fs.intact = False
                fs.problem = (f"file {fs.path.name} is corrupt ({type(exc).__name__}: {exc}); reading stopped "
                              f"after {n} messages")
                self._problem(fs.problem, n)

    def decoded(self, topics: Iterable[str] | None = None, **kw) -> Iterator[tuple[BagMessage, Any]]:
        """(raw message, rosbags message object) pairs; messages of unknown types are skipped."""
        ts = self.typestore
        known = ts.fielddefs
        for m in self.messages(topics, **kw):
            if m.msgtype in known:
                yield m, ts.deserialize_cdr(m.data, m.msgtype)

    def summary(self) -> str:
        """A ``ros2 bag info``-like text."""
        lines = [f"Bag:      {self.path}",
                 f"Storage:  {', '.join(sorted({f.storage for f in self.files}))} ({len(self.files)} file(s))",
                 f"Duration: {self.duration_s:.3f} s",
                 f"Messages: {self.message_count}",
                 "Topics:"]
        for t in sorted(self.topics.values(), key=lambda t: t.name):
            lines.append(f"  {t.name:40s} {t.msgtype:45s} {t.count:9d}")
        if self.damage:
            lines.append("Damage:")
            lines += [f"  - {d}" for d in self.damage]
        return "\n".join(lines)


def _text(data: bytes | str) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)


def _qos_of_channel(ch) -> list:
    text = (ch.metadata or {}).get("offered_qos_profiles", "")
    if not text:
        return []
    try:
        from rosbags.rosbag2.metadata import parse_qos
        return parse_qos(text)
    except Exception:
        return []


# ---------------------------------------------------------------------------------------------- repair
@dataclass
class RepairReport:
    bag: Path
    files_rewritten: list[str]
    messages: int
    dropped_files: list[str]
    notes: list[str]

    def __str__(self) -> str:
        s = f"bag {self.bag}: {self.messages} messages"
        if self.files_rewritten:
            s += f"; rewrote {', '.join(self.files_rewritten)} (readable messages kept)"
        if self.dropped_files:
            s += f"; dropped unreadable {', '.join(self.dropped_files)}"
        s += "; metadata.yaml rebuilt"
        return s


def repair(path: str | Path, *, keep_original: bool = False) -> RepairReport:
    """Make a damaged bag directory whole again: every damaged storage file is rewritten with its readable messages
    (an index and footer added; ``keep_original`` keeps the damaged file as ``<name>.orig``), and ``metadata.yaml``
    is rebuilt from the files. An intact bag is left as it is apart from a rewritten ``metadata.yaml``. A bag in
    Humble's format (:mod:`.distro`) stays in Humble's format."""
    from rosbags.rosbag2.enums import CompressionMode
    from .distro import METADATA_VERSIONS, distro_of_bag, metadata_text, qos_text, storage_writer_class
    from .recorder import _FileInfo, _Topic, atomic_write_text
    path = Path(path)
    if not path.is_dir():
        raise BagError(f"repair needs a bag directory; {path} is not one")
    reader = BagReader(path)
    distro = distro_of_bag(reader)
    custom = (reader.metadata or {}).get("custom_data") or None      # kept (version 9 only)
    rewritten, dropped, notes = [], [], list(reader.damage)
    topics: dict[str, _Topic] = {}
    for name, t in reader.topics.items():
        msgdef = t.msgdef
        rihs = t.rihs01
        try:
            if t.msgtype in reader.typestore.fielddefs:
                msgdef = msgdef or reader.typestore.generate_msgdef(t.msgtype, ros_version=2)[0]
                rihs = rihs or reader.typestore.hash_rihs01(t.msgtype)
        except Exception:
            pass
        topics[name] = _Topic(name, t.msgtype, msgdef, rihs, list(t.qos), qos_text(distro, list(t.qos)),
                              len(topics) + 1)
    infos: list[_FileInfo] = []
    for fs in reader.files:
        info = _FileInfo(fs.path.name, fs.start, fs.end, fs.count, dict(fs.counts))
        if fs.intact:
            infos.append(info)
            continue
        if fs.count == 0 and fs.storage == "mcap" and not fs.counts:
            dropped.append(fs.path.name)
            if keep_original:
                os.replace(fs.path, fs.path.with_name(fs.path.name + ".orig"))
            else:
                fs.path.unlink()
            continue
        tmp = fs.path.with_name(f".{fs.path.stem}.repair{fs.path.suffix}")
        if tmp.exists():
            tmp.unlink()
        cls = storage_writer_class(distro, fs.storage)
        w = cls(tmp, CompressionMode.NONE, fsync=True)
        from rosbags.interfaces import Connection, ConnectionExtRosbag2, MessageDefinition, MessageDefinitionFormat
        conns, types_added = {}, set()
        for t in topics.values():
            c = Connection(id=t.index, topic=t.name, msgtype=t.msgtype,
                           msgdef=MessageDefinition(MessageDefinitionFormat.MSG, t.msgdef), digest=t.rihs01,
                           msgcount=0, ext=ConnectionExtRosbag2("cdr", list(t.qos)), owner=None)
            if t.msgtype not in types_added:
                w.add_msgtype(c)
                types_added.add(t.msgtype)
            w.add_connection(c, t.qos_yaml)
            conns[t.name] = c
        info = _FileInfo(fs.path.name)
        for m in reader._iter_file(fs, None):
            w.write(conns[m.topic], m.timestamp, m.data)
            info.count += 1
            info.counts[m.topic] = info.counts.get(m.topic, 0) + 1
            info.start, info.end = min(info.start, m.timestamp), max(info.end, m.timestamp)
        w.close(METADATA_VERSIONS[distro], metadata_text(distro, fs.storage, infos + [info], list(topics.values()),
                                                         custom, inner=True))
        if keep_original:
            os.replace(fs.path, fs.path.with_name(fs.path.name + ".orig"))
        for suffix in ("-journal", "-wal", "-shm"):
            side = fs.path.with_name(fs.path.name + suffix)
            if side.exists():
                side.unlink()
        os.replace(tmp, fs.path)
        rewritten.append(fs.path.name)
        infos.append(info)
    reader.close()
    storage = reader.files[0].storage if reader.files else "mcap"
    atomic_write_text(path / "metadata.yaml", metadata_text(distro, storage, infos, list(topics.values()), custom),
                      fsync=True)
    (path / ".reserve").unlink(missing_ok=True)
    return RepairReport(path, rewritten, sum(i.count for i in infos), dropped, notes)
