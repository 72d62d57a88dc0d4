#!/usr/bin/env python3
"""Edge benchmark (see bench/README.md, "bench_edge.py"): the actor's control loop at 50, 100 and 200 Hz while an
ED learner saturates the CPU in another process, as on a robot's onboard computer.

Three OS processes, real DDS between them:

1. the ActorNode (``python -m symphony_ros.nodes.actor``: preset ed, mode async, simulation false, control_rate_hz
   R, weights from the learner's latched ``policy_weights``), restarted for every rate;
2. the LearnerNode (``python -m symphony_ros.nodes.learner``: preset ed, async, cpu, torch threads = all cores),
   fed by the actor's transitions; it runs for the whole bench and updates whenever it is behind its UTD target;
3. this script, the *driver*: it plays the robot. A real MuJoCo Humanoid-v5 (observation 348, 17 actuators) is
   stepped with the latest command received, and its observation is published as ``env_step`` on a fixed time grid
   of period 1/R; ``joint_commands`` are received and timed.

Before the rates, a fill phase drives the actor at ``--fill-rate`` until the learner has its n_exp exploration
transitions (learner_status.learning), so every rate is measured while the learner learns.

Per rate, over the measured window (after ``--warmup`` seconds), in the driver:
* latency: env_step publish -> the arrival of the command that answered it (p50/p99/max ms). Commands carry no step
  id; the driver also takes the actor's Transitions (a second reader of that topic), whose action is the executed
  command, and so knows which env_step each command answered (:func:`match_commands`);
* missed periods: a command that did not arrive before the next period's env_step was published (late or never);
  the driver's own late periods are counted apart (published more than ``--late-frac`` of a period after the tick,
  or a whole tick skipped);
* jitter: the command inter-arrival time minus the ticks' spacing (std, p99 of |.|, max |.|), and the same for the
  env_step publications (the driver's timer);
* the learner: updates/s (learner_status.updates over the header stamps) against the updates/s its UTD needs
  (R x utd_target, utd_target = G of the preset); transitions stored/s; CPU cores used per process;
* resident memory (VmRSS, VmHWM from /proc/<pid>/status) of the actor, the learner and the driver at the end; the
  learner's RSS also right after configure (the buffer is preallocated) and after exploration (norm_fill).

Network hygiene: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a ROS_DOMAIN_ID of its own (unless set), and, when run
as root outside a private network namespace, the script re-executes itself under ``unshare -n`` (loopback only); the
node processes inherit all of it.

Usage:
    python bench/bench_edge.py [--rates 50,100,200] [--duration 60] [--warmup 10] [--fill-rate 250]
                               [--json bench/results/edge_cpu.json] [--txt bench/results/edge_cpu.txt]
    python bench/bench_edge.py --quick --json /tmp/edge.json      # smoke run (small exploration, seconds per rate)
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (HERE, ROOT):                       # bench/ (the graph package's helpers), the repository (symphony_ros)
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from graph import common  # noqa: E402

common.configure_environment()

ENV_ID = "Humanoid-v5"       # observation 348, 17 actuators (gymnasium Humanoid-v5)
OBS, ACT = common.OBS, common.ACT
PRESET = "ed"
STOP_TIMEOUT_S = {"actor": 10.0, "learner": 60.0}   # as symphony_ros.graph.STOP_TIMEOUT_S


class BenchError(RuntimeError):
    """A child process failed or a condition was not reached in time: one line plus the child's log tail."""


# ------------------------------------------------------------------------------------------------ /proc readers
def proc_mem(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process in MiB (NaN if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return dict(rss_mib=math.nan, hwm_mib=math.nan)
    out = {}
    for key, name in (("VmRSS", "rss_mib"), ("VmHWM", "hwm_mib")):
        m = re.search(rf"^{key}:\s+(\d+)\s+kB", text, re.M)
        out[name] = int(m.group(1)) / 1024 if m else math.nan
    return out


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime, stime (fields 14, 15)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat (busy = all but idle and iowait)."""
    vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = float(sum(vals[:8]))
    return total - vals[3] - vals[4], total


class CpuSample:
    """CPU seconds of the given processes and of the machine at one instant; ``cores_since`` gives the cores used."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.t = time.perf_counter()
        self.cpu = {name: proc_cpu_s(pid) for name, pid in pids.items()}
        self.machine = machine_cpu()

    def cores_since(self, start: "CpuSample") -> dict[str, float]:
        dt = max(self.t - start.t, 1e-9)
        out = {name: (self.cpu[name] - start.cpu.get(name, math.nan)) / dt for name in self.cpu}
        busy, total = (a - b for a, b in zip(self.machine, start.machine))
        out["machine_busy_share"] = busy / total if total > 0 else math.nan
        return out


# ------------------------------------------------------------------------------------------------ child processes
def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the bench dies without stopping it (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))
    except Exception:  # noqa: BLE001 - best effort (not Linux): the bench's finally block still stops it
        pass


class Child:
    """A node process started the way ``ros2 run`` would (``python -m symphony_ros.nodes.<executable>``), in its own
    session (a Ctrl-C at the terminal reaches only the bench, which stops the children in order)."""

    def __init__(self, name: str, spec, log: Path, env: dict[str, str]) -> None:
        self.name, self.log = name, log
        cmd = [sys.executable, "-m", f"symphony_ros.nodes.{spec.executable}", *spec.ros_args(), "-r", "__ns:=/"]
        self.started_ns = time.time_ns()
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        (log.parent / f"{log.stem}.pid").write_text(f"{self.pid}\n")   # for whoever checks the shutdown
        self.stopped: Optional[dict[str, Any]] = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 2500) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def check(self) -> None:
        if not self.alive():
            raise BenchError(f"the {self.name} process exited with code {self.proc.returncode}; its log ends:\n"
                             + self.tail())

    def stop(self) -> dict[str, Any]:
        """SIGINT (the node's clean exit: safe command / final teardown), then SIGTERM, then SIGKILL, each with a
        deadline. Returns how it ended."""
        if self.stopped is not None:
            return self.stopped
        how, t0 = "already exited", time.monotonic()
        if self.alive():
            how = "SIGINT"
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S.get(self.name, 10.0))
            except subprocess.TimeoutExpired:
                how = "SIGTERM"
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    how = "SIGKILL"
                    self.proc.kill()
                    self.proc.wait()
        self.stopped = dict(signal=how, exit_code=self.proc.returncode, stop_s=round(time.monotonic() - t0, 3))
        return self.stopped


