"""Run an actor for inference: the :class:`Policy` protocol the actor uses, its backends, and :func:`load_policy`.

Backends: :class:`TorchActorPolicy` (= :class:`symphony_ros.core.policy.ActorPolicy`, a core ``Actor``: actor files,
training checkpoints, live learner weights), :class:`TorchScriptPolicy` and :class:`OnnxPolicy` (files from
``symphony-ros export``). None of them imports the learner or the training code (agent, replay buffer, learner,
training front-ends); the ONNX one needs only numpy and onnxruntime, not torch. All compute
``a = a_max·tanh(act·σ⊙A + noise·ε)`` (docs/algorithm.md#actor-head) with the bounded noise ε of
:mod:`symphony_ros.core.noise` drawn by the backend, one observation per call; the caller always states the gains
(deploy: ``act_gain=1, noise_gain=0``, deterministic). With one seed, :class:`TorchActorPolicy` and
:class:`TorchScriptPolicy` draw the same ε sequence (torch.Generator); :class:`OnnxPolicy` draws its own (numpy).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..core.config import SymphonyConfig, from_dict
from ..core.export_format import (INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES, TORCHSCRIPT_EXTRA_FILE, PolicyFileError,
                                  detect_format, parse_metadata)
from ..core.noise import bounded_noise_numpy

if TYPE_CHECKING:
    from ..core.policy import ActorPolicy as TorchActorPolicy

__all__ = ["Policy", "PolicyFileError", "TorchActorPolicy", "TorchScriptPolicy", "OnnxPolicy", "load_policy"]


def __getattr__(name: str) -> Any:
    """``TorchActorPolicy`` is core's ActorPolicy, imported (with torch) only when asked for."""
    if name == "TorchActorPolicy":
        from ..core.policy import ActorPolicy
        return ActorPolicy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@runtime_checkable
class Policy(Protocol):
    """What the actor needs from a policy: sizes, the weights' version, where it came from, and one action."""

    obs_dim: int
    act_dim: int
    hidden: int
    version: int
    source: str
    config: SymphonyConfig | None   # the config it was trained with (None: weights from a live learner)

    def act(self, x: np.ndarray, *, act_gain: float, noise_gain: float) -> np.ndarray:
        """x (obs_dim,) float32 → action (act_dim,) float32 in [−a_max, a_max]."""
        ...

    def reseed(self, seed: int) -> None:
        """Restart the exploration-noise generator from ``seed``."""
        ...


