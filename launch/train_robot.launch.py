"""Train Symphony on a robot: task node + actor (async) + learner, on the robot's own driver topics.

    ros2 launch symphony_ros train_robot.launch.py robot:=<description> task:=humanoid_stand
    ros2 launch symphony_ros train_robot.launch.py robot:=inverted_pendulum task:=pendulum_balance sim:=true
    # learner on another machine (same ROS_DOMAIN_ID): learner:=remote here, learner:=only there

Wiring only: nodes, parameters and remappings come from symphony_ros.graph.build_robot_graph (the same function
`symphony-ros train --robot` uses). ``sim:=true`` starts the simulated driver (mujoco_driver) in place of the robot;
everything else is identical. Every argument is checked before any node starts (one line, launch exits non-zero).
Ctrl-C stops every node cleanly (the actor sends its safe command, the learner writes its checkpoint).
"""
from symphony_ros import graph as g

ARGS = {
    "robot": ("", "robot description: a shipped name (mujoco_humanoid, inverted_pendulum) or a YAML path"),
    "task": ("humanoid_stand", "task plugin: humanoid_stand, humanoid_walk, pendulum_balance, an entry point, a path"),
    "task_params": ("", "YAML mapping of task parameters, e.g. '{max_tilt_deg: 50.0}'"),
    "observation": ("", "YAML list of observation fields ('' = the task's default)"),
    "episode_time_s": ("20.0", "episode time limit in seconds"),
    "preset": ("ed", "Symphony preset (ed: the embedded one), or a preset YAML path"),
    "device": ("auto", "learner device: auto, cpu, cuda"),
    "learner": ("local", "local (here), remote (another machine, same ROS_DOMAIN_ID), only (just the learner)"),
    "sim": ("false", "true: start the simulated driver (MuJoCo) in place of the robot"),
    "namespace": ("", "namespace of the whole graph"),
    "checkpoint_dir": ("checkpoints", "learner checkpoints (resumed from on start)"),
    "max_steps": ("0", "stop learning after this many stored transitions (0 = no limit)"),
    "soft_start_s": ("0.5", "actor: blend into the policy over this long after activation (s)"),
    "recovery_delay_s": ("1.0", "task: call the robot's recovery service this long after an episode ends (s)"),
    "safe_ramp_s": ("1.0", "actor: ramp to the safe pose after an episode over this long (s)"),
    "record": ("false", "record the graph's topics to a rosbag2 bag"),
    "bag_dir": ("", "bag output directory ('' = bags/<timestamp>)"),
    "seed": ("0", "random seed"),
}


def _specs(a: dict[str, str]) -> list:
    if not a["robot"]:
        raise ValueError("launch argument 'robot' is required (a description name or path)")
    return g.build_robot_graph(description=a["robot"], task=a["task"], task_params=a["task_params"],
                               observation=a["observation"],
                               episode_time_s=g.parse_float(a["episode_time_s"], "episode_time_s", 1e-3),
                               preset=a["preset"], device=g.parse_device(a["device"]),
                               learner=g.parse_choice(a["learner"], "learner", g.LEARNER_PLACES),
                               sim=g.parse_bool(a["sim"], "sim"), namespace=a["namespace"],
                               checkpoint_dir=a["checkpoint_dir"],
                               max_steps=g.parse_int(a["max_steps"], "max_steps", 0),
                               soft_start_s=g.parse_float(a["soft_start_s"], "soft_start_s", 0.0),
                               safe_ramp_s=g.parse_float(a["safe_ramp_s"], "safe_ramp_s", 0.0),
                               recovery_delay_s=g.parse_float(a["recovery_delay_s"], "recovery_delay_s", 0.0),
                               record=g.parse_bool(a["record"], "record"), bag_dir=a["bag_dir"],
                               seed=g.parse_int(a["seed"], "seed", 0))


def generate_launch_description():
    return g.launch_description(ARGS, _specs)
