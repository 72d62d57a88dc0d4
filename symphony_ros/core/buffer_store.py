"""Incremental persistence of a Fading Replay Buffer: a save writes only what changed since the previous one.

Layout, in the buffer directory (``<checkpoints>/buffer/``):

* ``base_<seq>.pt``: the exploration block at norm_fill (normalised rows 0..L-1); the filled buffer is that block
  tiled, so it is written once, not ``times`` times;
* ``seg_<seq>.pt``: the slots written (or whose terminal skip counter changed) since the previous save, with their
  rows, terminal flags and skip counters;
* a *manifest* (a small dict, kept in the checkpoint that references it): the buffer's counters, the base and the
  ordered list of segments whose replay rebuilds the buffer exactly.

Every file is written atomically (temporary file, fsync, rename). Segments whose slots have all been overwritten by
later ones are dropped from the manifest; a segment that still holds a few live slots (a terminal that survives, S3)
is compacted once most of it is dead: its live slots are rewritten into the new segment. Files no kept checkpoint
references are deleted by :meth:`BufferStore.collect`, so a torn newest checkpoint can always fall back to the
previous one, whose files are still there.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from .checkpoint import CheckpointError, atomic_write_bytes
from .replay_buffer import FadingReplayBuffer

MANIFEST_FORMAT = "symphony_ros.buffer/2"
BASE = -1                      # slot_seg value: the slot still holds its tiled copy of the base block
EMPTY = -2                     # slot_seg value: never written
COMPACT_BELOW = 0.25           # a segment whose live share fell below this is rewritten into the next segment
_FILE = re.compile(r"^(base|seg)_(\d{10})\.pt$")


def _save(path: Path, obj: Any) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return len(data)


def remove_stale_temporaries(directory: str | Path) -> int:
    """Delete temporary files a killed writer left (``.<name>.*.tmp``). Returns how many were removed."""
    d = Path(directory)
    n = 0
    if d.is_dir():
        for p in d.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    p.unlink()
                    n += 1
    return n


class BufferStore:
    """Saves and restores one buffer incrementally in ``directory`` (created on the first save)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        remove_stale_temporaries(self.directory)
        self._seq = self._max_seq()
        self.base: int | None = None
        self.segments: list[int] = []
        self._slot_seg: np.ndarray | None = None        # per slot: the segment whose copy is current
        self._seg_size: dict[int, int] = {}             # slots each segment holds
        self.last_bytes = 0                             # bytes written by the latest save

    def _max_seq(self) -> int:
        if not self.directory.is_dir():
            return 0
        seqs = [int(m.group(2)) for p in self.directory.iterdir() if (m := _FILE.match(p.name))]
        return max(seqs, default=0)

    def _path(self, kind: str, seq: int) -> Path:
        return self.directory / f"{kind}_{seq:010d}.pt"

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    # ------------------------------------------------------------------ saving
    def save(self, buf: FadingReplayBuffer) -> dict[str, Any]:
        """Write what changed since the previous save (or everything, the first time) and return the manifest that
        rebuilds the buffer now. Clears the buffer's dirty marks."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._slot_seg is None or self._slot_seg.size != buf.capacity:
            # nothing of this buffer on disk yet: everything stored must be written (the tiled copies excepted when
            # the base block is still at hand: the base rebuilds them)
            self._slot_seg = np.full(buf.capacity, EMPTY, dtype=np.int64)
            self.base, self.segments, self._seg_size = None, [], {}
            if buf.fill_block is None:
                buf.dirty[: buf.length] = True
        written = 0
        if buf.fill_block is not None:                      # norm_fill happened since the last save
            seq = self._next()
            written += _save(self._path("base", seq), dict(buf.fill_block))
            self.base = seq
            self.segments, self._seg_size = [], {}
            self._slot_seg[:] = BASE                        # later writes are marked dirty and land in segments
            buf.fill_block = None
        self._mark_compaction(buf)
        slots = np.flatnonzero(buf.dirty)
        if slots.size:
            seq = self._next()
            written += _save(self._path("seg", seq), buf.rows(slots))
            self._slot_seg[slots] = seq
            self.segments.append(seq)
            self._seg_size[seq] = int(slots.size)
            buf.dirty[slots] = False
        live = np.bincount(self._slot_seg[self._slot_seg >= 0], minlength=self._seq + 1) \
            if (self._slot_seg >= 0).any() else np.zeros(self._seq + 1, dtype=np.int64)
        self.segments = [s for s in self.segments if live[s] > 0]   # fully overwritten segments drop out
        if self.base is not None and not (self._slot_seg == BASE).any():
            self.base = None                                        # every tiled copy was overwritten
        self.last_bytes = written
        return self.manifest(buf)

    def _mark_compaction(self, buf: FadingReplayBuffer) -> None:
        """Mark for rewriting the live slots of segments (and of the base) that are mostly dead, so their files can
        go: a terminal that is never evicted (S3) would otherwise keep a whole old file alive."""
        s = self._slot_seg
        if self.base is not None:
            base_live = int((s == BASE).sum())
            if 0 < base_live < COMPACT_BELOW * buf.capacity:
                buf.dirty[s == BASE] = True
        if not self.segments:
            return
        live = np.bincount(s[s >= 0], minlength=self._seq + 1)
        for seq in self.segments:
            size = self._seg_size.get(seq, 0)
            if size and 0 < live[seq] < COMPACT_BELOW * size:
                buf.dirty[s == seq] = True

    def manifest(self, buf: FadingReplayBuffer) -> dict[str, Any]:
        return dict(format=MANIFEST_FORMAT, meta=buf.meta(), base=self.base, segments=list(self.segments),
                    bytes_written=int(self.last_bytes))

    # ------------------------------------------------------------------ loading
    def load(self, buf: FadingReplayBuffer, manifest: dict[str, Any]) -> None:
        """Rebuild ``buf`` from a manifest; CheckpointError (the buffer emptied) if a file is missing or corrupt."""
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise CheckpointError(f"buffer manifest of an unknown format ({manifest.get('format')!r})"
                                  if isinstance(manifest, dict) else "buffer manifest is not a dict")
        meta = manifest["meta"]
        base = self._read("base", manifest["base"]) if manifest["base"] is not None else None
        segs = [self._read("seg", s) for s in manifest["segments"]]
        try:
            buf.restore(meta, base, segs)
        except (ValueError, KeyError, RuntimeError, IndexError) as exc:
            buf.reset()
            raise CheckpointError(f"buffer files in {self.directory} do not fit: {exc}") from None
        slot_seg = np.full(buf.capacity, EMPTY, dtype=np.int64)
        if base is not None:
            slot_seg[:] = BASE
        sizes = {}
        for s, seg in zip(manifest["segments"], segs):
            slot_seg[seg["slots"].numpy()] = s
            sizes[s] = int(seg["slots"].numel())
        self._slot_seg, self._seg_size = slot_seg, sizes
        self.base, self.segments = manifest["base"], list(manifest["segments"])
        self._seq = max(self._seq, self._max_seq())
        buf.dirty[:] = False

    def _read(self, kind: str, seq: int) -> dict[str, torch.Tensor]:
        path = self._path(kind, int(seq))
        if not path.is_file():
            raise CheckpointError(f"buffer file {path} is missing")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for truncated/corrupt files
            raise CheckpointError(f"buffer file {path} is corrupt ({type(exc).__name__})") from None
        if not isinstance(data, dict) or not {"slots", "data", "scalars", "terminal", "skips"} <= set(data):
            raise CheckpointError(f"buffer file {path} is not a buffer segment")
        return data

    # ------------------------------------------------------------------ cleaning up
    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if _FILE.match(p.name))

    def collect(self, manifests: Iterable[dict[str, Any]]) -> int:
        """Delete every buffer file none of ``manifests`` (those of the checkpoints kept) references. Returns how
        many were deleted."""
        keep: set[tuple[str, int]] = set()
        for m in manifests:
            if not isinstance(m, dict):
                continue
            if m.get("base") is not None:
                keep.add(("base", int(m["base"])))
            keep.update(("seg", int(s)) for s in m.get("segments", []))
        if self.base is not None:
            keep.add(("base", self.base))
        keep.update(("seg", s) for s in self.segments)
        n = 0
        for p in self.files():
            m = _FILE.match(p.name)
            if (m.group(1), int(m.group(2))) not in keep:
                with contextlib.suppress(OSError):
                    os.unlink(p)
                    n += 1
        return n
