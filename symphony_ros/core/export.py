"""Export the actor of an actor file or training checkpoint for inference: ``pt`` (the actor file of
:func:`~symphony_ros.core.policy.export_actor`), ``torchscript`` (a traced graph) or ``onnx`` (``torch.onnx.export``).

The TorchScript and ONNX graphs are :class:`ActorGraph`, i.e. :class:`~symphony_ros.core.networks.Actor`'s own
forward with the bounded noise ε passed in (the runtime draws it), so the actor head formula lives in one place
(docs/algorithm.md#actor-head). Inputs, outputs and metadata: :mod:`symphony_ros.core.export_format`. Before a graph is
written, its outputs are compared with the torch actor's on :data:`VERIFY_OBS` random observations; a difference
over :data:`PARITY_TOL` is an :class:`ExportError` and nothing is written. Writes are atomic (temp file + rename).
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from .checkpoint import CheckpointError, atomic_write_bytes
from .config import SymphonyConfig
from .export_format import (FORMAT_VERSION, FORMATS, INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES, TORCHSCRIPT_EXTRA_FILE,
                            PolicyFileError, detect_format, format_from_suffix)
from .networks import Actor
from .noise import bounded_noise
from .policy import export_actor, load_actor_file

ONNX_OPSET = 18           # the torch.export-based exporter's own opset (>= 17: LayerNormalization is one op)
PARITY_TOL = 1e-5         # max |Δ| allowed between an exported graph and the torch actor (policy units)
VERIFY_OBS = 256          # random observations of the export-time check


class ExportError(RuntimeError):
    """An export cannot be made (missing package, graph differs from the actor); the message says what to do."""


class ActorGraph(nn.Module):
    """The exported graph: ``(obs (B, S) float32, act_gain (1,), noise_gain (1,), eps (B, d))`` →
    ``(action (B, d), sigma (B, d), beta (B, d))`` = ``actor(obs, act=act_gain, noise=noise_gain, eps=eps)``."""

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor, act_gain: torch.Tensor, noise_gain: torch.Tensor, eps: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.actor(obs, act=act_gain, noise=noise_gain, eps=eps)


@dataclass
class ExportResult:
    path: Path
    format: str
    metadata: dict[str, Any]
    size_bytes: int
    max_abs_diff: float | None     # export-time parity against the torch actor (None for pt: an exact copy)


def export_metadata(actor: Actor, cfg: SymphonyConfig, version: int, *, fmt: str, source: str | Path = ""
                    ) -> dict[str, Any]:
    """The JSON metadata embedded in every exported file (keys: ``export_format.REQUIRED_KEYS`` and more)."""
    return dict(format_version=FORMAT_VERSION, format=fmt, obs_dim=actor.obs_dim, act_dim=actor.act_dim,
                hidden=actor.hidden, a_max=float(actor.a_max.max()), noise_clip=actor.noise_clip,
                sigma_beta_clamp=actor.clamp, preset=cfg.preset, prev_action_in_obs=bool(cfg.prev_action_in_obs),
                config=cfg.to_dict(), source=Path(source).name if source else "", source_version=int(version),
                package_version=__version__, torch_version=torch.__version__, inputs=list(INPUT_NAMES),
                outputs=list(OUTPUT_NAMES))


def _cpu_graph(actor: Actor) -> ActorGraph:
    """ActorGraph of a CPU, eval-mode, grad-free COPY of ``actor`` (the caller's actor, e.g. a learner's, is left as
    it is; its generator is not copied: the graph takes ε as an input)."""
    generator, actor.generator = actor.generator, None
    try:
        clone = copy.deepcopy(actor)
    finally:
        actor.generator = generator
    return ActorGraph(clone.to("cpu").eval().requires_grad_(False)).eval()


def _example(actor: Actor, batch: int, seed: int = 0, noise_gain: float = 1.0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    obs = 2.0 * torch.randn(batch, actor.obs_dim, generator=g)
    eps = bounded_noise((batch, actor.act_dim), actor.noise_clip, generator=g)
    return obs, torch.ones(1), torch.full((1,), float(noise_gain)), eps


def _max_diff(graph: ActorGraph, run: Any) -> float:
    """max |Δ| over outputs, deterministic (gains 1, 0) and noisy (1, 1) with a fixed ε, of ``run(*inputs)``."""
    worst = 0.0
    for noise_gain in (0.0, 1.0):
        inputs = _example(graph.actor, VERIFY_OBS, seed=1, noise_gain=noise_gain)
        with torch.no_grad():
            ref = graph(*inputs)
        got = run(*inputs)
        worst = max([worst] + [float((torch.as_tensor(o) - r).abs().max()) for o, r in zip(got, ref)])
    return worst


def _check_parity(diff: float, fmt: str) -> None:
    if not diff <= PARITY_TOL:
        raise ExportError(f"the {fmt} graph differs from the torch actor by {diff:.3g} > {PARITY_TOL:g}; nothing "
                          f"written (report this with your torch/onnx versions)")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' warnings and info logs (the result is checked numerically instead)."""
    names = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def torchscript_bytes(actor: Actor, metadata: dict[str, Any]) -> tuple[bytes, float]:
    """Traced :class:`ActorGraph` as a TorchScript archive (metadata in ``extra/symphony_ros.json``), and its
    export-time max |Δ| against the torch actor."""
    graph = _cpu_graph(actor)
    buf = io.BytesIO()
    with _quiet_exporter(), torch.no_grad():   # torch 2.13 warns that torch.jit.save/load are deprecated
        traced = torch.jit.trace(graph, _example(actor, 2))
        torch.jit.save(traced, buf, _extra_files={TORCHSCRIPT_EXTRA_FILE: json.dumps(metadata)})
        data = buf.getvalue()
        loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
    with torch.no_grad():
        diff = _max_diff(graph, lambda *x: loaded(*x))
    _check_parity(diff, "TorchScript")
    return data, diff


