"""The acting side: an Actor that an ActorNode (or evaluation) runs, and its weights as a flat vector.

PolicyWeights messages carry ``layout`` (JSON: sizes and the ordered parameter shapes) and ``data`` (float32, all
actor parameters flattened in that order). The same layout is used for exported actor files.
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


def load_flat_actor(actor: Actor, layout_json: str, data: Any) -> None:
    """Copy a flat weight vector into ``actor``; raises ValueError if layout or size do not match, or NaN."""
    try:
        layout = json.loads(layout_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"policy layout is not valid JSON ({exc.msg})") from None
    mine = actor_layout(actor)
    if layout.get("params") != mine["params"]:
        raise ValueError(f"policy layout (obs {layout.get('obs_dim')}, act {layout.get('act_dim')}, hidden "
                         f"{layout.get('hidden')}) does not match this actor (obs {mine['obs_dim']}, act "
                         f"{mine['act_dim']}, hidden {mine['hidden']})")
    vec = torch.as_tensor(np.asarray(data, dtype=np.float32))
    total = sum(p.numel() for p in actor.parameters())
    if vec.numel() != total:
        raise ValueError(f"policy data has {vec.numel()} values, layout needs {total}")
    if not bool(torch.isfinite(vec).all()):
        raise ValueError("policy data holds NaN/Inf")
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(vec.to(next(actor.parameters()).device), actor.parameters())


def export_actor(path: str | Path, actor: Actor, cfg: SymphonyConfig, version: int) -> Path:
    """Write a small actor-only file (what a robot needs to act), atomically."""
    layout, flat = flatten_actor(actor)
    return save_checkpoint(path, dict(kind="actor", layout=layout, data=torch.from_numpy(flat),
                                      config=cfg.to_dict(), version=int(version)))


def load_actor_file(path: str | Path, device: str | torch.device = "cpu") -> tuple[Actor, SymphonyConfig, int]:
    """Actor from an exported actor file or a full training checkpoint. Returns (actor, config, version)."""
    payload = load_checkpoint(path)
    try:
        if payload["kind"] == "actor":
            cfg = from_dict(payload["config"])
            layout = json.loads(payload["layout"])
            actor = build_actor(layout["obs_dim"], layout["act_dim"], cfg)
            load_flat_actor(actor, payload["layout"], payload["data"].numpy())
            return actor.to(device), cfg, int(payload["version"])
        if payload["kind"] == "training":
            agent_sd = payload["agent"]
            cfg = from_dict(agent_sd["config"])
            actor = build_actor(agent_sd["obs_dim"], agent_sd["act_dim"], cfg)
            actor.load_state_dict(agent_sd["actor"])
            return actor.to(device), cfg, int(agent_sd["updates"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
    raise CheckpointError(f"checkpoint {path} holds a '{payload['kind']}', not an actor or training checkpoint")
