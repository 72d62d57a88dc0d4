#!/usr/bin/env bash
# Set up (tools/setup.sh) and run the whole test suite. DDS traffic stays on loopback: every test process runs with
# ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and its own ROS_DOMAIN_ID, inside a private network namespace (unshare -n)
# where this user may create one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
. .venv/bin/activate
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 90) + 5 ))}
export SYMPHONY_ROS_REQUIRE_ROS=1     # missing rclpy/messages is a failure here, not a skip
export MUJOCO_GL=disable PYTHONUNBUFFERED=1
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"   # ros2 launch/run find the package
ruff check .   # lint: Python 3.10 syntax (a Jetson's Humble), pyflakes, pycodestyle (ruff.toml)
cmd=(python -m pytest -ra --timeout=900 "$@")
if unshare -n true 2>/dev/null; then
  exec unshare -n bash -c 'ip link set lo up && exec "$@"' bash "${cmd[@]}"
else
  echo "warning: cannot create a network namespace (unshare -n); DDS stays on loopback by discovery range only" >&2
  exec "${cmd[@]}"
fi
