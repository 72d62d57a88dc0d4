"""Pure control logic of the actor (no rclpy): the safety of a command (:mod:`.safety`), transition chaining
(:mod:`.chain`), the lockstep handshake (:mod:`.lockstep`) and the actor's whole behaviour (:mod:`.actor_logic`).
The ROS node only converts messages and calls these."""
from .safety import COMMAND_MODES, CommandMapping, SafetyLayer, Watchdog, limits_from_params

__all__ = ["COMMAND_MODES", "CommandMapping", "SafetyLayer", "Watchdog", "limits_from_params"]
