"""Atomic checkpoint files and a rotating checkpoint directory.

A write goes to a temporary file in the same directory, is fsync'ed, then renamed over the target (and the directory
fsync'ed), so a crash leaves either the old or the new file, never a torn one. Loading a corrupt or incompatible file
raises :class:`CheckpointError` with the path and the reason; :class:`CheckpointManager` then falls back to the
previous good checkpoint, which rotation keeps.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or incompatible; the message says which file and why."""


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename + directory fsync)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Serialise ``payload`` with torch.save and write it atomically. Returns the path."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def load_checkpoint(path: str | Path, *, kind: str | None = None) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; ``kind`` checks its ``kind`` field."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for truncated/corrupt files
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    if not isinstance(payload, dict) or "kind" not in payload:
        raise CheckpointError(f"checkpoint {path} is not a symphony_ros checkpoint")
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(f"checkpoint {path} holds a '{payload['kind']}', expected a '{kind}'")
    return payload


class CheckpointManager:
    """``DIR/ckpt_<step:012d>.pt`` files, newest last; keeps the newest ``keep`` (≥ 2, so a good one survives)."""

    PATTERN = re.compile(r"^ckpt_(\d{12})\.pt$")

    def __init__(self, directory: str | Path, keep: int = 2) -> None:
        self.directory = Path(directory)
        self.keep = max(2, int(keep))

    def paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if self.PATTERN.match(p.name)]
        return sorted(found, key=lambda p: int(self.PATTERN.match(p.name).group(1)))  # type: ignore[union-attr]

    def save(self, step: int, payload: dict[str, Any]) -> Path:
        path = save_checkpoint(self.directory / f"ckpt_{int(step):012d}.pt", payload)
        for old in self.paths()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def latest(self) -> Path | None:
        p = self.paths()
        return p[-1] if p else None

    def load_latest(self, *, kind: str | None = None,
                    validate: Callable[[dict[str, Any]], None] | None = None) -> tuple[Path, dict[str, Any]] | None:
        """Newest checkpoint that loads (and passes ``validate``); None if the directory has none at all.
        A bad newer file is logged with its reason and skipped; if none is good, CheckpointError lists them."""
        errors = []
        for path in reversed(self.paths()):
            try:
                payload = load_checkpoint(path, kind=kind)
                if validate is not None:
                    try:
                        validate(payload)
                    except (ValueError, KeyError) as exc:
                        raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
                return path, payload
            except CheckpointError as exc:
                log.error("%s; trying the previous checkpoint", exc)
                errors.append(str(exc))
        if errors:
            raise CheckpointError("no usable checkpoint in " + str(self.directory) + ": " + "; ".join(errors))
        return None


class AgentCheckpoints(CheckpointManager):
    """Checkpoints of an agent whose replay buffer is saved incrementally (docs/algorithm.md#replay-storage).

    ``DIR/ckpt_<step>.pt`` holds everything but the buffer rows (networks, optimizer, counters, the buffer's
    manifest; tens of MB at most) and is written atomically; ``DIR/buffer/`` holds the rows
    (:class:`~symphony_ros.core.buffer_store.BufferStore`), of which a save writes only what changed since the
    previous save. ``DIR/ckpt_<step>.buffer.json`` repeats the manifest, so unreferenced buffer files can be deleted
    without reading the checkpoints. Temporary files a killed writer left behind are removed on construction."""

    def __init__(self, directory: str | Path, keep: int = 2) -> None:
        from .buffer_store import BufferStore, remove_stale_temporaries
        super().__init__(directory, keep)
        remove_stale_temporaries(self.directory)
        self.store = BufferStore(self.directory / "buffer")
        self.last_save: dict[str, Any] = {}

    def _sidecar(self, path: Path) -> Path:
        return path.with_name(path.name[: -len(".pt")] + ".buffer.json")

    def save_agent(self, step: int, payload: dict[str, Any], buffer: Any) -> Path:
        """Write ``payload`` (which must not hold the buffer) with ``buffer``'s manifest; rotate; delete buffer files
        no kept checkpoint references. ``last_save`` tells the seconds and bytes it took."""
        import json
        import time
        t0 = time.perf_counter()
        manifest = self.store.save(buffer)
        path = self.directory / f"ckpt_{int(step):012d}.pt"
        atomic_write_bytes(self._sidecar(path), json.dumps(manifest).encode())
        save_checkpoint(path, dict(payload, buffer=manifest))
        state_bytes = path.stat().st_size
        for old in self.paths()[: -self.keep]:
            old.unlink(missing_ok=True)
            self._sidecar(old).unlink(missing_ok=True)
        kept = []
        for p in self.paths():
            try:
                kept.append(json.loads(self._sidecar(p).read_text()))
            except (OSError, ValueError):   # no sidecar: an older-format checkpoint, it references no buffer file
                pass
        self.store.collect(kept)
        self.last_save = dict(path=str(path), seconds=time.perf_counter() - t0,
                              buffer_bytes=int(manifest["bytes_written"]), state_bytes=int(state_bytes))
        return path

    def load_agent_latest(self, *, kind: str, validate: Callable[[dict[str, Any]], None],
                          apply: Callable[[Path, dict[str, Any]], None], buffer: Any
                          ) -> tuple[Path, dict[str, Any]] | None:
        """Resume from the newest usable checkpoint: ``validate(payload)`` (ValueError/KeyError = incompatible),
        ``buffer`` rebuilt from its manifest (a full buffer inside older checkpoints is loaded by ``apply``), then
        ``apply(path, payload)``. A bad newer checkpoint (torn, incompatible, missing buffer files) is logged and the
        previous one tried; None if there is none at all; CheckpointError if none is usable."""
        errors = []
        for path in reversed(self.paths()):
            try:
                payload = load_checkpoint(path, kind=kind)
                try:
                    validate(payload)
                except (ValueError, KeyError) as exc:
                    raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
                if payload.get("buffer") is not None:
                    self.store.load(buffer, payload["buffer"])
                apply(path, payload)
                return path, payload
            except CheckpointError as exc:
                log.error("%s; trying the previous checkpoint", exc)
                errors.append(str(exc))
        if errors:
            raise CheckpointError("no usable checkpoint in " + str(self.directory) + ": " + "; ".join(errors))
        return None
