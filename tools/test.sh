#!/usr/bin/env bash
# Set up (tools/setup.sh) and run the whole test suite. DDS traffic stays on loopback: every test process runs with
# ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and its own ROS_DOMAIN_ID, inside a private network namespace (unshare -n)
# where this user may create one.
#
# Stage 1: the whole suite against ROS 2 Kilted (./.venv), with any pytest arguments given.
# Stage 2: the node and graph tests (JAZZY_TESTS below) against ROS 2 Jazzy (./.venv-jazzy, rclpy 7.1, the ROS 2 of
#          JetPack 7). It runs on a full run (no arguments); after a selective run it is left out unless
#          SYMPHONY_ROS_JAZZY=1; SYMPHONY_ROS_JAZZY=0 always leaves it out. Exit status: non-zero if either stage fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests that run against Jazzy: every file whose nodes talk over real DDS (rclpy API differences show up here).
JAZZY_TESTS=(test/test_interfaces.py test/test_sim_bridge.py test/test_actor.py test/test_actor_safety.py
             test/test_learner.py test/test_graph.py test/test_bags.py test/test_robot_nodes.py test/test_pace.py)

export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 90) + 5 ))}
export SYMPHONY_ROS_REQUIRE_ROS=1     # missing rclpy/messages is a failure here, not a skip
export MUJOCO_GL=disable PYTHONUNBUFFERED=1

# run_pytest VENV ARGS...: pytest with VENV's python, in a private network namespace when one can be made
run_pytest() {
  local cmd=("$1/bin/python" -m pytest -ra --timeout=900 "${@:2}")
  if unshare -n true 2>/dev/null; then
    unshare -n bash -c 'ip link set lo up && exec "$@"' bash "${cmd[@]}"
  else
    echo "warning: cannot create a network namespace (unshare -n); DDS stays on loopback by discovery range only" >&2
    "${cmd[@]}"
  fi
}

jazzy=${SYMPHONY_ROS_JAZZY:-auto}
if [ "$jazzy" = auto ]; then
  if [ $# -eq 0 ]; then jazzy=1; else jazzy=0; fi
fi

bash tools/setup.sh
.venv/bin/ruff check .   # lint: Python 3.10 syntax (a Jetson's Humble), pyflakes, pycodestyle (ruff.toml)
# ros2 launch / ros2 run find the package installed in the venv
export AMENT_PREFIX_PATH="$PWD/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
echo "== ROS 2 Kilted (.venv): pytest $* (ROS_DOMAIN_ID=$ROS_DOMAIN_ID)"
rc=0
run_pytest .venv "$@" || rc=$?

if [ "$jazzy" = 1 ]; then
  t0=$SECONDS
  bash tools/setup.sh jazzy
  export AMENT_PREFIX_PATH="$PWD/.venv-jazzy"
  # its own domain, so that nothing left over from stage 1 can reach it (stage 1 has ended: this only guards leftovers)
  ROS_DOMAIN_ID=${ROS_DOMAIN_ID_JAZZY:-$(( (ROS_DOMAIN_ID - 5 + 1) % 90 + 5 ))}
  echo "== ROS 2 Jazzy (.venv-jazzy): pytest ${JAZZY_TESTS[*]} (ROS_DOMAIN_ID=$ROS_DOMAIN_ID)"
  jrc=0
  t1=$SECONDS
  run_pytest .venv-jazzy "${JAZZY_TESTS[@]}" || jrc=$?
  echo "== exit status: Kilted $rc, Jazzy $jrc (Jazzy stage: set-up $((t1 - t0)) s, tests $((SECONDS - t1)) s)"
  [ "$rc" -ne 0 ] || rc=$jrc
else
  echo "== ROS 2 Jazzy stage left out (pytest arguments given or SYMPHONY_ROS_JAZZY=0; SYMPHONY_ROS_JAZZY=1 runs it)"
fi
exit "$rc"
