"""Deploy a trained policy on a robot: task node + actor from an exported file, no learner, noise-free.

    symphony-ros export runs/symphony/checkpoints --format onnx --out policy.onnx     # on the training machine
    ros2 launch symphony_ros deploy.launch.py robot:=<description> task:=humanoid_stand policy_file:=policy.onnx

The actor runs with ``deploy: true``: the export (ONNX, TorchScript or a .pt actor file) through
symphony_ros.control.inference (no learner, no training code; ONNX needs no torch), deterministic actions, no
transitions, the full safety pipeline and e-stop. ``sim:=true`` checks the policy on the simulated driver first.
"""
from symphony_ros import graph as g

ARGS = {
    "robot": ("", "robot description: a shipped name or a YAML path"),
    "task": ("humanoid_stand", "task plugin the policy was trained with (its observation spec)"),
    "task_params": ("", "YAML mapping of task parameters"),
    "observation": ("", "YAML list of observation fields ('' = the task's default)"),
    "episode_time_s": ("20.0", "episode time limit in seconds"),
    "policy_file": ("", "the exported policy (symphony-ros export ... --out FILE); REQUIRED"),
    "sim": ("false", "true: start the simulated driver (MuJoCo) in place of the robot"),
    "namespace": ("", "namespace of the whole graph"),
    "soft_start_s": ("1.0", "actor: blend into the policy over this long after activation (s)"),
    "recovery_delay_s": ("1.0", "task: call the robot's recovery service this long after an episode ends (s)"),
    "safe_ramp_s": ("1.0", "actor: ramp to the safe pose after an episode over this long (s)"),
    "seed": ("0", "random seed (the simulated driver's reset)"),
}


def _specs(a: dict[str, str]) -> list:
    if not a["robot"]:
        raise ValueError("launch argument 'robot' is required (a description name or path)")
    if not a["policy_file"]:
        raise ValueError("launch argument 'policy_file' is required (symphony-ros export CKPT --out FILE)")
    return g.build_robot_graph(description=a["robot"], task=a["task"], task_params=a["task_params"],
                               observation=a["observation"],
                               episode_time_s=g.parse_float(a["episode_time_s"], "episode_time_s", 1e-3),
                               deploy=True, policy_file=a["policy_file"], learner="remote",
                               sim=g.parse_bool(a["sim"], "sim"), namespace=a["namespace"],
                               soft_start_s=g.parse_float(a["soft_start_s"], "soft_start_s", 0.0),
                               safe_ramp_s=g.parse_float(a["safe_ramp_s"], "safe_ramp_s", 0.0),
                               recovery_delay_s=g.parse_float(a["recovery_delay_s"], "recovery_delay_s", 0.0),
                               seed=g.parse_int(a["seed"], "seed", 0))


def generate_launch_description():
    return g.launch_description(ARGS, _specs)
