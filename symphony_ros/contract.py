"""The topic contract of a symphony_ros graph: every topic's name, message type, QoS, scope and direction, and the
per-robot namespace rule. This is the ONE place they are written down; nodes, the graph definition, the launch files,
the recorder, the replay tool and the README table all read it. Pure Python (no rclpy): the rclpy QoS profiles are
built from :class:`QosSpec` in :func:`symphony_ros.nodes.common.qos_profile`.

Scopes:

* ``robot``: one per robot, relative names, so a robot namespace prefixes them (``/robot1/env_step``);
* ``shared``: the learner's topics, one per graph: robot nodes in a namespace are remapped to the graph's
  (absolute) names by :func:`shared_remappings`;
* ``global``: an absolute name (``/clock``).
"""
from __future__ import annotations

from dataclasses import dataclass

INTERFACES_PACKAGE = "symphony_ros_interfaces"


@dataclass(frozen=True)
class QosSpec:
    """A QoS profile in words. ``reliable`` False = best effort; ``transient_local`` = latched (late joiners get the
    last ``depth`` samples); history is always keep-last ``depth``."""
    label: str
    reliable: bool
    depth: int
    transient_local: bool = False


SENSOR_DATA = QosSpec("sensor data (best effort, 5)", reliable=False, depth=5)   # = rclpy qos_profile_sensor_data
RELIABLE = QosSpec("reliable, 10", reliable=True, depth=10)
DEEP = QosSpec("reliable, 10,000 (none lost)", reliable=True, depth=10_000)
LATCHED = QosSpec("reliable + transient local (latched)", reliable=True, depth=1, transient_local=True)
ACKS = QosSpec("reliable, 100", reliable=True, depth=100)


@dataclass(frozen=True)
class Topic:
    """One topic of the contract. ``name`` is relative (robot/shared) or absolute (global); ``msgtype`` is the full
    ROS 2 type name (``pkg/msg/Name``)."""
    name: str
    msgtype: str
    qos: QosSpec
    scope: str            # "robot" | "shared" | "global"
    source: str
    sinks: str
    doc: str

    @property
    def type_short(self) -> str:
        """``pkg/Name`` as the README writes it."""
        pkg, _, name = self.msgtype.partition("/msg/")
        return f"{pkg}/{name}"


def _own(name: str) -> str:
    return f"{INTERFACES_PACKAGE}/msg/{name}"


JOINT_STATES = Topic("joint_states", "sensor_msgs/msg/JointState", SENSOR_DATA, "robot",
                     "sim bridge / driver", "task side", "actuated joints, model names")
IMU = Topic("imu", "sensor_msgs/msg/Imu", SENSOR_DATA, "robot", "sim bridge / driver", "task side", "torso IMU")
ENV_STEP = Topic("env_step", _own("EnvStep"), RELIABLE, "robot", "sim bridge / task node", "actor",
                 "observation, reward, terminated, truncated of one step")
JOINT_COMMANDS = Topic("joint_commands", "std_msgs/msg/Float64MultiArray", RELIABLE, "robot", "actor",
                       "sim bridge / controller", "one value per actuated joint, joint_states order")
TRANSITIONS = Topic("transitions", _own("Transition"), DEEP, "shared", "actors", "learner",
                    "(s, a, r, s', terminated) of every acted step")
POLICY_WEIGHTS = Topic("policy_weights", _own("PolicyWeights"), LATCHED, "shared", "learner", "actors",
                       "actor weights every K updates")
LEARNER_STATUS = Topic("learner_status", _own("LearnerStatus"), RELIABLE, "shared", "learner", "anyone",
                       "counters, losses, sigma/beta at 1 Hz")
LEARNER_ACK = Topic("learner_ack", _own("LearnerAck"), ACKS, "shared", "learner", "actors",
                    "lockstep handshake: a transition stored and its updates done")
ACTOR_STATUS = Topic("actor_status", _own("ActorStatus"), RELIABLE, "robot", "actor", "anyone",
                     "counters, safety-stage shares, saturation and smoothness at 1 Hz")
E_STOP = Topic("e_stop", "std_msgs/msg/Bool", RELIABLE, "robot", "operator / safety system", "actor",
               "true latches the e-stop (cleared only by the actor's ~/clear_e_stop service)")
CLOCK = Topic("/clock", "rosgraph_msgs/msg/Clock", RELIABLE, "global", "sim bridge (lockstep)", "all",
              "simulated time")

TOPICS: tuple[Topic, ...] = (JOINT_STATES, IMU, ENV_STEP, JOINT_COMMANDS, TRANSITIONS, POLICY_WEIGHTS,
                             LEARNER_STATUS, LEARNER_ACK, ACTOR_STATUS, E_STOP, CLOCK)
SHARED_TOPICS: tuple[Topic, ...] = tuple(t for t in TOPICS if t.scope == "shared")
OWN_MESSAGES = ("EnvStep", "Transition", "PolicyWeights", "LearnerStatus", "LearnerAck", "ActorStatus")


def topic_by_basename(name: str) -> Topic | None:
    """The contract topic whose last name component is ``name``'s (``/robot1/env_step`` -> ENV_STEP), or None."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    for t in TOPICS:
        if t.name.lstrip("/") == base:
            return t
    return None


# ---------------------------------------------------------------------------------------------- namespaces
def robot_namespaces(robots: int, namespace: str = "") -> list[str]:
    """The namespace of each robot: '' (or ``namespace``) for one robot; ``<namespace>/robot1``, ``/robot2``, ...
    for several."""
    if robots < 1:
        raise ValueError(f"robots must be >= 1, got {robots}")
    base = namespace.rstrip("/")
    if robots == 1:
        return [base]
    return [f"{base}/robot{i + 1}" for i in range(robots)]


def shared_name(topic: Topic, namespace: str = "") -> str:
    """The absolute name of a shared topic in a graph under ``namespace`` (``/lab/transitions``)."""
    return f"{namespace.rstrip('/')}/{topic.name}"


def shared_remappings(robot_namespace: str, namespace: str = "") -> list[tuple[str, str]]:
    """Remappings that connect a node in ``robot_namespace`` to the graph's shared topics (none without a robot
    namespace: relative names already resolve to them)."""
    if not robot_namespace:
        return []
    return [(t.name, shared_name(t, namespace)) for t in SHARED_TOPICS]


def topic_table_markdown() -> str:
    """The README's topic table, generated from the contract (a test keeps README.md equal to it)."""
    rows = ["| topic | type | from → to | QoS |", "|---|---|---|---|"]
    for t in TOPICS:
        rows.append(f"| `{t.name}` | {t.type_short} ({t.doc}) | {t.source} → {t.sinks} | {t.qos.label} |")
    return "\n".join(rows)


def keep_dds_on_loopback(environ=None) -> None:
    """Discovery on loopback only, unless the caller's environment says otherwise: ROS_AUTOMATIC_DISCOVERY_RANGE=
    LOCALHOST (Iron and later) and, on Humble (which predates it), ROS_LOCALHOST_ONLY=1 (Jazzy warns that this one
    is deprecated, so it is set on Humble only)."""
    import os
    env = os.environ if environ is None else environ
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if env.get("ROS_DISTRO", "").lower() == "humble":
        env.setdefault("ROS_LOCALHOST_ONLY", "1")
