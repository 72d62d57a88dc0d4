"""What the three measurements of bench_graph share: the network hygiene (a private network namespace, loopback only),
the machine description, node processes started the way ``ros2 run`` would (``python -m symphony_ros.nodes.<x>``),
ROS helpers that use only public API (parameters, spinning until a condition), and percentiles."""
from __future__ import annotations

import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[2]       # the repository (the package under test is ROOT/symphony_ros)
ENTRY = ROOT / "bench" / "bench_graph.py"        # re-executed for the bench's own helper processes
ENV_ID = "Humanoid-v5"
OBS, ACT = 348, 17                               # Humanoid-v5 policy input / actuators


def configure_environment() -> None:
    """Loopback-only DDS discovery, a ROS_DOMAIN_ID of this run (unless set), no MuJoCo rendering."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if os.environ.get("ROS_DISTRO", "").lower() == "humble":   # Humble predates the discovery range
        os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
    os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 60))
    os.environ.setdefault("MUJOCO_GL", "disable")


# ------------------------------------------------------------------------------------------------ hygiene, machine
def private_netns() -> bool:
    """True when this process's network namespace has only the loopback (/proc/self/net/dev is per namespace;
    /sys/class/net is not, it belongs to the namespace that mounted sysfs)."""
    try:
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return [ln.split(":", 1)[0].strip() for ln in lines] == ["lo"]


def ensure_private_netns() -> None:
    """Re-exec this script under ``unshare -n`` (loopback only) when root and not already isolated."""
    if private_netns() or os.environ.get("BENCH_GRAPH_NETNS") == "1":
        return
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        os.environ["BENCH_GRAPH_NETNS"] = "1"
        os.execvp("unshare", ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
                              sys.executable, *sys.argv])
    print("WARNING: not in a private network namespace and cannot create one (not root / no unshare): DDS stays on "
          "loopback through ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST only", file=sys.stderr)


def machine_info() -> dict[str, Any]:
    import torch
    sys.path.insert(0, str(ROOT / "bench"))
    from _machine import cpu_model
    info = dict(cpu_model=cpu_model(), cpu_count=os.cpu_count(), python=platform.python_version(),
                torch_version=torch.__version__, platform=platform.platform(),
                ros_domain_id=os.environ.get("ROS_DOMAIN_ID"), private_netns=private_netns())
    try:
        info["mem_total_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError):
        pass
    try:
        from importlib.metadata import version
        info["rclpy_wheel"] = version("ros-rclpy")
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def loadavg() -> list[float]:
    return list(os.getloadavg())


# ------------------------------------------------------------------------------------------------ node processes
def node_env() -> dict[str, str]:
    """The environment of a node process: this one's (hygiene included), the repository's package first."""
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def start_node(spec, log: Path, *, events_executor: bool = False) -> subprocess.Popen:
    """Start ``spec`` (a :class:`symphony_ros.graph.NodeSpec`) in its own process, un-namespaced: the package's
    executable (``python -m symphony_ros.nodes.<executable>``), or with ``events_executor`` the what-if harness
    :func:`events_main` (the same node class spun by EventsExecutor). Output goes to ``log``."""
    cmd = [sys.executable, str(ENTRY), "_node_events", spec.executable] if events_executor else \
        [sys.executable, "-m", f"symphony_ros.nodes.{spec.executable}"]
    with open(log, "wb") as out:
        return subprocess.Popen([*cmd, *spec.ros_args(), "-r", "__ns:=/"], env=node_env(), stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)


def stop(procs: Sequence[subprocess.Popen]) -> None:
    """SIGINT (the nodes' clean exit), then SIGKILL after 20 s."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def py_spy_dump(pid: int) -> str:
    """Stacks of a stuck process, for an error message (diagnostics only)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        return subprocess.run([exe, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30).stdout
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        return f"(py-spy dump failed: {exc})"


def events_main(argv: list[str]) -> int:
    """What-if harness (--whatif): ``_node_events learner|actor --ros-args ...`` runs the package's node class,
    unchanged, on rclpy.experimental.EventsExecutor instead of the SingleThreadedExecutor of its ``main()``."""
    import rclpy
    import torch
    from rclpy.experimental import EventsExecutor
    which, rest = argv[0], argv[1:]
    if which == "actor":
        from symphony_ros.nodes.actor import ActorNode as NodeClass
        torch.set_num_threads(1)              # as symphony_ros.nodes.actor.main
    else:
        from symphony_ros.nodes.learner import LearnerNode as NodeClass
    rclpy.init(args=[which, *rest])
    node = NodeClass()
    ex = EventsExecutor()
    ex.add_node(node)
    try:
        # spin_once with a timeout, not spin(): EventsExecutor.spin() busy-loops in the rclpy 9.1.2 wheel and its
        # timers then hardly fire (seen: 100 % CPU, 1 of 20 timer calls per second)
        while rclpy.ok():
            ex.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, Exception):  # noqa: BLE001 - SIGINT / external shutdown end the harness
        pass
    finally:
        if hasattr(node, "safe_stop"):
            node.safe_stop()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


# ------------------------------------------------------------------------------------------------ ROS helpers
def set_param(node, name: str, value: Any) -> None:
    """Set a ROS parameter of an in-process node (RuntimeError with the node's reason if refused)."""
    from rclpy.parameter import Parameter
    res = node.set_parameters([Parameter(name, value=value)])
    if not all(r.successful for r in res):
        raise RuntimeError(f"could not set {node.get_name()}.{name} = {value!r}: {[r.reason for r in res]}")


def spin_until(spin_once: Callable[[float], None], cond: Callable[[], bool], timeout: float) -> bool:
    """Call ``spin_once(0.01)`` until ``cond()`` or ``timeout`` seconds; returns ``cond()``'s last value."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        spin_once(0.01)
    return True


# ------------------------------------------------------------------------------------------------ statistics
def pct(xs: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation; NaN for no samples."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def lat_stats(seconds: Sequence[float]) -> dict[str, Any]:
    """n, p50/p90/p99/max/mean/min in ms of latencies given in seconds."""
    ms = [x * 1e3 for x in seconds]
    return dict(n=len(ms), p50_ms=pct(ms, 0.5), p90_ms=pct(ms, 0.9), p99_ms=pct(ms, 0.99), max_ms=max(ms),
                mean_ms=statistics.fmean(ms), min_ms=min(ms))
