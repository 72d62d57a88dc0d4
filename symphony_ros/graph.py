"""The training graph, defined once: which nodes, their parameters and remappings.

Used by ``launch/train_sim.launch.py`` (launch_ros Node actions) and by the embedded runner (``symphony-ros train``:
the same nodes in one process, one executor), so both start exactly the same graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import contract
from .core.config import SymphonyConfig, config_dir, load_preset

NODE_EXECUTABLES = ("sim_bridge", "actor", "learner", "recorder")
# seconds a node may take to stop after SIGINT before launch escalates (SIGTERM, then SIGKILL): the learner finishes
# its unit of work and writes its (incremental) checkpoint, the recorder closes its bag
STOP_TIMEOUT_S = {"sim_bridge": 10.0, "actor": 10.0, "learner": 60.0, "recorder": 30.0}


@dataclass
class NodeSpec:
    """One node of the graph: executable (module ``symphony_ros.nodes.<executable>`` and ``lib/symphony_ros``
    script), node name, namespace, YAML parameter file, parameter overrides and topic remappings."""
    executable: str
    name: str
    namespace: str = ""
    params_file: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def stop_timeout_s(self) -> float:
        """How long the node may take to stop cleanly after SIGINT (launch's sigterm/sigkill timeouts)."""
        return STOP_TIMEOUT_S.get(self.executable, 10.0)

    def ros_args(self) -> list[str]:
        """``--ros-args`` list that gives an in-process node the same setup launch_ros would."""
        args = ["--ros-args"]
        if self.params_file is not None:
            args += ["--params-file", str(self.params_file)]
        for k, v in self.parameters.items():
            args += ["-p", f"{k}:={ros_value(v)}"]
        for a, b in self.remappings:
            args += ["-r", f"{a}:={b}"]
        return args


def ros_value(v: Any) -> str:
    """A value as ``--ros-args -p name:=value`` takes it (a YAML scalar; lists as flow sequences with quoted
    strings)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join("'" + x.replace("'", "''") + "'" if isinstance(x, str) else ros_value(x)
                              for x in v) + "]"
    if isinstance(v, str):
        return v if v else "''"
    return repr(v)


robot_namespaces = contract.robot_namespaces   # the per-robot namespace rule lives in the contract


def env_dims(env: str, prev_action_in_obs: bool = False) -> tuple[int, int]:
    """(policy obs_dim, act_dim) of a gymnasium env, for the learner's buffer allocation. ValueError (one line) for an
    environment that does not exist or is not continuous-control."""
    from .envs.gym_env import make_env
    e = make_env(env)
    try:
        obs, act = int(e.observation_space.shape[0]), int(e.action_space.shape[0])
    finally:
        e.close()
    return obs + (act if prev_action_in_obs else 0), act


def build_graph(*, config: SymphonyConfig | None = None, preset: str = "s3", env: str = "Humanoid-v5",
                device: str = "auto", mode: str = "lockstep", max_steps: int = 0, robots: int = 1, namespace: str = "",
                checkpoint_dir: str = "", record: bool = False, bag_dir: str = "", seed: int = 0,
                overrides: dict[str, Any] | None = None, obs_dim: int | None = None, act_dim: int | None = None,
                autostart: bool = True, from_bag: list[str] | None = None, action_mode: str = "paper",
                recorder_parameters: dict[str, Any] | None = None) -> list[NodeSpec]:
    """The sim training graph: per robot a sim bridge + actor (namespaced), one learner, optionally a recorder.

    ``config`` is the resolved config (resolved here from ``preset`` + ``overrides`` when not given); the nodes get
    ``preset`` and ``overrides`` as parameters (``symphony.<field>``), so a node in its own process resolves the same
    config. ``from_bag`` lists bags whose transitions the learner stores before live ones; ``recorder_parameters``
    are extra parameters of the recorder node (e.g. ``{"ros_distro": "humble"}``).
    """
    if mode not in ("lockstep", "async"):
        raise ValueError(f"mode '{mode}' is not one of lockstep, async")
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    cfg = config if config is not None else load_preset(preset, overrides)
    if obs_dim is None or act_dim is None:
        obs_dim, act_dim = env_dims(env, cfg.prev_action_in_obs)
    cdir = config_dir()
    sym = {f"symphony.{k}": v for k, v in (overrides or {}).items()}
    bridge_mode = "lockstep" if mode == "lockstep" else "realtime"
    specs: list[NodeSpec] = []
    for i, ns in enumerate(contract.robot_namespaces(robots, namespace)):
        specs.append(NodeSpec("sim_bridge", "sim_bridge", ns, cdir / "sim_bridge.yaml",
                              dict(env=env, mode=bridge_mode, seed=seed + 1000 * i, action_mode=action_mode,
                                   episode_limit=cfg.episode_limit)))
        specs.append(NodeSpec("actor", "actor", ns, cdir / "actor.yaml",
                              dict(preset=preset, mode=mode, simulation=True, robot_id=ns or "robot",
                                   seed=seed + 1000 * i, autostart=autostart, **sym),
                              contract.shared_remappings(ns, namespace)))
    specs.append(NodeSpec("learner", "learner", namespace.rstrip("/"), cdir / "learner.yaml",
                          dict(preset=preset, mode=mode, device=device, obs_dim=obs_dim, act_dim=act_dim,
                               checkpoint_dir=checkpoint_dir, max_steps=max_steps, seed=seed,
                               expected_actors=robots, autostart=autostart, **sym)))
    if from_bag:
        specs[-1].parameters["from_bag"] = [str(b) for b in from_bag]
    if record:
        specs.append(NodeSpec("recorder", "recorder", namespace.rstrip("/"), cdir / "recorder.yaml",
                              dict(output=bag_dir, **(recorder_parameters or {}))))
    return specs



# ---------------------------------------------------------------------------------------------- launch arguments
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def parse_bool(value: str, name: str) -> bool:
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"launch argument '{name}': {value!r} is not a boolean (true or false)")


def parse_int(value: str, name: str, lo: int) -> int:
    try:
        out = int(str(value).strip())
    except ValueError:
        raise ValueError(f"launch argument '{name}': {value!r} is not an integer") from None
    if out < lo:
        raise ValueError(f"launch argument '{name}': {out} must be >= {lo}")
    return out


def parse_device(value: str, name: str = "device") -> str:
    """A torch device spelled as the learner takes it (auto, cpu, cuda, cuda:<i>); CUDA must be present."""
    from .core.device import resolve_device
    try:
        resolve_device(str(value).strip())
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"launch argument '{name}': {exc}") from None
    return str(value).strip()


def parse_choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"launch argument '{name}': {value!r} is not one of {', '.join(choices)}")
    return value
