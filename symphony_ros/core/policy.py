"""The acting side: an actor network that an actor node, an evaluation or a bag re-run runs, and its weights as a flat
vector (docs/algorithm.md#networks).

PolicyWeights messages carry ``layout`` (JSON: sizes and the ordered parameter shapes) and ``data`` (float32, all
actor parameters flattened in that order). The same layout is used for exported actor files. :class:`ActorPolicy`
is the one forward pass for acting: observation (S,) -> action (d,), with the gains of the actor head and noise drawn
from its own seeded generator.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import SymphonyConfig, from_dict
from .networks import Actor
from .observation import policy_input  # noqa: F401  (re-exported: the actor's input rule)

LAYOUT_KEYS = ("obs_dim", "act_dim", "hidden", "params")


def build_actor(obs_dim: int, act_dim: int, cfg: SymphonyConfig) -> Actor:
    return Actor(obs_dim, act_dim, cfg.hidden_dim, noise_clip=cfg.noise_clip, grad_dropout_keep=None,
                 sigma_beta_clamp=cfg.sigma_beta_clamp, a_max=cfg.a_max)


def actor_layout(actor: Actor) -> dict[str, Any]:
    return dict(obs_dim=actor.obs_dim, act_dim=actor.act_dim, hidden=actor.hidden,
                params=[[name, list(p.shape)] for name, p in actor.named_parameters()])


def flatten_actor(actor: Actor) -> tuple[str, np.ndarray]:
    """(layout JSON, float32 vector of all actor parameters)."""
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1).float().cpu() for p in actor.parameters()])
    return json.dumps(actor_layout(actor)), flat.numpy()


def parse_layout(layout_json: Any) -> dict[str, Any]:
    """A PolicyWeights layout as a dict whose every field is checked: a JSON object with positive integer obs_dim,
    act_dim and hidden and a list of [name, shape] params. ValueError with the reason otherwise."""
    if not isinstance(layout_json, str):
        raise ValueError(f"policy layout must be a JSON string, got {type(layout_json).__name__}")
    try:
        layout = json.loads(layout_json)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"policy layout is not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(layout, dict):
        raise ValueError(f"policy layout must be a JSON object, got {type(layout).__name__}")
    missing = [k for k in LAYOUT_KEYS if k not in layout]
    if missing:
        raise ValueError(f"policy layout lacks {', '.join(missing)}")
    for k in ("obs_dim", "act_dim", "hidden"):
        v = layout[k]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 < v < 2**31:
            raise ValueError(f"policy layout {k} must be a positive integer, got {v!r}")
    params = layout["params"]
    if not isinstance(params, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], list)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in p[1]) for p in params):
        raise ValueError("policy layout params must be a list of [name, [sizes...]]")
    return layout


def load_flat_actor(actor: Actor, layout_json: Any, data: Any) -> None:
    """Copy a flat weight vector into ``actor``; ValueError if any layout field or the size does not match, or NaN."""
    layout = parse_layout(layout_json)
    mine = actor_layout(actor)
    differ = [k for k in LAYOUT_KEYS if layout[k] != mine[k]]
    if differ:
        raise ValueError(f"policy layout (obs {layout['obs_dim']}, act {layout['act_dim']}, hidden "
                         f"{layout['hidden']}) does not match this actor (obs {mine['obs_dim']}, act "
                         f"{mine['act_dim']}, hidden {mine['hidden']}): {', '.join(differ)} differ")
    try:
        vec = torch.as_tensor(np.asarray(data, dtype=np.float32).reshape(-1))
    except (TypeError, ValueError, OverflowError):
        raise ValueError("policy data is not numeric") from None
    total = sum(p.numel() for p in actor.parameters())
    if vec.numel() != total:
        raise ValueError(f"policy data has {vec.numel()} values, layout needs {total}")
    if not bool(torch.isfinite(vec).all()):
        raise ValueError("policy data holds NaN/Inf")
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(vec.to(next(actor.parameters()).device), actor.parameters())


def actor_from_layout(layout_json: Any, cfg: SymphonyConfig, device: str | torch.device = "cpu") -> Actor:
    """A fresh actor with the sizes a layout gives (the config's hidden width replaced by the layout's)."""
    layout = parse_layout(layout_json)
    if layout["hidden"] != cfg.hidden_dim:
        cfg = cfg.replace(hidden_dim=layout["hidden"])
    return build_actor(layout["obs_dim"], layout["act_dim"], cfg).to(device)


class ActorPolicy:
    """An :class:`Actor` used for acting: one observation in, one action out (docs/algorithm.md#actor-head).

    ``act(x, act_gain, noise_gain)``: x (obs_dim,) float32 -> action (act_dim,) float32 in [−a_max, a_max]; the
    bounded noise comes from the policy's own generator (seeded by ``seed``). ``version`` is the weights' version."""

    def __init__(self, actor: Actor, *, seed: int = 0, version: int = 0, device: str | torch.device = "cpu",
                 source: str = "", config: SymphonyConfig | None = None) -> None:
        self.device = torch.device(device)
        self.actor = actor.to(self.device).eval().requires_grad_(False)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        self.actor.generator = self.generator
        self.version = int(version)
        self.source = source
        self.config = config          # the config it was trained with, when it came from a file

    @property
    def obs_dim(self) -> int:
        return self.actor.obs_dim

    @property
    def act_dim(self) -> int:
        return self.actor.act_dim

    @property
    def hidden(self) -> int:
        return self.actor.hidden

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def act(self, x: np.ndarray, *, act_gain: float = 1.0, noise_gain: float = 1.0) -> np.ndarray:
        with torch.inference_mode():
            s = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device).unsqueeze(0)
            return self.actor(s, act=act_gain, noise=noise_gain)[0][0].float().cpu().numpy()

    def load_flat(self, version: int, layout_json: Any, data: Any) -> None:
        """New weights (same layout): ValueError if they do not fit, the policy unchanged."""
        load_flat_actor(self.actor, layout_json, data)
        self.version = int(version)

    def layout(self) -> str:
        return json.dumps(actor_layout(self.actor))


def export_actor(path: str | Path, actor: Actor, cfg: SymphonyConfig, version: int,
                 metadata: dict[str, Any] | None = None) -> Path:
    """Write a small actor-only file (what a robot needs to act), atomically; ``metadata`` (JSON-able, see
    :mod:`symphony_ros.core.export_format`) is stored as the payload's ``metadata``."""
    layout, flat = flatten_actor(actor)
    payload = dict(kind="actor", layout=layout, data=torch.from_numpy(flat), config=cfg.to_dict(), version=int(version))
    if metadata is not None:
        payload["metadata"] = metadata
    return save_checkpoint(path, payload)


def load_actor_file(path: str | Path, device: str | torch.device = "cpu") -> tuple[Actor, SymphonyConfig, int]:
    """Actor from an exported actor file or a full training checkpoint. Returns (actor, config, version)."""
    payload = load_checkpoint(path)
    try:
        if payload["kind"] == "actor":
            cfg = from_dict(payload["config"])
            actor = actor_from_layout(payload["layout"], cfg)
            load_flat_actor(actor, payload["layout"], payload["data"].numpy())
            return actor.to(device), cfg, int(payload["version"])
        if payload["kind"] in ("training", "learner"):
            agent_sd = payload["agent"]
            cfg = from_dict(agent_sd["config"])
            actor = build_actor(agent_sd["obs_dim"], agent_sd["act_dim"], cfg)
            actor.load_state_dict(agent_sd["actor"])
            return actor.to(device), cfg, int(agent_sd["updates"])
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
    raise CheckpointError(f"checkpoint {path} holds a '{payload['kind']}', not an actor or training checkpoint")
