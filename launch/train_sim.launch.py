"""Train Symphony in MuJoCo over ROS 2: sim bridge(s) + actor(s) + one learner (+ optional recorder).

    ros2 launch symphony_ros train_sim.launch.py preset:=s3 env:=Humanoid-v5 device:=auto mode:=lockstep

Wiring only: the node list, parameters and remappings come from symphony_ros.graph.build_graph, the same function
the embedded runner (`symphony-ros train`) uses.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

ARGS = {
    "preset": ("s3", "Symphony preset: s3, se, s2, ed, s2_tilde (or a YAML path)"),
    "env": ("Humanoid-v5", "gymnasium MuJoCo environment id"),
    "device": ("auto", "learner device: auto (CUDA when available), cpu, cuda"),
    "mode": ("lockstep", "lockstep (paper's loop, sim time) or async (real-time, as on a robot)"),
    "max_steps": ("0", "stop learning after this many stored transitions (0 = no limit)"),
    "namespace": ("", "namespace prefix for the whole graph"),
    "robots": ("1", "number of namespaced sim bridge + actor pairs feeding the learner"),
    "checkpoint_dir": ("checkpoints", "learner checkpoints (resumed from on start)"),
    "record": ("false", "record the graph's topics to a rosbag2 bag"),
    "bag_dir": ("", "bag output directory ('' = bags/<timestamp>)"),
    "seed": ("0", "random seed"),
}


def _nodes(context):
    from symphony_ros.graph import build_graph
    a = {k: LaunchConfiguration(k).perform(context) for k in ARGS}
    specs = build_graph(preset=a["preset"], env=a["env"], device=a["device"], mode=a["mode"],
                        max_steps=int(a["max_steps"]), robots=int(a["robots"]), namespace=a["namespace"],
                        checkpoint_dir=a["checkpoint_dir"], record=a["record"].lower() in ("1", "true", "yes"),
                        bag_dir=a["bag_dir"], seed=int(a["seed"]))
    return [Node(package="symphony_ros", executable=s.executable, name=s.name, namespace=s.namespace or None,
                 parameters=[str(s.params_file), s.parameters], remappings=s.remappings, output="screen")
            for s in specs]


def generate_launch_description():
    return LaunchDescription([DeclareLaunchArgument(k, default_value=d, description=h) for k, (d, h) in ARGS.items()]
                             + [OpaqueFunction(function=_nodes)])
