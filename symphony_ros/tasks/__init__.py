"""Tasks on a robot, without ROS: the observation spec, the task plugins (rewards, falls), their loader and the
:class:`~.engine.TaskEngine` that turns driver topics into env steps (the ``task`` node is a thin shell over it)."""
from .base import ObservationSpec, Odometry, RobotState, Task, TaskError
from .loader import available_tasks, load_task, task_class

__all__ = ["ObservationSpec", "Odometry", "RobotState", "Task", "TaskError", "available_tasks", "load_task",
           "task_class"]