def onnx_bytes(actor: Actor, metadata: dict[str, Any], opset: int = ONNX_OPSET) -> tuple[bytes, float]:
    """:class:`ActorGraph` as an ONNX model (torch.export-based exporter, dynamic batch dimension, metadata in
    ``metadata_props[symphony_ros]``), and its export-time max |Δ| (onnxruntime, CPU) against the torch actor.
    Needs onnx, onnxscript and onnxruntime (``pip install 'symphony-ros[export]'``)."""
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"ONNX export needs the Python package(s) {', '.join(missing)}: "
                          f"pip install 'symphony-ros[export]'")
    import numpy as np
    import onnx
    import onnxruntime as ort

    graph = _cpu_graph(actor)
    batch = torch.export.Dim("batch")
    try:
        with _quiet_exporter():
            program = torch.onnx.export(graph, _example(actor, 2), None, dynamo=True, opset_version=opset,
                                        input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                                        dynamic_shapes={"obs": {0: batch}, "act_gain": None, "noise_gain": None,
                                                        "eps": {0: batch}}, verbose=False)
    except Exception as exc:  # the exporter raises many types; its first line says what failed
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail"
        raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: {first})") from None
    model = program.model_proto
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    def run(*inputs: torch.Tensor) -> list[Any]:
        return session.run(list(OUTPUT_NAMES), {n: np.ascontiguousarray(t.numpy(), dtype=np.float32)
                                                for n, t in zip(INPUT_NAMES, inputs)})
    diff = _max_diff(graph, run)
    _check_parity(diff, "ONNX")
    return data, diff


def export_policy(checkpoint: str | Path, out: str | Path, fmt: str | None = None) -> ExportResult:
    """Export the actor of ``checkpoint`` (actor file or training checkpoint) to ``out`` as ``fmt`` (None: from the
    suffix of ``out``, see :func:`~symphony_ros.core.export_format.format_from_suffix`). Raises CheckpointError
    (unusable input) or ExportError; never leaves a partial ``out``."""
    fmt = format_from_suffix(out) if fmt is None else fmt
    if fmt not in FORMATS:
        raise ExportError(f"export format '{fmt}' unknown; choose one of {', '.join(FORMATS)}")
    try:
        kind = detect_format(checkpoint)
    except PolicyFileError as exc:
        raise CheckpointError(str(exc)) from None
    if kind != "checkpoint":
        raise CheckpointError(f"{checkpoint} is already a {kind} export; export from the training checkpoint or "
                              f"the .pt actor file it came from")
    actor, cfg, version = load_actor_file(checkpoint)
    meta = export_metadata(actor, cfg, version, fmt=fmt, source=checkpoint)
    diff: float | None = None
    if fmt == "pt":
        path = export_actor(out, actor, cfg, version, metadata=meta)
    else:
        data, diff = (onnx_bytes if fmt == "onnx" else torchscript_bytes)(actor, meta)
        path = Path(out)
        atomic_write_bytes(path, data)
    return ExportResult(path, fmt, meta, path.stat().st_size, diff)


def export_cli(args: Any) -> int:
    """``symphony-ros export CHECKPOINT [--format onnx|torchscript|pt] --out FILE``: 0 on success, 2 with one line
    on stderr for an unusable checkpoint or a failed export."""
    import sys
    try:
        res = export_policy(args.checkpoint, args.out, getattr(args, "format", None))
    except (CheckpointError, ExportError) as exc:
        print(f"symphony-ros: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"symphony-ros: error: cannot write {args.out} ({exc.strerror or exc}); choose another --out",
              file=sys.stderr)
        return 2
    m = res.metadata
    parity = "" if res.max_abs_diff is None else \
        f", max |Δ| vs the torch actor {res.max_abs_diff:.2g} on {VERIFY_OBS} random observations"
    print(f"{res.format} actor (preset {m['preset']}, obs {m['obs_dim']}, act {m['act_dim']}, hidden {m['hidden']}, "
          f"version {m['source_version']}) written to {res.path} ({res.size_bytes / 1024:.0f} KiB{parity})")
    return 0