class _Base:
    """Sizes and metadata common to the exported-file backends, and the input check."""

    format = ""

    def __init__(self, meta: dict[str, Any], source: str | Path) -> None:
        self.metadata = meta
        self.obs_dim, self.act_dim = int(meta["obs_dim"]), int(meta["act_dim"])
        self.a_max, self.noise_clip = float(meta["a_max"]), float(meta["noise_clip"])
        self.version = int(meta["source_version"])
        self.source = str(source)
        try:
            self.config = from_dict(meta["config"], source=f"{source} metadata")   # the config it was trained with
        except (ValueError, TypeError) as exc:
            raise PolicyFileError(f"{source}: its metadata's config is unusable ({exc})") from None
        self.hidden = int(meta["hidden"])

    def _input(self, x: Any) -> np.ndarray:
        """(obs_dim,) → contiguous float32 (1, obs_dim)."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape != (self.obs_dim,):
            raise ValueError(f"policy input has shape {x.shape}, this policy ({self.source}) needs ({self.obs_dim},)")
        return np.ascontiguousarray(x).reshape(1, self.obs_dim)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(obs {self.obs_dim}, act {self.act_dim}, version {self.version}, "
                f"preset {self.metadata.get('preset')}, source {self.source!r})")


class TorchScriptPolicy(_Base):
    """A TorchScript export (:func:`symphony_ros.core.export.torchscript_bytes`), run with torch but without the
    symphony_ros network code; ε from :func:`~symphony_ros.core.noise.bounded_noise` and a torch.Generator."""

    format = "torchscript"

    def __init__(self, path: str | Path, *, device: Any = "cpu", seed: int = 0) -> None:
        import torch
        extra = {TORCHSCRIPT_EXTRA_FILE: ""}
        try:
            self.module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except (RuntimeError, ValueError, OSError) as exc:
            raise PolicyFileError(f"TorchScript file {path} cannot be loaded ({_first_line(exc)})") from None
        super().__init__(parse_metadata(_text(extra[TORCHSCRIPT_EXTRA_FILE]), path), path)
        self.module.eval()
        self.device = torch.device(device)
        self._gen = torch.Generator(device=self.device)
        self._zeros = torch.zeros(1, self.act_dim, device=self.device)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self._gen.manual_seed(int(seed))

    def act(self, x: np.ndarray, *, act_gain: float, noise_gain: float) -> np.ndarray:
        import torch

        from ..core.noise import bounded_noise
        s = torch.from_numpy(self._input(x)).to(self.device)
        with torch.inference_mode():
            # drawn only when used, as Actor.forward does, so the ε sequence matches TorchActorPolicy's (ActorPolicy)
            eps = bounded_noise((1, self.act_dim), self.noise_clip, device=self.device, generator=self._gen) \
                if noise_gain else self._zeros
            gains = torch.tensor([[act_gain], [noise_gain]], dtype=torch.float32, device=self.device)
            return self.module(s, gains[0], gains[1], eps)[0][0].float().cpu().numpy()


class OnnxPolicy(_Base):
    """An ONNX export run by onnxruntime (CPUExecutionProvider, ``threads`` intra-op threads); needs no torch.
    ε from :func:`~symphony_ros.core.noise.bounded_noise_numpy` and a numpy Generator."""

    format = "onnx"

    def __init__(self, path: str | Path, *, seed: int = 0, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise PolicyFileError(f"{path} is an ONNX policy: install onnxruntime (pip install onnxruntime)") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
            raise PolicyFileError(f"ONNX file {path} cannot be loaded ({_first_line(exc)})") from None
        meta = parse_metadata(self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY), path)
        super().__init__(meta, path)
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        if tuple(inputs) != INPUT_NAMES or inputs["obs"][-1] != self.obs_dim or inputs["eps"][-1] != self.act_dim:
            raise PolicyFileError(f"ONNX file {path} has inputs {inputs}, expected {list(INPUT_NAMES)} with obs "
                                  f"(B, {self.obs_dim}) and eps (B, {self.act_dim}) as its metadata says")
        self._zeros = np.zeros((1, self.act_dim), np.float32)
        self._act_gain = np.ones(1, np.float32)
        self._noise_gain = np.zeros(1, np.float32)
        self._outputs = [OUTPUT_NAMES[0]]
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self._rng = np.random.default_rng(int(seed))

    def act(self, x: np.ndarray, *, act_gain: float, noise_gain: float) -> np.ndarray:
        obs = self._input(x)
        eps = bounded_noise_numpy((1, self.act_dim), self.noise_clip, self._rng) if noise_gain else self._zeros
        self._act_gain[0], self._noise_gain[0] = act_gain, noise_gain
        feeds = {"obs": obs, "act_gain": self._act_gain, "noise_gain": self._noise_gain, "eps": eps}
        return self.session.run(self._outputs, feeds)[0][0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no detail'}"


def _text(raw: Any) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def load_policy(path: str | Path, device: Any = "cpu", *, seed: int = 0, threads: int = 1) -> Policy:
    """The policy in ``path``, recognised by content: an ONNX or TorchScript export, a ``.pt`` actor file or a
    training checkpoint. ``device`` is the torch device (ONNX runs on the CPU only); ``threads`` the onnxruntime
    intra-op threads. Raises :class:`PolicyFileError` (one line: which file, what is wrong) for anything else."""
    kind = detect_format(path)
    if kind == "onnx":
        if str(device) != "cpu":
            raise PolicyFileError(f"{path} is an ONNX policy, which runs on the CPU here; use device 'cpu' or a "
                                  f"TorchScript export for '{device}'")
        return OnnxPolicy(path, seed=seed, threads=threads)
    if kind == "torchscript":
        return TorchScriptPolicy(path, device=device, seed=seed)
    from ..core.checkpoint import CheckpointError
    from ..core.policy import ActorPolicy, load_actor_file
    try:
        actor, cfg, version = load_actor_file(path, device)
    except CheckpointError as exc:
        raise PolicyFileError(str(exc)) from None
    return ActorPolicy(actor, seed=seed, version=version, device=device, source=str(path), config=cfg)
