"""Train Symphony in MuJoCo over ROS 2: sim bridge(s) + actor(s) + one learner (+ optional recorder).

    ros2 launch symphony_ros train_sim.launch.py preset:=s3 env:=Humanoid-v5 device:=auto mode:=lockstep

Wiring only: the node list, parameters and remappings come from symphony_ros.graph.build_graph, the same function
the embedded runner (`symphony-ros train`) uses. Every argument is checked before any node starts (one line naming
the argument, and launch exits non-zero). Ctrl-C stops every node cleanly (the actor sends its safe command, the
learner writes its checkpoint, the recorder closes its bag); each node gets the time it needs before launch
escalates to SIGTERM and SIGKILL. If any node dies, the whole graph is shut down.
"""
from symphony_ros import graph as g

ARGS = {
    "preset": ("s3", "Symphony preset: s3, se, s2, ed, s2_tilde (or a YAML path)"),
    "env": ("Humanoid-v5", "gymnasium MuJoCo environment id"),
    "device": ("auto", "learner device: auto (CUDA when available), cpu, cuda"),
    "mode": ("lockstep", "lockstep (paper's loop, sim time) or async (real-time, as on a robot)"),
    "max_steps": ("0", "stop learning after this many stored transitions (0 = no limit)"),
    "namespace": ("", "namespace prefix for the whole graph"),
    "robots": ("1", "number of namespaced sim bridge + actor pairs feeding the learner"),
    "checkpoint_dir": ("checkpoints", "learner checkpoints (resumed from on start)"),
    "record": ("false", "record the graph's topics to a rosbag2 bag (true or false)"),
    "bag_dir": ("", "bag output directory ('' = bags/<timestamp>)"),
    "seed": ("0", "random seed"),
}


def _specs(a: dict[str, str]) -> list:
    return g.build_graph(preset=a["preset"], env=a["env"], device=g.parse_device(a["device"]),
                         mode=g.parse_choice(a["mode"], "mode", ("lockstep", "async")),
                         max_steps=g.parse_int(a["max_steps"], "max_steps", 0),
                         robots=g.parse_int(a["robots"], "robots", 1), namespace=a["namespace"],
                         checkpoint_dir=a["checkpoint_dir"], record=g.parse_bool(a["record"], "record"),
                         bag_dir=a["bag_dir"], seed=g.parse_int(a["seed"], "seed", 0))


def generate_launch_description():
    return g.launch_description(ARGS, _specs)