def learner_env(threads: int) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads))
    env.pop("MKL_NUM_THREADS", None)
    return env


def actor_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.pop("OMP_NUM_THREADS", None)          # the actor's main() sets its own single torch thread
    return env


def torch_threads_in(env: dict[str, str]) -> int:
    """torch.get_num_threads() in a fresh interpreter with ``env`` (what the learner process gets)."""
    r = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env,
                       capture_output=True, text=True, timeout=120)
    try:
        return int(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return -1


def learner_spec(status_rate: float, n_exp: Optional[int]):
    from symphony_ros.core.config import config_dir
    from symphony_ros.graph import NodeSpec
    params: dict[str, Any] = dict(preset=PRESET, mode="async", device="cpu", obs_dim=OBS, act_dim=ACT,
                                  checkpoint_dir="", status_rate_hz=float(status_rate), seed=0)
    if n_exp:
        params["symphony.n_exp"] = int(n_exp)
    return NodeSpec("learner", "learner", "", config_dir() / "learner.yaml", params)


def actor_spec(rate: float, n_exp: Optional[int]):
    from symphony_ros.core.config import config_dir
    from symphony_ros.graph import NodeSpec
    params: dict[str, Any] = dict(preset=PRESET, mode="async", simulation=False, control_rate_hz=float(rate), seed=0)
    if n_exp:
        params["symphony.n_exp"] = int(n_exp)
    return NodeSpec("actor", "actor", "", config_dir() / "actor.yaml", params)


# ------------------------------------------------------------------------------------------------ the driver
class Driver:
    """Plays the robot: a MuJoCo Humanoid-v5 stepped with the latest command received (the motors hold the last
    command while a new one is late), its observation published as EnvStep on a fixed grid of ticks, every command
    timed on arrival. Also takes learner_status, actor_status and (raw, decoded after each rate) the actor's
    Transitions, which tell which env_step each command answered (:func:`match_commands`)."""

    def __init__(self, ctx, seed: int = 0) -> None:
        import numpy as np
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from std_msgs.msg import Float64MultiArray
        from symphony_ros import contract as C
        from symphony_ros.envs.gym_env import make_env
        from symphony_ros.nodes.common import qos_profile, stamp_ns
        from symphony_ros_interfaces.msg import ActorStatus, EnvStep, LearnerStatus, Transition
        self.np = np
        self.EnvStep = EnvStep
        self.node = rclpy.create_node("edge_driver", context=ctx, start_parameter_services=False)
        self.pub = self.node.create_publisher(EnvStep, C.ENV_STEP.name, qos_profile(C.ENV_STEP))
        self.cmd_sub = self.node.create_subscription(Float64MultiArray, C.JOINT_COMMANDS.name, self._on_command,
                                                     qos_profile(C.JOINT_COMMANDS))
        self.learner_status: list[tuple[int, Any]] = []     # (header stamp ns, message)
        self.actor_status: list[tuple[int, Any]] = []
        self.transitions_raw: list[bytes] = []
        self.node.create_subscription(LearnerStatus, C.LEARNER_STATUS.name,
                                      lambda m: self.learner_status.append((stamp_ns(m.header), m)),
                                      qos_profile(C.LEARNER_STATUS))
        self.node.create_subscription(ActorStatus, C.ACTOR_STATUS.name,
                                      lambda m: self.actor_status.append((stamp_ns(m.header), m)),
                                      qos_profile(C.ACTOR_STATUS))
        self.tr_sub = self.node.create_subscription(Transition, C.TRANSITIONS.name, self.transitions_raw.append,
                                                    qos_profile(C.TRANSITIONS), raw=True)
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.env = make_env(ENV_ID, episode_limit=1000, seed=seed)
        self.seed = seed
        self.episode = -1
        self.last_cmd = np.zeros(ACT)            # the motors' current command (safe pose until the first one)
        self._reset_world()
        # per published env_step (index = sequence number)
        self.tick: list[float] = []
        self.pub_t: list[float] = []
        self.pub_wall_ns: list[int] = []
        self.final: list[bool] = []
        self.phase: list[str] = []
        self.key_to_seq: dict[tuple[int, int], int] = {}
        # per received command: (perf_counter at arrival, float32 bytes of the values, all zeros = safe command)
        self.cmds: list[tuple[float, bytes, bool]] = []
        self.skipped: collections.Counter[str] = collections.Counter()

    # ---------------------------------------------------------------------------------------- the world
    def _reset_world(self) -> None:
        self.episode += 1
        obs, _ = self.env.reset(seed=self.seed * 100_003 + self.episode)
        self.obs, self.rew, self.term, self.trunc, self.k = self.np.asarray(obs, self.np.float32), 0.0, False, \
            False, 0
        self.ready = True                        # the observation for the next tick is there

    def _advance(self, cmd) -> None:
        """One period of the world with ``cmd``: a reset after a final step, else one env step."""
        if self.term or self.trunc:
            self._reset_world()
            return
        o, r, te, tr, _ = self.env.step(cmd)
        self.obs, self.rew, self.term, self.trunc = self.np.asarray(o, self.np.float32), float(r), bool(te), bool(tr)
        self.k += 1
        self.ready = True

    # ---------------------------------------------------------------------------------------- ROS side
    def _on_command(self, msg) -> None:
        t = time.perf_counter()
        data = self.np.array(msg.data, dtype=self.np.float64)
        self.cmds.append((t, data.astype(self.np.float32).tobytes(), not data.any()))
        self.last_cmd = data
        if not self.ready and self.pub_t:        # a command after the newest env_step: the motors run it at once
            self._advance(data)

    def _publish(self, tick: float, phase: str) -> None:
        from symphony_ros.nodes.common import f32_array, set_stamp
        if not self.ready:                       # no command since the last env_step: the motors held the last one
            self._advance(self.last_cmd)
        msg = self.EnvStep()
        wall = time.time_ns()
        set_stamp(msg.header, wall)
        msg.episode, msg.step = self.episode, self.k
        msg.observation = f32_array(self.obs)
        msg.reward, msg.terminated, msg.truncated = float(self.rew), self.term, self.trunc
        self.key_to_seq[(self.episode, self.k)] = len(self.pub_t)
        self.tick.append(tick)
        self.final.append(self.term or self.trunc)
        self.phase.append(phase)
        self.pub_wall_ns.append(wall)
        t = time.perf_counter()
        self.pub.publish(msg)
        self.pub_t.append(t)
        self.ready = False

    def spin_until(self, deadline: float) -> None:
        while True:
            rem = deadline - time.perf_counter()
            if rem <= 0:
                return
            self.ex.spin_once(timeout_sec=rem)

    def spin_for_condition(self, cond: Callable[[], bool], timeout: float, watch: list[Child],
                           what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            for c in watch:
                c.check()
            if time.monotonic() > deadline:
                raise BenchError(f"{what} not reached within {timeout:.0f} s; logs end:\n"
                                 + "\n".join(f"--- {c.name}\n{c.tail(1500)}" for c in watch))
            self.ex.spin_once(timeout_sec=0.05)

    def drive(self, rate: float, phases: list[tuple[str, float]], watch: list[Child],
              until: Optional[Callable[[], bool]] = None, on_phase: Optional[Callable[[str], None]] = None
              ) -> dict[str, tuple[int, int]]:
        """Publish env_steps on the grid t0 + k/rate through ``phases`` [(name, seconds), ...] (or until ``until()``
        is true, checked every period). A tick missed by a whole period is skipped (the grid is kept, counted in
        ``skipped``). ``on_phase(name)`` runs before a phase's first publish. Returns each phase's range of sequence
        numbers [first, end)."""
        T = 1.0 / rate
        t0 = time.perf_counter() + T
        k = 0
        self.skipped = collections.Counter()
        ranges: dict[str, tuple[int, int]] = {}
        ends, acc = [], 0.0
        for name, seconds in phases:
            acc += seconds
            ends.append((name, acc))
        i, last_check = 0, time.monotonic()
        while i < len(ends):
            name, end = ends[i]
            if k * T >= end:
                i += 1
                continue
            tick = t0 + k * T
            self.spin_until(tick)
            late = time.perf_counter() - tick
            if late >= T:                        # the driver itself missed whole periods: keep the grid
                n = int(late // T)
                self.skipped[name] += n
                k += n
                tick = t0 + k * T
                if k * T >= end:
                    continue
            if name not in ranges:
                if on_phase is not None:
                    on_phase(name)
                ranges[name] = (len(self.pub_t), len(self.pub_t))
            self._publish(tick, name)
            ranges[name] = (ranges[name][0], len(self.pub_t))
            k += 1
            if time.monotonic() - last_check > 1.0:
                last_check = time.monotonic()
                for c in watch:
                    c.check()
            if until is not None and until():
                break
        return ranges

    def settle(self, quiet_s: float = 0.5, limit_s: float = 3.0) -> None:
        """After the last env_step: spin until no command came for ``quiet_s`` (at most ``limit_s``)."""
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            n = len(self.cmds)
            q_end = time.monotonic() + quiet_s
            while time.monotonic() < q_end:
                self.ex.spin_once(timeout_sec=0.02)
            if len(self.cmds) == n:
                return

    def status_after(self, which: str, after_ns: int, timeout: float, watch: list[Child],
                     pred: Callable[[Any], bool] = lambda m: True) -> Any:
        """The oldest learner_status / actor_status stamped after ``after_ns`` that satisfies ``pred`` (waits for
        one up to ``timeout`` s)."""
        lst = self.learner_status if which == "learner" else self.actor_status

        def found():
            return next((m for s, m in lst if s > after_ns and pred(m)), None)
        self.spin_for_condition(lambda: found() is not None, timeout, watch, f"{which}_status after the mark")
        return found()

    @staticmethod
    def _stamp(msg) -> int:
        return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)

    def latest(self, which: str, before_ns: Optional[int] = None) -> Any:
        lst = self.learner_status if which == "learner" else self.actor_status
        for s, m in reversed(lst):
            if before_ns is None or s <= before_ns:
                return m
        return None

    def close(self) -> None:
        self.env.close()
        self.ex.shutdown()
        self.node.destroy_node()


# ------------------------------------------------------------------------------------------------ statistics
def finite(xs) -> list[float]:
    return [float(x) for x in xs if x is not None and math.isfinite(x)]


def dist_ms(seconds: list[float]) -> dict[str, Any]:
    """n, p50/p90/p99/max/mean in ms (NaN without samples)."""
    if not seconds:
        nan = math.nan
        return dict(n=0, p50_ms=nan, p90_ms=nan, p99_ms=nan, max_ms=nan, mean_ms=nan)
    s = common.lat_stats(seconds)
    return {k: s[k] for k in ("n", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms")}


def deviation_stats(devs_s: list[float]) -> dict[str, Any]:
    """Jitter of a series of interval deviations from the period: std, p99 and max of |deviation|, in ms."""
    ms = [x * 1e3 for x in devs_s]
    if len(ms) < 2:
        return dict(n=len(ms), std_ms=math.nan, p99_abs_ms=math.nan, max_abs_ms=math.nan)
    a = [abs(x) for x in ms]
    return dict(n=len(ms), std_ms=statistics.pstdev(ms), p99_abs_ms=common.pct(a, 0.99), max_abs_ms=max(a))


def window_rate(status: list[tuple[int, Any]], t0_ns: int, t1_ns: int, field: str) -> dict[str, Any]:
    """Rate of a learner_status counter between the first and the last status stamped inside [t0, t1]."""
    inside = [(s, m) for s, m in status if t0_ns <= s <= t1_ns]
    if len(inside) < 2:
        return dict(per_s=math.nan, samples=len(inside), span_s=0.0)
    (sa, ma), (sb, mb) = inside[0], inside[-1]
    span = (sb - sa) * 1e-9
    return dict(per_s=(int(getattr(mb, field)) - int(getattr(ma, field))) / span if span > 0 else math.nan,
                samples=len(inside), span_s=span)


def match_commands(d: Driver, seq_range: tuple[int, int], cmd_range: tuple[int, int]) -> dict[str, Any]:
    """Which env_step of ``seq_range`` each command of ``cmd_range`` answered (one actor's life).

    joint_commands carry no step id, and an actor that falls behind may never see some env_steps (the env_step
    QoS keeps the last 10), so arrival order alone cannot tell. The actor's Transition (episode e, step k) holds the
    command it executed for step k (``store_executed``; ``paper`` mapping and the default ±1 limits: exactly the
    command, as float32), so a policy command is identified by its values. The safe command (all zeros) answers a
    final step: it is given to the oldest final step not yet answered that was published before it arrived and
    after the last identified step. A policy command without a Transition (the actor never got the next step of
    the episode) stays unidentified; so does a zero command with no final step waiting (watchdog, no weights yet,
    silent learner). Returns {seq: arrival}, each command's class, and (episode, step) -> the actor's callback
    wall time (ns) from the Transition stamps (the Transition of step k is sent while the actor handles k + 1)."""
    from rclpy.serialization import deserialize_message
    from symphony_ros.nodes.common import stamp_ns
    from symphony_ros_interfaces.msg import Transition
    np = d.np
    by_action: dict[bytes, tuple[int, int]] = {}
    actor_rx: dict[tuple[int, int], int] = {}
    for raw in d.transitions_raw:
        t = deserialize_message(raw, Transition)
        key = (int(t.episode), int(t.step))
        by_action[np.asarray(t.action, dtype=np.float32).tobytes()] = key
        actor_rx[(key[0], key[1] + 1)] = stamp_ns(t.header)
    first, end = seq_range
    finals = collections.deque(s for s in range(first, end) if d.final[s])
    answer: dict[int, float] = {}
    kinds: list[str] = []
    last = first - 1
    for t, values, zero in d.cmds[cmd_range[0]:cmd_range[1]]:
        if zero:
            while finals and (finals[0] <= last or finals[0] in answer):
                finals.popleft()
            if finals and d.pub_t[finals[0]] < t:
                seq, kind = finals.popleft(), "safe_for_final"
            else:
                kinds.append("unidentified_zero")
                continue
        else:
            key = by_action.get(values)
            seq = d.key_to_seq.get(key, -1) if key is not None else -1
            if not first <= seq < end:
                kinds.append("unidentified_policy")
                continue
            kind = "by_transition"
        if seq in answer:
            kinds.append("duplicate")
            continue
        answer[seq] = t
        kinds.append(kind)
        last = max(last, seq)
    return dict(answer=answer, kinds=kinds, actor_rx=actor_rx)


def analyse_rate(d: Driver, rate: float, window: tuple[int, int], life: tuple[int, int],
                 life_cmds: tuple[int, int], late_frac: float) -> dict[str, Any]:
    """Latency, missed periods, driver lateness and jitter of the env_steps ``window`` [first, end) of one rate
    (``life``: all env_steps sent to this actor, ``life_cmds``: all commands received from it, for the matching)."""
    T = 1.0 / rate
    first, end = window
    m = match_commands(d, life, life_cmds)
    answer, actor_rx = m["answer"], m["actor_rx"]
    inv = {v: k for k, v in d.key_to_seq.items() if first <= v < end}
    lat, inbound, late, unanswered, final = [], [], 0, 0, 0
    for s in range(first, end):
        final += d.final[s]
        nxt = d.pub_t[s + 1] if s + 1 < len(d.pub_t) else d.tick[s] + T
        rx = actor_rx.get(inv[s])
        if rx is not None:
            inbound.append((rx - d.pub_wall_ns[s]) * 1e-9)
        c = answer.get(s)
        if c is None:
            unanswered += 1
            continue
        lat.append(c - d.pub_t[s])
        late += c > nxt
    n = end - first
    t_start, t_end = d.pub_t[first], d.tick[end - 1] + T
    in_window = [(c[0], k) for c, k in zip(d.cmds[life_cmds[0]:life_cmds[1]], m["kinds"])
                 if t_start <= c[0] <= t_end]
    counts = collections.Counter(k for _, k in in_window)
    lag = [d.pub_t[s] - d.tick[s] for s in range(first, end)]
    pub_dev = [(d.pub_t[s + 1] - d.pub_t[s]) - T for s in range(first, end - 1)]
    arrivals = [t for t, _ in in_window]
    cmd_dev = [(b - a) - T for a, b in zip(arrivals, arrivals[1:])]
    return dict(
        env_steps=n, final_steps=final, commands_in_window=len(in_window),
        latency=dist_ms(lat), latency_inbound=dist_ms(inbound),
        missed=dict(count=late + unanswered, share=(late + unanswered) / n if n else math.nan, late=int(late),
                    unanswered=unanswered),
        matching={k: int(counts.get(k, 0)) for k in ("by_transition", "safe_for_final", "unidentified_policy",
                                                      "unidentified_zero", "duplicate")},
        driver=dict(late_periods=sum(x > late_frac * T for x in lag), skipped_periods=int(d.skipped["measure"]),
                    late_threshold_ms=late_frac * T * 1e3, lag=dist_ms(lag)),
        jitter=dict(commands=deviation_stats(cmd_dev), env_steps=deviation_stats(pub_dev)))


def actor_delta(a0: Any, a1: Any) -> dict[str, Any]:
    keys = ("steps_acted", "commands_sent", "safe_commands_sent", "bad_env_steps", "transitions_sent",
            "watchdog_trips")
    if a1 is None:
        return {}
    out = {k: int(getattr(a1, k)) - (int(getattr(a0, k)) if a0 is not None else 0) for k in keys}
    out["weights_version_end"] = int(a1.weights_version)
    return out


# ------------------------------------------------------------------------------------------------ the bench
def run(args: argparse.Namespace) -> dict[str, Any]:
    import rclpy
    from symphony_ros.core.config import load_preset
    from symphony_ros.core.policy import build_actor
    cfg = load_preset(PRESET, {"n_exp": args.n_exp} if args.n_exp else None)
    G = int(cfg.updates_per_step)
    width = 2 * OBS + ACT
    itemsize = 2 if cfg.buffer_dtype == "float16" else 4
    capacity = int(cfg.n_exp) * int(cfg.buffer_times)
    actor_params = sum(p.numel() for p in build_actor(OBS, ACT, cfg).parameters())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = args.learner_threads or cores
    lenv = learner_env(threads)
    res: dict[str, Any] = dict(
        bench="edge", quick=bool(args.quick), command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        loadavg_start=common.loadavg(), machine=common.machine_info(),
        args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()})
    res["machine"].update(cores_available=cores, learner_torch_threads=torch_threads_in(lenv),
                          learner_omp_num_threads=threads, actor_torch_threads=1)
    res["setup"] = dict(
        preset=PRESET, env=ENV_ID, obs=OBS, act=ACT, updates_per_step_G=G, utd_target=float(G),
        learner_mode="async", actor_mode="async", simulation=False, weights_every_K=G,
        actor_parameters=int(actor_params), policy_weights_msg_mib=actor_params * 4 / 2 ** 20,
        n_exp=int(cfg.n_exp), buffer_times=int(cfg.buffer_times), buffer_capacity=capacity,
        buffer_dtype=cfg.buffer_dtype, buffer_row_bytes=width * itemsize + 8,
        buffer_bytes=capacity * (width * itemsize + 8), buffer_preallocated=True,
        buffer_note="FadingReplayBuffer allocates all slots with torch.zeros at configure (zero-filled, so resident "
                    "at once); norm_fill tiles the exploration block over all of them when learning starts",
        env_step_qos=_qos("ENV_STEP"), joint_commands_qos=_qos("JOINT_COMMANDS"),
        late_threshold=f"{args.late_frac:g} of a period")
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="bench_edge_"))
    logs.mkdir(parents=True, exist_ok=True)
    res["logs"] = str(logs)
    children: list[Child] = []
    ctx = rclpy.context.Context()
    try:   # Ctrl-C is this script's to handle (children stopped in order), not rclpy's
        from rclpy.signals import SignalHandlerOptions
        rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)
    except ImportError:  # an rclpy without signal options
        rclpy.init(context=ctx)
    d: Optional[Driver] = None
    try:
        d = Driver(ctx)
        learner = Child("learner", learner_spec(args.status_rate, args.n_exp), logs / "learner.log", lenv)
        children.append(learner)
        first = d.status_after("learner", 0, 180.0, [learner])
        res["learner_configured"] = dict(seconds_to_first_status=(time.time_ns() - learner.started_ns) * 1e-9,
                                         buffer_capacity=int(first.buffer_capacity), **proc_mem(learner.pid))
        m = re.search(r"buffer (\d+) slots \(([\d.]+) MiB\)", learner.tail(20000))
        if m:
            res["setup"]["learner_log_buffer_mib"] = float(m.group(2))
        # ---- fill: the exploration phase at the fill rate, until the learner learns
        res["fill"] = fill(d, learner, args, logs)
        res["learner_after_fill"] = dict(**proc_mem(learner.pid))
        # ---- the rates
        res["rates"] = []
        for rate in args.rate_list:
            res["rates"].append(one_rate(d, learner, rate, args, logs, G))
        res["loadavg_end"] = common.loadavg()
        lm = d.latest("learner")
        res["learner_end"] = dict(updates=int(lm.updates), stored=int(lm.transitions_stored),
                                  received=int(lm.transitions_received), rejected=int(lm.transitions_rejected),
                                  utd=float(lm.utd), critic_loss=float(lm.critic_loss),
                                  sigma_mean=float(lm.sigma_mean), healthy=bool(lm.healthy),
                                  updates_skipped=int(lm.updates_skipped), **proc_mem(learner.pid))
        res["learner_shutdown"] = learner.stop()
    finally:
        for c in reversed(children):
            c.stop()
        if d is not None:
            d.close()
        rclpy.try_shutdown(context=ctx)
    return res


