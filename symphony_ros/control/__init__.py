"""Pure control logic of the actor (no rclpy): the safety layer, the observation watchdog, the policy-action →
joint-command mapping and the execution gains (exploration, zero-policy window). The ROS node only calls these."""
from .safety import (COMMAND_MODES, CommandMapping, SafetyLayer, Watchdog, execution_gains,  # noqa: F401
                     limits_from_params)
