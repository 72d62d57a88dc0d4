#!/usr/bin/env bash
# Set up symphony_ros in ./.venv on a pip-only machine (x86_64, Python 3.10-3.13): PyTorch (pinned CPU build),
# the package with its ROS 2 (PyPI wheels), MuJoCo and rosbag extras, and the message package built from msg/.
# Idempotent: re-running only installs what changed. On a robot with a system ROS 2, use colcon instead (README).
#
#   bash tools/setup.sh          ROS 2 Kilted wheels in ./.venv (the default)
#   bash tools/setup.sh jazzy    ROS 2 Jazzy wheels (rclpy 7.1, as on JetPack 7) in ./.venv-jazzy, to test against
set -euo pipefail
cd "$(dirname "$0")/.."
DISTRO=${1:-kilted}
case "$DISTRO" in
  kilted) VENV=.venv ;;
  jazzy) VENV=.venv-jazzy ;;
  *) echo "tools/setup.sh: unknown ROS 2 distro '$DISTRO': use 'kilted' (default, ./.venv) or 'jazzy' (./.venv-jazzy)" >&2
     exit 2 ;;
esac
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
# Pin torch first: an unpinned torch would pull a multi-GB CUDA build; the package itself accepts a range.
python -m pip install -q 'torch==2.13.0'
if [ "$DISTRO" = kilted ]; then
  python -m pip install -q './interfaces'
  python -m pip install -q '.[ros,sim,bags,dev,bench]'
  # ROS 2's launch system and command line (ros2 launch / run / lifecycle / param), not installable from PyPI: the
  # team keeps wheels of them beside the repository. Without them the launch tests skip and say why.
  if [ -f ../shared/ros2_launch/install.sh ]; then
    PYTHON=python bash ../shared/ros2_launch/install.sh
  else
    echo "note: ../shared/ros2_launch not found: ros2 launch/lifecycle/param are not installed (their tests skip)" >&2
  fi
else
  # The message package, built against Jazzy's rosidl: interfaces/jazzy/pyproject.toml names the Jazzy wheels (the
  # CMake project is the same). Its build requirements go into the venv once, then it builds without an isolated
  # build env (saves re-installing ~70 wheels on every run).
  build_requires=$(python - <<'PY'
try:
    import tomllib
except ImportError:                      # Python 3.10: the copy that pip vendors
    from pip._vendor import tomli as tomllib
with open("interfaces/jazzy/pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["build-system"]["requires"]))
PY
)
  mapfile -t build_requires <<<"$build_requires"
  python -m pip install -q "${build_requires[@]}"
  python -m pip install -q --no-build-isolation './interfaces/jazzy'
  python -m pip install -q '.[ros-jazzy,sim,bags,dev]'
fi
python - <<'PY'
import torch, gymnasium, rclpy, rclpy.lifecycle, symphony_ros_interfaces.msg, rosbags, symphony_ros
from importlib.metadata import version
print(f"symphony_ros {symphony_ros.__version__} ready: torch {torch.__version__}, gymnasium {gymnasium.__version__}, "
      f"rclpy {version('ros-rclpy')} ({rclpy.get_rmw_implementation_identifier()})")
PY