def _qos(name: str) -> str:
    from symphony_ros import contract as C
    return getattr(C, name).qos.label


def fill(d: Driver, learner: Child, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """Drive an actor at the fill rate until learner_status says learning (n_exp stored, norm_fill done)."""
    actor = Child("actor", actor_spec(args.fill_rate, args.n_exp), logs / "actor_fill.log", actor_env())
    watch = [learner, actor]
    t0 = time.monotonic()
    try:
        wait_actor_ready(d, actor, watch)
        learning = lambda: any(m.learning for _, m in d.learner_status[-3:])   # noqa: E731
        rng = d.drive(args.fill_rate, [("fill", args.fill_timeout)], watch, until=learning)
        d.settle()
        if not learning():
            d.spin_for_condition(learning, 30.0, watch, "learner_status.learning after the fill")
        lm = d.latest("learner")
        a = d.status_after("actor", time.time_ns(), 5.0, watch)
        out = dict(rate_hz=args.fill_rate, env_steps=rng.get("fill", (0, 0))[1] - rng.get("fill", (0, 0))[0],
                   seconds=time.monotonic() - t0, learner_stored=int(lm.transitions_stored),
                   actor_transitions_sent=int(a.transitions_sent), actor=dict(**proc_mem(actor.pid)))
    finally:
        out_stop = actor.stop()
    out["actor_shutdown"] = out_stop
    return out


def wait_actor_ready(d: Driver, actor: Child, watch: list[Child]) -> None:
    """The actor process matched env_step, joint_commands and transitions and reports (actor_status) that it is
    active with weights; then 0.5 s for the other side of discovery (the actor's writers must know this reader)."""
    d.spin_for_condition(lambda: d.pub.get_subscription_count() >= 1 and d.cmd_sub.get_publisher_count() >= 1
                         and d.tr_sub.get_publisher_count() >= 1, 120.0, watch,
                         "actor matched on env_step, joint_commands and transitions")
    d.status_after("actor", actor.started_ns, 120.0, watch, pred=lambda m: m.active and m.weights_version >= 0)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        d.ex.spin_once(timeout_sec=0.05)


def one_rate(d: Driver, learner: Child, rate: float, args: argparse.Namespace, logs: Path, G: int
             ) -> dict[str, Any]:
    """One control rate: a fresh actor process, warm-up, the measured window, a tail (the driver keeps the robot
    running while the window's last answers and the next status messages arrive), then the actor is stopped."""
    la_before = common.loadavg()
    d.transitions_raw.clear()
    seq0, cmd0 = len(d.pub_t), len(d.cmds)
    actor = Child("actor", actor_spec(rate, args.n_exp), logs / f"actor_{rate:g}hz.log", actor_env())
    watch = [learner, actor]
    out: dict[str, Any] = dict(rate_hz=rate, period_ms=1e3 / rate, warmup_s=args.warmup, duration_s=args.duration,
                               loadavg_before=la_before)
    try:
        wait_actor_ready(d, actor, watch)
        l_start = d.latest("learner")
        pids = dict(actor=actor.pid, learner=learner.pid, driver=os.getpid())
        marks: dict[str, Any] = {}

        def on_phase(name: str) -> None:
            if name == "measure":
                marks["cpu0"], marks["t0_ns"] = CpuSample(pids), time.time_ns()
                marks["a0"] = d.latest("actor")
            elif name == "tail":
                marks["cpu1"], marks["t1_ns"] = CpuSample(pids), time.time_ns()

        tail_s = max(1.5, 1.0 / args.status_rate + 0.5)   # actor_status comes at 1 Hz, learner_status at --status-rate
        rng = d.drive(rate, [("warmup", args.warmup), ("measure", args.duration), ("tail", tail_s)], watch,
                      on_phase=on_phase)
        t0_ns, t1_ns = marks["t0_ns"], marks["t1_ns"]
        out.update(analyse_rate(d, rate, rng["measure"], (seq0, len(d.pub_t)), (cmd0, len(d.cmds)),
                                args.late_frac))
        out["cpu_cores"] = marks["cpu1"].cores_since(marks["cpu0"])
        out["rss_mib"] = dict(actor=proc_mem(actor.pid), learner=proc_mem(learner.pid), driver=proc_mem(os.getpid()))
        # the learner over the window (status header stamps)
        ups = window_rate(d.learner_status, t0_ns, t1_ns, "updates")
        st = window_rate(d.learner_status, t0_ns, t1_ns, "transitions_stored")
        inside = [m for s, m in d.learner_status if t0_ns <= s <= t1_ns]
        need = rate * G
        out["learner"] = dict(
            updates_per_s=ups["per_s"], status_samples=ups["samples"], status_span_s=ups["span_s"],
            updates_per_s_reported_mean=statistics.fmean([m.updates_per_second for m in inside]) if inside
            else math.nan,
            needed_updates_per_s=need, share_of_needed=ups["per_s"] / need,
            stored_per_s=st["per_s"], needed_for_stored_per_s=st["per_s"] * G,
            learning=all(m.learning for m in inside) if inside else False,
            utd_end=float(inside[-1].utd) if inside else math.nan)
        # the actor's counters over the window (first status after it) and its own env_step -> command latency
        a_end = d.status_after("actor", t1_ns, 5.0, watch)
        out["actor"] = actor_delta(marks["a0"], a_end)
        out["actor"]["counters_span_s"] = (d._stamp(a_end) - (d._stamp(marks["a0"]) if marks["a0"] is not None
                                                               else t0_ns)) * 1e-9
        win = [m for s, m in d.actor_status if t0_ns <= s <= t1_ns]
        p50s = finite(m.command_latency_p50_ms for m in win)
        out["actor"]["own_latency_p50_ms_median"] = statistics.median(p50s) if p50s else math.nan
        out["actor"]["own_latency_p99_ms_max"] = max(finite(m.command_latency_p99_ms for m in win), default=math.nan)
        out["loadavg_after"] = common.loadavg()
        # the actor's total of Transitions sent: two actor_status in a row after its last env_step that agree (it
        # may still work through queued env_steps for a while)
        last_pub = d.pub_wall_ns[-1]

        def settled() -> bool:
            after = [m for st, m in d.actor_status if st > last_pub]
            return len(after) >= 2 and after[-1].transitions_sent == after[-2].transitions_sent
        d.spin_for_condition(settled, 10.0, watch, "the actor's transitions_sent settled")
        out["transitions"] = dict(actor_sent=int(d.latest("actor").transitions_sent))
    finally:
        out["actor_shutdown"] = actor.stop()
    if "transitions" in out:
        # every Transition of this actor: what it sent against what the learner received (waits up to 10 s for a
        # learner_status, stamped after the actor stopped, that counts all of them); the driver's reader for reference
        stop_ns, seen, r0 = time.time_ns(), out["transitions"]["actor_sent"], int(l_start.transitions_received)
        deadline = time.monotonic() + 10.0
        while True:
            learner.check()
            m = d.latest("learner")
            got = int(m.transitions_received) - r0
            if (d._stamp(m) > stop_ns and got >= seen) or time.monotonic() > deadline:
                break
            d.ex.spin_once(timeout_sec=0.05)
        out["transitions"].update(learner_received=got, seen_by_driver=len(d.transitions_raw))
    return out


# ------------------------------------------------------------------------------------------------ report
def report(res: dict[str, Any]) -> str:
    m, s = res["machine"], res["setup"]
    L = [f"bench_edge: actor control loop vs a saturating ED learner ({res['command']})",
         f"machine: {m.get('cpu_model')}, {m['cores_available']} cores, {m.get('mem_total_gib')} GiB; torch "
         f"{m.get('torch_version')}; learner torch threads {m['learner_torch_threads']}, actor 1; ROS_DOMAIN_ID "
         f"{m.get('ros_domain_id')}, private netns {m.get('private_netns')}",
         f"load average (1/5/15 min) at start: {_la(res['loadavg_start'])}, at end: {_la(res.get('loadavg_end'))}",
         f"preset {s['preset']} on {s['env']} (obs {s['obs']}, act {s['act']}): G = {s['updates_per_step_G']}, "
         f"UTD target {s['utd_target']:g}, K = {s['weights_every_K']} (PolicyWeights "
         f"{s['policy_weights_msg_mib']:.2f} MiB each), buffer {s['buffer_capacity']:,} slots {s['buffer_dtype']} "
         f"= {s['buffer_bytes'] / 2**20:.1f} MiB (preallocated)",
         f"learner RSS: {res['learner_configured']['rss_mib']:.0f} MiB after configure (buffer allocated), "
         f"{res['learner_after_fill']['rss_mib']:.0f} MiB after exploration (norm_fill: buffer full), "
         f"{res.get('learner_end', {}).get('rss_mib', math.nan):.0f} MiB at the end (peak "
         f"{res.get('learner_end', {}).get('hwm_mib', math.nan):.0f})",
         f"fill: {res['fill']['env_steps']} env_steps at {res['fill']['rate_hz']:g} Hz in {res['fill']['seconds']:.1f}"
         f" s until the learner learned ({res['fill']['learner_stored']} stored)", ""]
    hdr = ("| rate | env_steps | latency p50 / p99 / max ms | missed (late + never) | driver late / skipped | "
           "jitter cmd std / p99 ms | driver jitter std / p99 ms | learner upd/s vs needed | stored/s | CPU cores "
           "actor / learner / driver / machine | RSS actor / learner MiB | load 1-min before → after |")
    L += [hdr, "|" + "---|" * (hdr.count("|") - 1)]
    for r in res.get("rates", []):
        lat, mi, dr, j, le, cc, rss = r["latency"], r["missed"], r["driver"], r["jitter"], r["learner"], \
            r["cpu_cores"], r["rss_mib"]
        L.append(f"| {r['rate_hz']:g} Hz | {r['env_steps']} | {lat['p50_ms']:.2f} / {lat['p99_ms']:.2f} / "
                 f"{lat['max_ms']:.1f} | {mi['count']} ({100 * mi['share']:.2f} %: {mi['late']} + "
                 f"{mi['unanswered']}) | {dr['late_periods']} / {dr['skipped_periods']} | "
                 f"{j['commands']['std_ms']:.2f} / {j['commands']['p99_abs_ms']:.2f} | "
                 f"{j['env_steps']['std_ms']:.2f} / {j['env_steps']['p99_abs_ms']:.2f} | "
                 f"{le['updates_per_s']:.1f} vs {le['needed_updates_per_s']:g} ({100 * le['share_of_needed']:.0f} %)"
                 f" | {le['stored_per_s']:.1f} | {cc['actor']:.2f} / {cc['learner']:.2f} / {cc['driver']:.2f} / "
                 f"{100 * cc['machine_busy_share']:.0f} % | {rss['actor']['rss_mib']:.0f} / "
                 f"{rss['learner']['rss_mib']:.0f} | {r['loadavg_before'][0]:.2f} → {r['loadavg_after'][0]:.2f} |")
    L.append("")
    for r in res.get("rates", []):
        a, dr, mt, li = r["actor"], r["driver"], r["matching"], r["latency_inbound"]
        L.append(f"{r['rate_hz']:g} Hz: env_step publish -> actor callback p50 {li['p50_ms']:.2f} ms, p99 "
                 f"{li['p99_ms']:.2f} ms (n {li['n']}); the actor's own callback -> publish p50 "
                 f"{a.get('own_latency_p50_ms_median', math.nan):.2f} ms, p99 up to "
                 f"{a.get('own_latency_p99_ms_max', math.nan):.2f} ms; driver lag p50 {dr['lag']['p50_ms']:.2f} ms, "
                 f"p99 {dr['lag']['p99_ms']:.2f} ms (late = > {dr['late_threshold_ms']:.2f} ms)")
        L.append(f"    commands in the window {r['commands_in_window']}: identified {mt['by_transition']} by their "
                 f"Transition + {mt['safe_for_final']} safe answers to final steps ({r['final_steps']} final steps);"
                 f" unidentified {mt['unidentified_policy']} policy + {mt['unidentified_zero']} zero, "
                 f"{mt['duplicate']} duplicates; actor: safe commands "
                 f"{a.get('safe_commands_sent')}, watchdog trips {a.get('watchdog_trips')}, bad env_steps "
                 f"{a.get('bad_env_steps')}")
        L.append(f"    transitions sent {r['transitions']['actor_sent']}, received by the learner "
                 f"{r['transitions']['learner_received']} (by the driver {r['transitions']['seen_by_driver']}); "
                 f"learner: reported upd/s "
                 f"{r['learner']['updates_per_s_reported_mean']:.1f}, UTD at the end {r['learner']['utd_end']:.3f} "
                 f"(target {res['setup']['utd_target']:g}); needed for the transitions actually stored "
                 f"{r['learner']['needed_for_stored_per_s']:.1f} upd/s; shutdown actor {r['actor_shutdown']['signal']}"
                 f" -> {r['actor_shutdown']['exit_code']}")
    return "\n".join(L)


def _la(la: Any) -> str:
    return "/".join(f"{x:.2f}" for x in la) if la else "?"


def _json_safe(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="50,100,200", help="control rates in Hz (comma list)")
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds per rate")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds driven before measuring, per rate")
    ap.add_argument("--fill-rate", type=float, default=250.0, help="rate (Hz) of the exploration fill phase")
    ap.add_argument("--fill-timeout", type=float, default=600.0, help="seconds the fill phase may take at most")
    ap.add_argument("--late-frac", type=float, default=0.1, help="a driver period is late when its env_step is "
                    "published more than this fraction of a period after its tick")
    ap.add_argument("--learner-threads", type=int, default=0, help="learner torch threads; 0 = all cores")
    ap.add_argument("--status-rate", type=float, default=1.0, help="learner_status rate (Hz) of the learner")
    ap.add_argument("--n-exp", type=int, default=0, help="override the preset's n_exp (0 = the preset's, 7,680)")
    ap.add_argument("--quick", action="store_true", help="smoke run: n_exp 256, 2 s per rate after 1 s warm-up")
    ap.add_argument("--json", type=Path, default=None, help="JSON results (full run default: "
                    "bench/results/edge_cpu.json; --quick: none)")
    ap.add_argument("--txt", type=Path, default=None, help="text report (full run default: "
                    "bench/results/edge_cpu.txt; --quick: none)")
    ap.add_argument("--logs", default="", help="folder for the node logs (default: a new temporary folder)")
    a = ap.parse_args(argv)
    if a.quick:
        a.duration, a.warmup = min(a.duration, 2.0), min(a.warmup, 1.0)
        a.n_exp = a.n_exp or 256
        a.status_rate = max(a.status_rate, 4.0)
    elif a.json is None and a.txt is None:
        a.json, a.txt = HERE / "results" / "edge_cpu.json", HERE / "results" / "edge_cpu.txt"
    try:
        a.rate_list = [float(x) for x in a.rates.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--rates must be a comma list of numbers, got {a.rates!r}")
    if not a.rate_list or any(not (0 < r <= 2000) for r in a.rate_list):
        ap.error(f"--rates must be between 0 and 2000 Hz, got {a.rates!r}")
    if a.duration <= 0 or a.warmup < 0 or a.fill_rate <= 0:
        ap.error("--duration and --fill-rate must be > 0, --warmup >= 0")
    return a


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    common.ensure_private_netns()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        res = run(args)
    except KeyboardInterrupt:
        print("bench_edge: interrupted; the node processes were stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"bench_edge: {exc}", file=sys.stderr)
        return 1
    text = report(res)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_json_safe(res), indent=1) + "\n")
    if args.txt:
        args.txt.parent.mkdir(parents=True, exist_ok=True)
        args.txt.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
