"""Typed, validated Symphony configuration and the presets (docs/algorithm.md#presets).

Every algorithm constant lives in one :class:`SymphonyConfig` field whose metadata gives its description and allowed
values; the preset YAML files in ``config/presets/`` set every field, the CLI (``--set key=value``) and the ROS nodes
(parameters declared from :data:`FIELDS`) override them, and :func:`validate` checks all of them in one place.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .rank_weights import FAMILIES

PRESETS = ("s3", "se", "s2", "ed", "s2_tilde")


def config_dir() -> Path:
    """The package's ``config/`` folder: $SYMPHONY_ROS_CONFIG_DIR, the source tree (editable installs), the pip
    prefix's ``share/symphony_ros/config`` (data_files) or the ament index share directory (colcon)."""
    import os
    import sys
    candidates = [os.environ.get("SYMPHONY_ROS_CONFIG_DIR"),
                  Path(__file__).resolve().parents[2] / "config",
                  Path(sys.prefix) / "share" / "symphony_ros" / "config"]
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory("symphony_ros")) / "config")
    except Exception:  # ament_index absent or package not indexed: the other places still apply
        pass
    for c in candidates:
        if c and (Path(c) / "presets").is_dir():
            return Path(c)
    raise ConfigError("cannot find symphony_ros' config/ folder (presets); reinstall the package or set "
                      "SYMPHONY_ROS_CONFIG_DIR")


class ConfigError(ValueError):
    """A configuration key or value is not acceptable; the message names the key and what is allowed."""


def _f(default: Any, desc: str, *, lo: float | None = None, hi: float | None = None,
       choices: tuple[Any, ...] | None = None, lo_open: bool = False, hi_open: bool = False, nullable: bool = False):
    meta = dict(desc=desc, lo=lo, hi=hi, choices=choices, lo_open=lo_open, hi_open=hi_open, nullable=nullable)
    return field(default=default, metadata=meta)


