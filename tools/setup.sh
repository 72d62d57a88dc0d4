#!/usr/bin/env bash
# Set up symphony_ros in ./.venv on a pip-only machine (x86_64, Python 3.10-3.13): PyTorch (pinned CPU build),
# the package with its ROS 2 (PyPI wheels), MuJoCo and rosbag extras, and the message package built from msg/.
# Idempotent: re-running only installs what changed. On a robot with a system ROS 2, use colcon instead (README).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# Pin torch first: an unpinned torch would pull a multi-GB CUDA build; the package itself accepts a range.
python -m pip install -q 'torch==2.13.0'
python -m pip install -q './interfaces'
python -m pip install -q '.[ros,sim,bags,dev]'
# ROS 2's launch system and command line (ros2 launch / run / lifecycle / param), not installable from PyPI: the
# team keeps wheels of them beside the repository. Without them the launch tests skip and say why.
if [ -f ../shared/ros2_launch/install.sh ]; then
  PYTHON=python bash ../shared/ros2_launch/install.sh
else
  echo "note: ../shared/ros2_launch not found: ros2 launch/lifecycle/param are not installed (their tests skip)" >&2
fi
python - <<'PY'
import torch, gymnasium, rclpy, symphony_ros_interfaces.msg, rosbags, symphony_ros
print(f"symphony_ros {symphony_ros.__version__} ready: torch {torch.__version__}, gymnasium {gymnasium.__version__}")
PY
