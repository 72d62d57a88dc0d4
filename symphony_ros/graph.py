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

NODE_EXECUTABLES = ("sim_bridge", "actor", "learner", "recorder", "task", "mujoco_driver")
# seconds a node may take to stop after SIGINT before launch escalates (SIGTERM, then SIGKILL): the learner finishes
# its unit of work and writes its (incremental) checkpoint, the recorder closes its bag
STOP_TIMEOUT_S = {"sim_bridge": 10.0, "actor": 10.0, "learner": 60.0, "recorder": 30.0, "task": 10.0,
                  "mujoco_driver": 10.0}
LEARNER_PLACES = ("local", "remote", "only")   # robot graph: learner here, on another machine, or only the learner


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


    def command(self, python: str | None = None) -> list[str]:
        """The command line that starts this node in its own process (what ``ros2 run`` runs, with the spec's name,
        namespace, parameters and remappings)."""
        import sys
        args = self.ros_args() + ["-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:=/{self.namespace.strip('/')}"]
        return [python or sys.executable, "-m", f"symphony_ros.nodes.{self.executable}", *args]


def ros_value(v: Any) -> str:
    """A value as ``--ros-args -p name:=value`` takes it (a YAML scalar; strings single-quoted, lists as flow
    sequences)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join("'" + x.replace("'", "''") + "'" if isinstance(x, str) else ros_value(x)
                              for x in v) + "]"
    if isinstance(v, str):   # always a YAML single-quoted scalar: '{a: 1}', '5' or 'true' stay strings
        return "'" + v.replace("'", "''") + "'"
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



def robot_dims(description: Any, task: str, *, observation: list[Any] | None = None, task_params: Any = None,
               prev_action_in_obs: bool = False) -> tuple[int, int]:
    """(policy obs_dim, act_dim) of a task on a robot description (the learner's buffer allocation). ValueError (one
    line) if the description, the task or the observation spec is unusable."""
    from .robot.description import RobotDescription, load_description
    from .tasks.base import ObservationSpec
    from .tasks.loader import load_task
    d = description if isinstance(description, RobotDescription) else load_description(description)
    t = load_task(task, d, task_params)
    spec = ObservationSpec(observation if observation is not None else t.observation)
    return spec.size(d) + (d.act_dim if prev_action_in_obs else 0), d.act_dim


def build_robot_graph(*, description: str, task: str = "humanoid_stand", preset: str = "ed",
                      config: SymphonyConfig | None = None, device: str = "auto", learner: str = "local",
                      sim: bool = False, namespace: str = "", checkpoint_dir: str = "", max_steps: int = 0,
                      seed: int = 0, overrides: dict[str, Any] | None = None, task_params: str = "",
                      observation: str = "", episode_time_s: float = 20.0, soft_start_s: float = 0.5,
                      safe_ramp_s: float = 1.0, recovery_delay_s: float = 1.0, record: bool = False,
                      bag_dir: str = "", deploy: bool = False,
                      policy_file: str = "", autostart: bool = True,
                      recorder_parameters: dict[str, Any] | None = None) -> list[NodeSpec]:
    """The robot graph (docs/robot.md): [mujoco_driver if ``sim``] + task + actor (async, ``simulation: false``)
    [+ learner] [+ recorder], all in ``namespace``. ``learner``: ``local`` (here), ``remote`` (on another machine
    with the same ROS_DOMAIN_ID: not started here) or ``only`` (just the learner: the remote machine's half).
    ``deploy``: the actor runs ``policy_file`` (an export) noise-free and no learner is started.

    The actor gets the description (limits, rate limit, the controller topic), a watchdog of ten control periods
    (at least 0.2 s), a ``soft_start_s`` blend after activation and a ``safe_ramp_s`` ramp to the safe pose after each
    episode; the task node calls the description's recovery service ``recovery_delay_s`` after an episode."""
    import yaml

    from .robot.description import load_description
    if learner not in LEARNER_PLACES:
        raise ValueError(f"learner '{learner}' is not one of {', '.join(LEARNER_PLACES)}")
    if deploy and not policy_file:
        raise ValueError("deploy needs policy_file (an exported policy: symphony-ros export CKPT --out FILE)")
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    d = load_description(description)
    if sim and not d.sim.env:
        raise ValueError(f"sim:=true needs a description with sim.env (the MuJoCo model); {d.source} has none")
    cfg = config if config is not None else load_preset(preset, overrides)
    obs_spec = yaml.safe_load(observation) if observation else None
    params = yaml.safe_load(task_params) if task_params else None
    obs_dim, act_dim = robot_dims(d, task, observation=obs_spec, task_params=params,
                                  prev_action_in_obs=cfg.prev_action_in_obs)
    cdir = config_dir()
    ns = namespace.rstrip("/")
    sym = {f"symphony.{k}": v for k, v in (overrides or {}).items()}
    desc = str(d.source)
    specs: list[NodeSpec] = []
    if learner != "only":
        if sim:
            specs.append(NodeSpec("mujoco_driver", "mujoco_driver", ns, cdir / "mujoco_driver.yaml",
                                  dict(robot_description=desc, seed=seed)))
        specs.append(NodeSpec("task", "task", ns, cdir / "task.yaml",
                              dict(robot_description=desc, task=task, task_params=task_params,
                                   observation=observation, episode_time_s=float(episode_time_s),
                                   recovery_delay_s=float(recovery_delay_s), autostart=autostart)))
        actor = dict(robot_description=desc, preset=preset, mode="async", simulation=False, robot_id=ns or "robot",
                     seed=seed, autostart=autostart, obs_timeout_s=max(0.2, 10.0 * d.period_s),
                     soft_start_s=float(soft_start_s), safe_ramp_s=float(safe_ramp_s), **sym)
        if deploy:
            actor.update(deploy=True, policy_file=str(policy_file))
        elif policy_file:
            actor["policy_file"] = str(policy_file)
        specs.append(NodeSpec("actor", "actor", ns, cdir / "actor.yaml", actor))
    if learner in ("local", "only") and not deploy:
        specs.append(NodeSpec("learner", "learner", ns, cdir / "learner.yaml",
                              dict(preset=preset, mode="async", device=device, obs_dim=obs_dim, act_dim=act_dim,
                                   checkpoint_dir=checkpoint_dir, max_steps=max_steps, seed=seed,
                                   autostart=autostart, **sym)))
    if record:
        specs.append(NodeSpec("recorder", "recorder", ns, cdir / "recorder.yaml",
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


def parse_float(value: str, name: str, lo: float) -> float:
    try:
        out = float(str(value).strip())
    except ValueError:
        raise ValueError(f"launch argument '{name}': {value!r} is not a number") from None
    if not out >= lo:
        raise ValueError(f"launch argument '{name}': {out} must be >= {lo}")
    return out


def parse_choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"launch argument '{name}': {value!r} is not one of {', '.join(choices)}")
    return value


# ---------------------------------------------------------------------------------------------- launch files
def launch_description(arguments: dict[str, tuple[str, str]], make_specs):
    """The LaunchDescription of a launch file: its ``arguments`` (name -> (default, help)) declared, and at launch
    time ``make_specs(values)`` (the argument values as strings -> NodeSpecs, raising ValueError with one line for a
    bad one) turned into launch_ros Node actions. Each node gets the time it needs to stop after SIGINT before launch
    escalates, and any node exiting shuts the whole graph down."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def nodes(context):
        specs = make_specs({k: LaunchConfiguration(k).perform(context) for k in arguments})
        return [Node(package="symphony_ros", executable=s.executable, name=s.name, namespace=s.namespace or None,
                     parameters=[str(s.params_file), s.parameters], remappings=s.remappings, output="screen",
                     sigterm_timeout=str(s.stop_timeout_s), sigkill_timeout=str(s.stop_timeout_s),
                     on_exit=[Shutdown(reason=f"{s.namespace or ''}/{s.name} exited")])
                for s in specs]

    return LaunchDescription([DeclareLaunchArgument(k, default_value=d, description=h)
                              for k, (d, h) in arguments.items()] + [OpaqueFunction(function=nodes)])
