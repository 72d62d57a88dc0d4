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