@dataclass
class SymphonyConfig:
    """All constants of one Symphony variant. Defaults are S3 (SuspensionRailway/symphony@939a9f3)."""

    preset: str = _f("s3", "preset this config started from", choices=PRESETS + ("custom",))
    # networks (docs/algorithm.md#networks)
    hidden_dim: int = _f(512, "hidden width h of every FeedForward (capacity // 1000)", lo=1, hi=65536)
    heads_per_critic: int = _f(128, "heads k per critic; N_q = n_critics·k (= batch size in the paper)", lo=1, hi=65536)
    n_critics: int = _f(3, "critic MLPs in the ensemble", lo=1, hi=64)
    grad_dropout_keep: float | None = _f(None, "P(M=1) of gradient dropout after output layers; null = off",
                                         lo=0.0, hi=1.0, lo_open=True, nullable=True)
    target_grad_dropout: bool = _f(False, "keep gradient dropout in the target critic copy: no forward effect, but it "
                                   "masks the actor's TA gradient through the target (S2, S2~ reference)")
    # actor (docs/algorithm.md#actor-head)
    noise_clip: float = _f(math.e, "k in ε = clamp(N(0,1), ±k)/k: e (std 0.366) or π (SE, std 0.318)",
                           lo=0.0, lo_open=True, hi=100.0)
    sigma_beta_clamp: float = _f(1e-3, "σ and β are clamped to [c, 1−c]", lo=0.0, hi=0.5, lo_open=True, hi_open=True)
    a_max: float = _f(1.0, "action amplitude a_max in policy units", lo=0.0, lo_open=True, hi=1e6)
    # loss and targets (docs/algorithm.md#loss)
    gamma: float = _f(0.99, "discount γ", lo=0.0, hi=1.0, hi_open=True)
    ema_alpha: float = _f(1 / ((1 + 5 ** 0.5) / 2), "α of the temporal-advantage EMA (1/φ)", lo=0.0, hi=1.0,
                          hi_open=True)
    ta_eps: float = _f(1e-6, "ε guarding |m| in TA = (Q' − m)/max(|m|, ε)", lo=0.0, lo_open=True, hi=1.0)
    target_weight_family: str = _f("tanh", "rank-weight family of the sorted target critic", choices=FAMILIES)
    target_weight_power: float = _f(math.e, "exponent p of the target weight family", lo=0.0, lo_open=True, hi=100.0)
    # optimisation (docs/algorithm.md#optimizer)
    updates_per_step: int = _f(3, "G: fresh-batch updates per environment step (UTD)", lo=0, hi=1000)
    batch_size: int = _f(384, "B: transitions per update (N_q in the paper)", lo=1, hi=1_000_000)
    lr: float = _f(1e-4, "learning rate", lo=0.0, lo_open=True, hi=1.0)
    adam_beta1: float = _f(1 / ((1 + 5 ** 0.5) / 2), "Adam β1 (1/φ)", lo=0.0, hi=1.0, hi_open=True)
    adam_beta2: float = _f(0.995, "Adam β2", lo=0.0, hi=1.0, hi_open=True)
    adam_eps: float = _f(1e-8, "Adam ε", lo=0.0, lo_open=True, hi=1.0)
    weight_decay: float = _f(0.01, "decoupled weight decay λ on every parameter", lo=0.0, hi=1.0)
    tau: float = _f(0.005, "Polyak rate τ of the target critics", lo=0.0, lo_open=True, hi=1.0)
    adam_eps_anneal: bool = _f(False, "opt-in (2026): Adam ε anneals from 1 − ε to ε at rate β2 (no first-step burst)")
    ta_scalar_denominator: bool = _f(False, "opt-in (2026): TA's denominator is the scalar EMA of batch means")
    swaddling_in_target: bool = _f(False, "opt-in (2026): the TD target subtracts the next state's swaddling "
                                   "(mean over action dims, stop-grad, without the β-only term)")
    max_bad_updates: int = _f(100, "update guard: updates in a row with a non-finite loss or gradient (each skipped) "
                              "before the last good state is restored", lo=1, hi=1_000_000_000)
    # Fading Replay Buffer (docs/algorithm.md#replay-buffer)
    n_exp: int = _f(10240, "N_exp: exploration steps with the untrained actor + noise, no updates", lo=1,
                    hi=100_000_000)
    buffer_times: int = _f(50, "exploration data is copied this many times; capacity N = n_exp·times", lo=1, hi=100_000)
    buffer_weight_family: str = _f("tanh", "rank-weight family of replay sampling (age rank)", choices=FAMILIES)
    buffer_weight_power: float = _f(math.e, "exponent p of the replay weight family", lo=0.0, lo_open=True, hi=100.0)
    terminal_survival_cycles: int = _f(-1, "pointer passes a terminal is skipped before eviction; -1 = forever (S3)",
                                       lo=-1, hi=1_000_000)
    buffer_dtype: str = _f("float32", "storage dtype of the buffer", choices=("float32", "float16"))
    reward_scale_eps: float = _f(1e-8, "ε guarding r̄ₙ = max(mean|r|, ε)", lo=0.0, lo_open=True, hi=1.0)
    storage_abs_limit: float = _f(1e6, "storage rule: the largest |observation value| and |reward| a transition may "
                                  "hold (larger ones are rejected, never stored)", lo=0.0, lo_open=True, hi=3e38)
    # protocol (docs/algorithm.md#training-loop, simulation)
    episode_limit: int = _f(1000, "steps per episode (the TimeLimit)", lo=1, hi=100_000_000)
    zero_policy_window: int = _f(50, "SIMULATION ONLY: last steps of an episode acted with pure noise", lo=0,
                                 hi=100_000_000)
    eval_every: int = _f(2500, "steps between noise-free evaluations", lo=1, hi=100_000_000)
    eval_episodes: int = _f(25, "episodes per evaluation", lo=0, hi=100_000)
    prev_action_in_obs: bool = _f(False, "prepend the previous action to the observation (S2~ Mar-2026 code)")
    # performance (off = exact float32)
    bf16_autocast: bool = _f(False, "run the update's matmuls in bfloat16 autocast (faster on CPU/GPU)")
    cuda_graph: bool = _f(True, "on CUDA, capture the whole update once and replay it (removes launch overhead); "
                                "ignored on CPU")

    @property
    def n_q(self) -> int:
        return self.n_critics * self.heads_per_critic

    @property
    def buffer_capacity(self) -> int:
        return self.n_exp * self.buffer_times

    def replace(self, **overrides: Any) -> "SymphonyConfig":
        """A validated copy with some fields changed (unknown keys and bad values raise ConfigError)."""
        merged = dataclasses.asdict(self)
        merged.update(overrides)
        return from_dict(merged)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(SymphonyConfig)}


