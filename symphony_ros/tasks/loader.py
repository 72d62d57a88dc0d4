"""Find a task plugin by name: the built-in tasks, the entry-point group ``symphony_ros.tasks`` (a lab's package
declares ``entry_points={"symphony_ros.tasks": ["name = pkg.module:Class"]}``), or a dotted path
``pkg.module:Class`` / ``pkg.module.Class``."""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Mapping

from ..robot.description import RobotDescription
from .base import Task, TaskError

ENTRY_POINT_GROUP = "symphony_ros.tasks"
BUILTIN = {"humanoid_stand": "symphony_ros.tasks.humanoid:HumanoidStand",
           "humanoid_walk": "symphony_ros.tasks.humanoid:HumanoidWalk",
           "pendulum_balance": "symphony_ros.tasks.pendulum:PendulumBalance"}


def available_tasks() -> list[str]:
    """Names of the built-in and installed (entry-point) tasks."""
    return sorted(set(BUILTIN) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def _import(target: str, name: str) -> Any:
    module, _, attr = target.partition(":")
    if not attr:
        module, _, attr = target.rpartition(".")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # noqa: BLE001 - a plugin's import may raise anything: one line, never a traceback
        raise TaskError(f"task '{name}': cannot import {target} ({type(exc).__name__}: {exc})") from None
    return obj


def task_class(name: str) -> type[Task]:
    """The Task subclass called ``name`` (TaskError with the available names if there is none)."""
    if name in BUILTIN:
        cls = _import(BUILTIN[name], name)
    else:
        eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if eps:
            try:
                cls = eps[0].load()
            except Exception as exc:  # noqa: BLE001 - see above
                raise TaskError(f"task '{name}': entry point {eps[0].value} cannot be loaded "
                                f"({type(exc).__name__}: {exc})") from None
        elif ":" in name or "." in name:
            cls = _import(name, name)
        else:
            raise TaskError(f"unknown task '{name}'; available: {', '.join(available_tasks())} (or a dotted path "
                            "package.module:Class)")
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TaskError(f"task '{name}': {cls!r} is not a subclass of symphony_ros.tasks.Task")
    return cls


def load_task(name: str, description: RobotDescription, params: Mapping[str, Any] | None = None) -> Task:
    """An instance of the task ``name`` for ``description`` with parameter overrides (TaskError if unusable)."""
    cls = task_class(name)
    try:
        return cls(description, params)
    except TaskError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin constructor may raise anything
        raise TaskError(f"task '{name}': construction failed ({type(exc).__name__}: {exc})") from None