def _allowed(f: dataclasses.Field) -> str:
    m = f.metadata
    if m.get("choices"):
        return "one of " + ", ".join(map(str, m["choices"]))
    if f.type in ("bool",):
        return "true or false"
    lo = "-inf" if m.get("lo") is None else m["lo"]
    hi = "inf" if m.get("hi") is None else m["hi"]
    left = "(" if m.get("lo_open") else "["
    right = ")" if m.get("hi_open") else "]"
    kind = "an integer" if f.type == "int" else "a number"
    return f"{kind} in {left}{lo}, {hi}{right}" + (" or null" if m.get("nullable") else "")


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """Convert one raw value (YAML, CLI string, ROS parameter) to the field's type, or raise ConfigError."""
    m, name = f.metadata, f.name
    if value is None or (isinstance(value, str) and value.strip().lower() in ("null", "none", "~")):
        if m.get("nullable"):
            return None
        raise ConfigError(f"config key '{name}': null is not allowed; expected {_allowed(f)}")
    try:
        if f.type == "bool":
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return low in ("true", "1", "yes")
            if not isinstance(value, (bool, int)) or value not in (0, 1):
                raise ValueError
            return bool(value)
        if f.type == "int":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            out: Any = int(value) if not isinstance(value, str) else int(value.strip())
        elif f.type in ("float", "float | None"):
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
        else:
            out = str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key '{name}': {value!r} is not valid; expected {_allowed(f)}") from None
    if m.get("choices") and out not in m["choices"]:
        raise ConfigError(f"config key '{name}': {out!r} is not allowed; expected {_allowed(f)}")
    lo, hi = m.get("lo"), m.get("hi")
    if lo is not None and (out < lo or (m.get("lo_open") and out == lo)) or \
            hi is not None and (out > hi or (m.get("hi_open") and out == hi)):
        raise ConfigError(f"config key '{name}': {out!r} is out of range; expected {_allowed(f)}")
    return out


def check_field(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for config field ``name`` (one line), or None if it is."""
    f = FIELDS.get(name)
    if f is None:
        return f"unknown config key '{name}'"
    try:
        _coerce(f, value)
    except ConfigError as exc:
        return str(exc)
    return None


def validate(cfg: SymphonyConfig) -> SymphonyConfig:
    """Check every field and the relations between them; return cfg or raise ConfigError."""
    for name, f in FIELDS.items():
        setattr(cfg, name, _coerce(f, getattr(cfg, name)))
    if cfg.buffer_capacity < cfg.batch_size:
        raise ConfigError(f"config keys 'n_exp'·'buffer_times' = {cfg.buffer_capacity} must be >= 'batch_size' "
                          f"= {cfg.batch_size}")
    if cfg.zero_policy_window >= cfg.episode_limit:
        raise ConfigError(f"config key 'zero_policy_window' ({cfg.zero_policy_window}) must be smaller than "
                          f"'episode_limit' ({cfg.episode_limit})")
    return cfg


def from_dict(values: Mapping[str, Any], *, source: str = "config") -> SymphonyConfig:
    """Build a validated config from a mapping; an unknown key is a ConfigError naming it."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{source}: unknown config key '{unknown[0]}'; known keys: {', '.join(FIELDS)}")
    cfg = SymphonyConfig()
    for k, v in values.items():
        setattr(cfg, k, v)
    return validate(cfg)


def load_yaml(path: str | Path) -> SymphonyConfig:
    """Load a preset/config YAML file (a flat mapping of config keys). Bad YAML is a ConfigError."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of config keys, not {type(data).__name__}")
    return from_dict(data, source=str(path))


def load_preset(name: str, overrides: Mapping[str, Any] | None = None) -> SymphonyConfig:
    """Preset by name (s3, se, s2, ed, s2_tilde) or by YAML path, then overrides (validated)."""
    key = name.lower().replace("~", "_tilde").replace("-", "_")
    if key in PRESETS:
        cfg = load_yaml(config_dir() / "presets" / f"{key}.yaml")
    elif name.endswith((".yaml", ".yml")):
        cfg = load_yaml(name)
    else:
        raise ConfigError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)} or a YAML file path")
    return cfg.replace(**dict(overrides)) if overrides else cfg


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """Parse CLI ``key=value`` strings (values as YAML scalars); keys are checked by from_dict later."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"override '{pair}' must look like key=value")
        k, v = pair.split("=", 1)
        k = k.strip()
        if k not in FIELDS:
            raise ConfigError(f"unknown config key '{k}'; known keys: {', '.join(FIELDS)}")
        try:
            out[k] = yaml.safe_load(v)
        except yaml.YAMLError:
            out[k] = v
    return out
