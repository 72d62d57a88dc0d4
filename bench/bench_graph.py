#!/usr/bin/env python3
"""Benchmark of the ROS 2 training graph against the headless trainer (issue: ROS graph benchmark).

Three measurements, all in one run (see bench/README.md, section "bench_graph.py"):

1. cost    Seconds per environment step while learning, same preset, same device (cpu), same torch threads, same
           process: (a) the headless trainer (``HeadlessTrainer.run``: act, env.step, buffer.add, G updates; its
           checkpoint writes switched off) and (b) the embedded lockstep graph (``EmbeddedGraph``: sim_bridge, actor
           and learner on one executor, real DDS; the learner's checkpoints switched off). Both are warmed up past
           exploration, then timed in interleaved chunks whose order rotates every round, so load from other
           processes hits both alike. Overhead = graph / headless - 1 over the summed chunk times (target: at most
           10 % in lockstep); "min-chunk" = fastest graph chunk / fastest headless chunk - 1 (robust to load spikes).
           CPU time per step of the process and of the executor (main) thread, spin_once calls per step and the
           wait-set size are reported too. ``--breakdown``: a separate pass with timing wrappers (``_Breakdown``)
           shows where a graph step goes. ``--whatif``: diagnostic graph variants in the same interleaved run
           (EventsExecutor; no DDS copy of the weights to the in-process actor; both), NOT the package as shipped.
2. latency env_step -> joint_commands round trip as the sim bridge sees it: this process plays the bridge (a real
           gymnasium Humanoid-v5 env, observations 348, actuators 17) and publishes EnvStep; the actor (ED preset,
           policy file exported from a fresh ED actor, mode async, simulation true, no learner) runs in its own
           process (``python -m symphony_ros.nodes.actor``); time from publish to the arrival of the command.
           A second pass subscribes the actor's Transitions too (as a learner does) and splits the round trip at the
           Transition's stamp. Also: the actor in this process on one executor (the embedded graph's arrangement),
           its per-step breakdown, and the bare actor forward. ``--whatif``: the actor process on EventsExecutor.
3. ingest  A learner process (S3, async, n_exp larger than the stream, so it stays in exploration and only stores and
           acknowledges) and a publisher process sending Humanoid-size Transition messages for ``--ingest-seconds``,
           first as fast as it can, then paced at 80 % of the learner's measured rate; transitions/s received and
           stored, and whether received == sent (learner_status after the stream ends). ``--whatif``: the same
           LearnerNode spun by EventsExecutor.

Network hygiene (README: Tests): ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a ROS_DOMAIN_ID of its own, and, when
run as root outside a private network namespace, the script re-executes itself under ``unshare -n`` (loopback only);
every node process it starts inherits all three.

Usage:
    python bench/bench_graph.py [--quick] [--json PATH] [--sections cost,latency,ingest] [--presets s3,ed]
                                [--threads 1,2] [--steps 60] [--warmup 10] [--chunk 5] [--latency-steps 1000]
                                [--ingest-seconds 5] [--breakdown] [--whatif]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 60))
os.environ.setdefault("MUJOCO_GL", "disable")

ENV_ID = "Humanoid-v5"
OBS, ACT = 348, 17                     # Humanoid-v5 policy input / actuators


# ================================================================================================ hygiene, machine
def _private_netns() -> bool:
    """True when this process's network namespace has only the loopback (/proc/self/net/dev is per namespace;
    /sys/class/net is not, it belongs to the namespace that mounted sysfs)."""
    try:
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return [ln.split(":", 1)[0].strip() for ln in lines] == ["lo"]


def ensure_private_netns() -> None:
    """Re-exec this script under ``unshare -n`` (loopback only) when root and not already isolated."""
    if _private_netns() or os.environ.get("BENCH_GRAPH_NETNS") == "1":
        return
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        os.environ["BENCH_GRAPH_NETNS"] = "1"
        os.execvp("unshare", ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
                              sys.executable, *sys.argv])
    print("WARNING: not in a private network namespace and cannot create one (not root / no unshare): DDS stays on "
          "loopback through ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST only", file=sys.stderr)


def machine_info() -> dict[str, Any]:
    import torch
    from _machine import cpu_model
    cpu = cpu_model()
    info = dict(cpu_model=cpu, cpu_count=os.cpu_count(), python=platform.python_version(),
                torch_version=torch.__version__, platform=platform.platform(),
                ros_domain_id=os.environ.get("ROS_DOMAIN_ID"), private_netns=_private_netns())
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


def _node_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# ================================================================================================ 1. cost per step
class _Breakdown:
    """Inclusive wall time per function while the graph runs, per thread: class-level wrappers for methods that are
    looked up at call time, and wrappers put on the already-created subscriptions, timers and learner callbacks
    (they hold bound methods made at construction). Nested calls are also counted in their callers. ``restore()``
    puts everything back."""

    CLASS_TARGETS = [
        ("symphony_ros.envs.bridge", "MujocoBridge", "step"),                       # MuJoCo step
        ("symphony_ros.nodes.sim_bridge", "SimBridgeNode", "_publish"),            # clock, joint_states, imu, env_step
        ("symphony_ros.nodes.actor", "ActorNode", "_act"),                         # policy forward + command publish
        ("symphony_ros.nodes.actor", "ActorNode", "_send_transition"),
        ("symphony_ros.nodes.actor", "ActorNode", "set_weights"),                  # in-process weight sharing
        ("symphony_ros.nodes.actor", "ActorNode", "_load_weights"),
        ("symphony_ros.learning", "Learner", "_unit"),                             # store + G updates + ack
        ("symphony_ros.learning", "Learner", "_store"),
        ("symphony_ros.learning", "Learner", "_emit_weights"),                     # flatten + on_weights
        ("symphony_ros.core.agent", "SymphonyAgent", "update"),
    ]

    def __init__(self, nodes, learner=None, class_targets=None) -> None:
        import importlib
        self.acc: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []
        for mod, cls, name in (self.CLASS_TARGETS if class_targets is None else class_targets):
            owner = getattr(importlib.import_module(mod), cls)
            orig = owner.__dict__[name]
            setattr(owner, name, self._wrap(f"{cls}.{name}", orig))
            self._undo.append(functools.partial(setattr, owner, name, orig))
        import symphony_ros.learning as learning_mod
        orig_flat = learning_mod.flatten_actor
        learning_mod.flatten_actor = self._wrap("flatten_actor", orig_flat)
        self._undo.append(functools.partial(setattr, learning_mod, "flatten_actor", orig_flat))
        for node in nodes:
            for ent in list(node.subscriptions) + list(node.timers):
                cb = ent.callback
                kind = f"sub {ent.topic_name}" if hasattr(ent, "topic_name") else "timer"
                ent.callback = self._wrap(f"{type(node).__name__}.{getattr(cb, '__name__', '?')} ({kind})", cb)
                self._undo.append(functools.partial(setattr, ent, "callback", cb))
        if learner is not None:
            for attr, label in (("on_weights", "LearnerNode._publish_weights (listener + DDS)"),
                                ("on_processed", "LearnerNode._ack")):
                cb = getattr(learner, attr)
                setattr(learner, attr, self._wrap(label, cb))
                self._undo.append(functools.partial(setattr, learner, attr, cb))

    def _wrap(self, label: str, fn: Callable) -> Callable:
        acc, lock = self.acc, self._lock

        @functools.wraps(fn)
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                dt = time.perf_counter() - t
                key = f"{label} [{threading.current_thread().name}]"
                with lock:
                    e = acc.setdefault(key, [0.0, 0])
                    e[0] += dt
                    e[1] += 1
        return wrapper

    def snapshot(self) -> dict[str, tuple[float, int]]:
        with self._lock:
            return {k: (v[0], v[1]) for k, v in self.acc.items()}

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def _patched_build_graph(orig: Callable) -> Callable:
    """build_graph wrapper used by the bench's EmbeddedGraph: the learner writes no checkpoints (the headless side's
    saves are switched off too). Everything else is the graph as shipped."""
    def wrapped(*a, **kw):
        specs = orig(*a, **kw)
        for s in specs:
            if s.executable == "learner":
                s.parameters["checkpoint_dir"] = ""
        return specs
    return wrapped


WHATIF = ("events_executor", "no_weights_copy", "both")


def _make_graph(preset: str, overrides: dict[str, Any], out: Path, variant: str = "as_is",
                domain_id: int | None = None):
    """An EmbeddedGraph on its own context (``domain_id``: several graphs may exist at once without cross-talk).

    Variants (what-if diagnostics, NOT the package as shipped, only with --whatif): ``events_executor`` puts the same
    nodes on ``rclpy.experimental.EventsExecutor``; ``no_weights_copy`` removes the in-process actor's policy_weights
    subscription (it gets every snapshot directly from the learner and ignores the DDS copy; this emulates a graph
    that does not deliver the DDS copy to in-process actors); ``both``."""
    import rclpy
    from symphony_ros import runner
    from symphony_ros.graph import build_graph
    ctx = rclpy.context.Context()
    if domain_id is None:
        rclpy.init(context=ctx)
    else:
        rclpy.init(context=ctx, domain_id=domain_id)
    runner.build_graph = _patched_build_graph(build_graph)
    try:
        g = runner.EmbeddedGraph(preset=preset, env=ENV_ID, out_dir=out, device="cpu", mode="lockstep",
                                 overrides=overrides, context=ctx)
    finally:
        runner.build_graph = build_graph
    g._bench_ctx = ctx
    if variant in ("no_weights_copy", "both"):
        for a in g.actors:
            for sub in list(a._subs):
                if sub.topic_name.endswith("/policy_weights"):
                    a.destroy_subscription(sub)
                    a._subs.remove(sub)
    if variant in ("events_executor", "both"):
        from rclpy.experimental import EventsExecutor
        for n in g.nodes:
            g.executor.remove_node(n)
        g.executor.shutdown()
        g.executor = EventsExecutor(context=ctx)
        for n in g.nodes:
            g.executor.add_node(n)
    return g


def _entities(g) -> dict[str, int]:
    """What the executor puts into its wait set on every spin_once (all nodes of the graph)."""
    out = dict(subscriptions=0, timers=0, services=0, clients=0, guards=0, waitables=0)
    for n in g.nodes:
        for k, attr in (("subscriptions", "subscriptions"), ("timers", "timers"), ("services", "services"),
                        ("clients", "clients"), ("guards", "guards"), ("waitables", "waitables")):
            out[k] += len(list(getattr(n, attr, ())))
    return out


def _close_graph(g) -> None:
    import rclpy
    g.shutdown()
    rclpy.try_shutdown(context=g._bench_ctx)


def _set_param(node, name: str, value: Any) -> None:
    from rclpy.parameter import Parameter
    res = node.set_parameters([Parameter(name, value=value)])
    if not all(r.successful for r in res):
        raise RuntimeError(f"could not set {node.get_name()}.{name} = {value!r}: {[r.reason for r in res]}")


def _spin_until(graph, cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        graph.spin_once(0.01)
    return True


def bench_cost(preset: str, threads: int, steps: int, warmup: int, chunk: int, overrides: dict[str, Any],
               breakdown: bool, tmp: Path, whatif: bool = False) -> dict[str, Any]:
    """Headless vs embedded lockstep graph, seconds per env step while learning (see module docstring)."""
    import torch
    from symphony_ros.core.config import load_preset
    from symphony_ros.trainer import HeadlessTrainer
    torch.set_num_threads(threads)
    cfg = load_preset(preset, overrides)
    G = cfg.updates_per_step
    la0 = os.getloadavg()
    # ---- headless: exploration + warm-up learning steps (its checkpoint writes are switched off)
    tr = HeadlessTrainer(ENV_ID, cfg, tmp / f"headless_{preset}_{threads}", max_steps=cfg.n_exp + warmup,
                         device="cpu", seed=0, progress=False, checkpoint_every=10 ** 12)
    tr.save = lambda: None
    t = time.perf_counter()
    tr.run()
    headless_setup = time.perf_counter() - t
    assert tr.agent.learning, "headless trainer did not reach learning"
    # ---- graph(s): exploration + warm-up, each on its own DDS domain
    base = int(os.environ["ROS_DOMAIN_ID"])
    variants = ["as_is", *(WHATIF if whatif else ())]
    graphs: dict[str, Any] = {}
    setup: dict[str, float] = {}
    try:
        for i, v in enumerate(variants):
            t = time.perf_counter()
            g = _make_graph(preset, overrides, tmp / f"graph_{preset}_{threads}_{v}", v,
                            None if i == 0 else (base + 17 * i) % 100)
            graphs[v] = g
            learner = g.learner.learner
            _set_param(g.actors[0], "learner_timeout_s", 0.0)   # paused between chunks: the learner is not dead
            ok = _spin_until(g, lambda: learner.learning and g.steps >= cfg.n_exp + warmup, timeout=600)
            setup[v] = time.perf_counter() - t
            if not ok:
                raise RuntimeError(f"graph {v} did not reach learning + warm-up: steps {g.steps}, stored "
                                   f"{learner.stored}")
            _set_param(g.bridges[0], "republish_s", 0.0)     # no re-publication of the env_step waiting between chunks
        # ---- interleaved timed chunks (the order rotates every round)
        times: dict[str, list[float]] = {k: [] for k in ["headless", *variants]}
        cpu_main: dict[str, float] = {k: 0.0 for k in times}
        cpu_proc: dict[str, float] = {k: 0.0 for k in times}
        upd0 = {"headless": tr.agent.updates, **{v: g.learner.learner.updates for v, g in graphs.items()}}
        steps0 = {v: g.steps for v, g in graphs.items()}

        def headless_chunk(n: int) -> float:
            tr.max_steps = tr.total_steps + n
            t0 = time.perf_counter()
            tr.run()
            return time.perf_counter() - t0

        def graph_chunk(g, n: int) -> float:
            # A chunk ends quiescent: the bridge stepped inside a command callback, which came after the learner's
            # ack (its worker is idle); the new env_step waits in the actor's queue until the next chunk.
            target = g.steps + n
            t0 = time.perf_counter()
            calls = 0
            while g.steps < target:
                g.spin_once(0.02)
                calls += 1
            spins[id(g)] = spins.get(id(g), 0) + calls
            return time.perf_counter() - t0

        spins: dict[int, int] = {}
        order = ["headless", *variants]
        done, r = 0, 0
        while done < steps:
            n = min(chunk, steps - done)
            k = r % len(order)
            for name in order[k:] + order[:k]:
                c0, p0 = time.thread_time(), time.process_time()
                dt = headless_chunk(n) if name == "headless" else graph_chunk(graphs[name], n)
                cpu_main[name] += time.thread_time() - c0
                cpu_proc[name] += time.process_time() - p0
                times[name].append(dt)
            done += n
            r += 1
        hl = sum(times["headless"]) / steps
        res: dict[str, Any] = dict(
            preset=preset, threads=threads, G=G, steps=steps, chunk=chunk, warmup=warmup, overrides=overrides,
            headless_s_per_step=hl, headless_updates_per_step=(tr.agent.updates - upd0["headless"]) / steps,
            headless_cpu_ms_per_step=1e3 * cpu_proc["headless"] / steps, headless_chunks_s=times["headless"],
            headless_setup_s=headless_setup)
        out_variants = {}
        for v, g in graphs.items():
            learner, actor = g.learner.learner, g.actors[0]
            n_real = g.steps - steps0[v]
            gr = sum(times[v]) / steps
            ratios = [a / b for a, b in zip(times[v], times["headless"])]
            out_variants[v] = dict(
                s_per_step=gr, overhead_pct=100.0 * (gr / hl - 1.0),
                min_chunk_overhead_pct=100.0 * (min(times[v]) / min(times["headless"]) - 1.0),
                chunk_ratio_median=statistics.median(ratios),
                chunk_ratio_min=min(ratios), chunk_ratio_max=max(ratios), chunks_s=times[v],
                updates_per_step=(learner.updates - upd0[v]) / n_real, steps_timed=n_real,
                main_thread_cpu_ms_per_step=1e3 * cpu_main[v] / steps,
                process_cpu_ms_per_step=1e3 * cpu_proc[v] / steps, setup_s=setup[v],
                spin_once_calls_per_step=spins.get(id(g), 0) / steps, executor_entities=_entities(g),
                counters=dict(safe_commands=actor.safe_commands_sent, bad_actions=actor.bad_actions,
                              weights_ignored=actor.weights_ignored, duplicates_ignored=actor.duplicates_ignored,
                              transitions_sent=actor.transitions_sent, learner_received=learner.received,
                              learner_stored=learner.stored))
        g = graphs["as_is"]
        v0 = out_variants["as_is"]
        res.update(graph_s_per_step=v0["s_per_step"], overhead_pct=v0["overhead_pct"],
                   min_chunk_overhead_pct=v0["min_chunk_overhead_pct"],
                   chunk_ratio_median=v0["chunk_ratio_median"], chunk_ratio_min=v0["chunk_ratio_min"],
                   chunk_ratio_max=v0["chunk_ratio_max"], graph_updates_per_step=v0["updates_per_step"],
                   variants=out_variants)
        res["breakdown"] = _graph_breakdown(g, min(steps, 3 * chunk)) if breakdown else None
    finally:
        for g in graphs.values():
            _close_graph(g)
    res.update(loadavg_start=list(la0), loadavg_end=list(os.getloadavg()))
    return res


def _graph_breakdown(g, n: int) -> dict[str, Any]:
    """A separate pass of ``n`` graph steps with timing wrappers (not part of the overhead figure)."""
    bd = _Breakdown(g.nodes, g.learner.learner)
    try:
        target = g.steps + n
        spin = 0.0
        t0 = time.perf_counter()
        while g.steps < target:
            s = time.perf_counter()
            g.spin_once(0.02)
            spin += time.perf_counter() - s
        wall = time.perf_counter() - t0
        snap = bd.snapshot()
    finally:
        bd.restore()
    items = {k: dict(ms_per_step=1e3 * v[0] / n, calls_per_step=v[1] / n) for k, v in snap.items()}
    return dict(steps=n, wall_ms_per_step=1e3 * wall / n, spin_once_ms_per_step=1e3 * spin / n,
                items=dict(sorted(items.items(), key=lambda kv: -kv[1]["ms_per_step"])))


# ================================================================================================ 2. latency
def _export_ed_actor(path: Path, hidden: int | None = None) -> Path:
    import torch
    from symphony_ros.core.config import load_preset
    from symphony_ros.core.policy import build_actor, export_actor
    cfg = load_preset("ed", {"hidden_dim": hidden} if hidden else None)
    torch.manual_seed(0)
    actor = build_actor(OBS, ACT, cfg)
    return export_actor(path, actor, cfg, version=1)


def _actor_spec(policy_file: Path):
    from symphony_ros.core.config import config_dir
    from symphony_ros.graph import NodeSpec
    # obs_timeout_s: the async watchdog would otherwise send unsolicited safe commands before the first env_step
    return NodeSpec("actor", "actor", "", config_dir() / "actor.yaml",
                    dict(preset="ed", mode="async", simulation=True, policy_file=str(policy_file), seed=0,
                         obs_timeout_s=3600.0))


class _BridgeProbe:
    """Plays the sim bridge: a real Humanoid-v5 env, EnvStep out, joint_commands in, one command per env_step."""

    def __init__(self, context, split: bool = False) -> None:
        import rclpy
        from std_msgs.msg import Float64MultiArray
        from symphony_ros.envs.gym_env import make_env
        from symphony_ros import contract
        from symphony_ros.nodes.common import qos_profile
        from symphony_ros_interfaces.msg import EnvStep
        self.node = rclpy.create_node("bench_bridge", context=context)
        self.pub = self.node.create_publisher(EnvStep, contract.ENV_STEP.name, qos_profile(contract.ENV_STEP))
        self.got: list[tuple[float, Any]] = []
        self.node.create_subscription(Float64MultiArray, contract.JOINT_COMMANDS.name,
                                      lambda m: self.got.append((time.perf_counter(), m)), qos_profile(contract.JOINT_COMMANDS))
        self.env = make_env(ENV_ID, episode_limit=1000, seed=0)
        self.EnvStep = EnvStep
        self.episode = -1
        # split: also take the actor's Transitions (raw CDR, deserialised after the run). Their header stamp is the
        # actor's wall clock inside its env_step callback, before the policy forward and the command publish.
        self.raw_transitions: list[bytes] = []
        self.sent_stamps: dict[tuple[int, int], tuple[int, float]] = {}
        if split:
            from symphony_ros_interfaces.msg import Transition
            self.node.create_subscription(Transition, contract.TRANSITIONS.name, self.raw_transitions.append,
                                          qos_profile(contract.TRANSITIONS), raw=True)

    def reset(self):
        import numpy as np
        self.episode += 1
        obs, _ = self.env.reset(seed=self.episode)
        return np.asarray(obs, np.float32), 0.0, False, False, 0

    def run(self, executor, steps: int, warmup: int, timeout_s: float = 5.0) -> list[float]:
        """``warmup`` + ``steps`` answered env_steps; returns the round trips (s) of the last ``steps``."""
        import array

        import numpy as np
        from symphony_ros.nodes.common import set_stamp
        lat: list[float] = []
        obs, rew, term, trunc, k = self.reset()
        answered = 0
        while answered < warmup + steps:
            msg = self.EnvStep()
            stamp = time.time_ns()
            set_stamp(msg.header, stamp)
            msg.episode, msg.step = self.episode, k
            msg.observation = array.array("f", obs.tobytes())
            msg.reward, msg.terminated, msg.truncated = float(rew), bool(term), bool(trunc)
            n0 = len(self.got)
            t0 = time.perf_counter()
            self.pub.publish(msg)
            if term or trunc:                       # the actor does not answer a terminal step
                obs, rew, term, trunc, k = self.reset()
                continue
            deadline = t0 + timeout_s
            while len(self.got) == n0:
                executor.spin_once(timeout_sec=0.005)
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"no joint_commands within {timeout_s} s for episode {self.episode} step {k}")
            t1, cmd = self.got[n0]
            if answered >= warmup:
                lat.append(t1 - t0)
                self.sent_stamps[(self.episode, k)] = (stamp, t1 - t0)
            answered += 1
            o, r, term, trunc, _ = self.env.step(np.asarray(cmd.data, dtype=np.float64))
            obs, rew, k = np.asarray(o, np.float32), float(r), k + 1
            del self.got[:]
        return lat

    def split(self) -> dict[str, list[float]]:
        """Per measured step that produced a Transition: inbound = env_step publish -> the actor's Transition stamp
        (DDS hop + actor executor dispatch + conversion); rest = round trip - inbound (transition publish, policy
        forward, command publish, DDS hop back, this process's dispatch). Seconds."""
        from rclpy.serialization import deserialize_message
        from symphony_ros.nodes.common import stamp_ns
        from symphony_ros_interfaces.msg import Transition
        inbound, rest = [], []
        for raw in self.raw_transitions:
            t = deserialize_message(raw, Transition)
            sent = self.sent_stamps.get((int(t.episode), int(t.step) + 1))   # made while acting on step + 1
            if sent is None:
                continue
            d = (stamp_ns(t.header) - sent[0]) * 1e-9
            inbound.append(d)
            rest.append(sent[1] - d)
        return dict(inbound=inbound, rest=rest)

    def wait_matched(self, executor, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        sub = next(iter(self.node.subscriptions))
        while time.monotonic() < deadline:
            if self.pub.get_subscription_count() >= 1 and sub.get_publisher_count() >= 1:
                return True
            executor.spin_once(timeout_sec=0.05)
        return False


def _lat_stats(lat: list[float]) -> dict[str, Any]:
    ms = [x * 1e3 for x in lat]
    return dict(n=len(ms), p50_ms=_pct(ms, 0.5), p90_ms=_pct(ms, 0.9), p99_ms=_pct(ms, 0.99), max_ms=max(ms),
                mean_ms=statistics.fmean(ms), min_ms=min(ms))


def _cross_process_latency(spec, steps: int, warmup: int, tmp: Path, events: bool, split: bool) -> dict[str, Any]:
    """The actor in its own process (``events``: the what-if harness on EventsExecutor); this process plays the
    bridge. Returns the round-trip statistics (+ the split pass when ``split``)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    name = "latency_actor_events" if events else "latency_actor"
    log = open(tmp / f"{name}.log", "wb")
    cmd = [sys.executable, str(Path(__file__).resolve()), "_node_events", "actor"] if events else \
        [sys.executable, "-m", "symphony_ros.nodes.actor"]
    proc = subprocess.Popen([*cmd, *spec.ros_args(), "-r", "__ns:=/"], env=_node_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    out: dict[str, Any] = {}
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    try:
        passes = [False, True] if split else [False]
        for with_tr in passes:
            probe = _BridgeProbe(ctx, split=with_tr)
            ex = SingleThreadedExecutor(context=ctx)
            ex.add_node(probe.node)
            if not probe.wait_matched(ex, 60.0):
                raise RuntimeError("actor process did not match: " + (tmp / f"{name}.log").read_text()[-2000:])
            time.sleep(0.5)      # let the actor finish activation after discovery
            lat = probe.run(ex, steps, warmup)
            if not with_tr:
                out["round_trip"] = _lat_stats(lat)
                out["samples_ms"] = [round(v * 1e3, 4) for v in lat]
            else:
                sp = probe.split()
                out["with_transitions"] = _lat_stats(lat)
                if sp["inbound"]:
                    out["split_inbound"] = _lat_stats(sp["inbound"])
                    out["split_rest"] = _lat_stats(sp["rest"])
            ex.shutdown()
            probe.node.destroy_node()
    finally:
        _stop([proc])
        rclpy.try_shutdown(context=ctx)
    return out


def bench_latency(steps: int, warmup: int, tmp: Path, hidden: int | None = None,
                  whatif: bool = False) -> dict[str, Any]:
    import rclpy
    import torch
    from rclpy.executors import SingleThreadedExecutor
    la0 = os.getloadavg()
    policy = _export_ed_actor(tmp / "ed_actor.pt", hidden)
    spec = _actor_spec(policy)
    out: dict[str, Any] = dict(preset="ed", obs=OBS, act=ACT, steps=steps, warmup=warmup, policy_file=str(policy))
    # --- actor forward alone (what the actor process does per step, 1 torch thread like its main())
    from symphony_ros.core.policy import load_actor_file
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    actor, _, _ = load_actor_file(policy)
    actor.eval().requires_grad_(False)
    x = torch.randn(1, OBS)
    fw = []
    with torch.inference_mode():
        for i in range(steps + 50):
            t = time.perf_counter()
            actor(x, act=1.0, noise=1.0)[0][0].float().cpu().numpy()
            if i >= 50:
                fw.append(time.perf_counter() - t)
    out["actor_forward"] = _lat_stats(fw)
    out["actor_hidden"] = actor.hidden
    # --- actor in its own process (+ a diagnostic pass with the Transitions subscribed, split at the actor)
    cp = _cross_process_latency(spec, steps, warmup, tmp, events=False, split=True)
    out["cross_process"] = cp["round_trip"]
    out["cross_process_samples_ms"] = cp["samples_ms"]
    for k in ("with_transitions", "split_inbound", "split_rest"):
        if k in cp:
            out[("cross_process_" if k == "with_transitions" else "") + k] = cp[k]
    if whatif:
        cp = _cross_process_latency(spec, steps, warmup, tmp, events=True, split=False)
        out["whatif_cross_process_events_actor"] = cp["round_trip"]
    # --- actor in this process, one executor (the embedded graph's arrangement)
    from symphony_ros.nodes.actor import ActorNode
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    try:
        node = ActorNode(cli_args=spec.ros_args(), context=ctx)
        probe = _BridgeProbe(ctx)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        ex.add_node(probe.node)
        if not probe.wait_matched(ex, 30.0):
            raise RuntimeError("in-process actor did not match")
        lat = probe.run(ex, steps, warmup)
        out["in_process"] = _lat_stats(lat)
        # where the actor's time goes per env_step (separate pass, timing wrappers; inclusive, ms per answered step)
        bd = _Breakdown([node, probe.node], class_targets=[
            ("symphony_ros.nodes.actor", "ActorNode", "_send_transition"),
            ("symphony_ros.nodes.actor", "ActorNode", "_act"),
            ("symphony_ros.nodes.actor", "ActorNode", "_publish_command")])
        try:
            n_bd = min(steps, 300)
            probe.run(ex, n_bd, 0)
            snap = bd.snapshot()
        finally:
            bd.restore()
        out["in_process_breakdown"] = {k.rsplit(" [", 1)[0]: dict(ms_per_step=1e3 * v[0] / n_bd,
                                                                  calls_per_step=v[1] / n_bd)
                                       for k, v in sorted(snap.items(), key=lambda kv: -kv[1][0])}
        ex.shutdown()
        node.destroy_node()
        probe.node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
        torch.set_num_threads(old_threads)
    out["loadavg_start"], out["loadavg_end"] = list(la0), list(os.getloadavg())
    return out


# ================================================================================================ 3. ingest
def _blast_main(argv: list[str]) -> int:
    """Publisher process: Transition messages of Humanoid size for --seconds, as fast as possible (--rate 0) or paced
    at --rate per second, after the learner's subscription matched. A publish() that the reliable writer refuses
    (its history full of unacknowledged samples) is counted and retried. Waits until all are acknowledged, prints a
    JSON line with the counts."""
    import array

    import numpy as np
    import rclpy
    from rclpy.duration import Duration
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy_impl
    from symphony_ros import contract
    from symphony_ros.nodes.common import qos_profile
    from symphony_ros_interfaces.msg import Transition
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=0.0, help="messages per second; 0 = as fast as possible")
    ap.add_argument("--max", type=int, default=0, help="stop after this many messages (0 = time only)")
    a = ap.parse_args(argv)
    rclpy.init()
    node = rclpy.create_node("bench_blaster")
    pub = node.create_publisher(Transition, contract.TRANSITIONS.name, qos_profile(contract.TRANSITIONS))
    deadline = time.monotonic() + 60
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    if pub.get_subscription_count() < 1:
        print(json.dumps(dict(error="learner subscription not matched")), flush=True)
        return 1
    time.sleep(1.0)      # both sides of discovery (the reader must know this writer too)
    rng = np.random.default_rng(0)
    pool = [(array.array("f", rng.standard_normal(OBS, dtype=np.float32).tobytes()),
             array.array("f", rng.uniform(-1, 1, ACT).astype(np.float32).tobytes())) for _ in range(64)]
    msg = Transition()
    msg.header.frame_id = "blaster"
    sent = refused = 0
    refused_msg = ""
    period = 1.0 / a.rate if a.rate > 0 else 0.0
    t_start_wall = time.time()
    t0 = time.perf_counter()
    end = t0 + a.seconds
    while True:
        now = time.perf_counter()
        if now >= end or (a.max and sent >= a.max):
            break
        if period:
            due = t0 + sent * period
            if now < due:
                if due - now > 0.002:
                    time.sleep(due - now - 0.001)
                continue
        o, act = pool[sent % 64]
        o2, _ = pool[(sent + 1) % 64]
        ns = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
        msg.episode, msg.step = sent // 1000, sent % 1000
        msg.observation, msg.action, msg.next_observation = o, act, o2
        msg.reward = 0.5
        msg.terminated = msg.truncated = False
        try:
            pub.publish(msg)
        except _rclpy_impl.RCLError as exc:   # reliable writer history full of unacknowledged samples: retry
            refused += 1
            refused_msg = str(exc).splitlines()[0][:200]
            time.sleep(0.001)
            continue
        sent += 1
    t_pub = time.perf_counter() - t0
    t_end_wall = time.time()
    acked = pub.wait_for_all_acked(Duration(seconds=60))
    t_acked = time.perf_counter() - t0
    print(json.dumps(dict(sent=sent, refused=refused, refused_error=refused_msg, publish_s=t_pub,
                          acked=bool(acked), acked_s=t_acked, t_start_wall=t_start_wall, t_end_wall=t_end_wall)),
          flush=True)
    time.sleep(0.5)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _stream(ex, status: list, seconds: float, rate: float, max_n: int, log: Path) -> dict[str, Any]:
    """One publisher process run against the running learner; counts are deltas over this run."""
    m0 = status[-1][1]
    r0, s0, j0 = m0.transitions_received, m0.transitions_stored, m0.transitions_rejected
    n_status0 = len(status)
    with open(log, "ab") as err:
        blaster = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_blast", "--seconds",
                                    str(seconds), "--rate", str(rate), "--max", str(max_n)],
                                   env=_node_env(), stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            while blaster.poll() is None:
                ex.spin_once(timeout_sec=0.05)
            out_s = blaster.stdout.read()
        finally:
            if blaster.poll() is None:
                blaster.kill()
                blaster.wait()
    lines = [ln for ln in out_s.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"publisher failed: {log.read_text()[-2000:]}")
    pub = json.loads(lines[-1])
    if "error" in pub:
        raise RuntimeError(f"publisher: {pub['error']}")
    sent = int(pub["sent"])
    # wait until the learner has received and stored everything it will get (nothing changes for 3 s)
    last_change, last = time.monotonic(), None
    while time.monotonic() - last_change < 3.0:
        ex.spin_once(timeout_sec=0.05)
        m = status[-1][1]
        key = (m.transitions_received, m.transitions_stored)
        if key != last:
            last, last_change = key, time.monotonic()
        if m.transitions_received - r0 >= sent and m.transitions_stored + m.transitions_rejected - s0 - j0 >= sent:
            break
    run = status[n_status0:]
    final = status[-1][1]
    received, stored = final.transitions_received - r0, final.transitions_stored - s0

    def first_reaching(attr: str, base: int, n: int) -> float | None:
        for t, m in run:
            if getattr(m, attr) - base >= n:
                return t
        return None

    def rate_between(t_a: float, t_b: float) -> float | None:
        inside = [(t, m) for t, m in run if t_a <= t <= t_b]
        if len(inside) < 2:
            return None
        (ta, ma), (tb, mb) = inside[0], inside[-1]
        return (mb.transitions_received - ma.transitions_received) / max(tb - ta, 1e-9)

    t_start, t_end = pub["t_start_wall"], pub["t_end_wall"]
    t_recv = first_reaching("transitions_received", r0, received)
    t_stored = first_reaching("transitions_stored", s0, stored)
    return dict(seconds=seconds, target_rate=rate or None, sent=sent, publish_rate=sent / pub["publish_s"],
                publish_refused=pub["refused"], publish_refused_error=pub["refused_error"],
                publisher_acked=pub["acked"], publisher_acked_s=pub["acked_s"],
                received=int(received), stored=int(stored),
                rejected=int(final.transitions_rejected - j0), lost=sent - int(received),
                received_rate=(received / (t_recv - t_start)) if t_recv else None,
                stored_rate=(stored / (t_stored - t_start)) if t_stored else None,
                received_rate_while_publishing=rate_between(t_start, t_end),
                drain_rate_after_publishing=rate_between(t_end + 0.1, t_recv or t_end),
                learning=bool(final.learning))


def _node_events_main(argv: list[str]) -> int:
    """What-if harness (--whatif): ``_node_events learner|actor --ros-args ...`` runs the package's node, unchanged,
    on rclpy.experimental.EventsExecutor instead of the SingleThreadedExecutor of its ``main()``."""
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
        # spin_once with a timeout, not spin(): EventsExecutor.spin() busy-loops in this rclpy wheel (9.1.2) and its
        # timers then hardly fire (seen here: 100 % CPU, 1 of 20 timer calls per second)
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


def _py_spy_dump(pid: int) -> str:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        return subprocess.run([exe, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30).stdout
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        return f"(py-spy dump failed: {exc})"


def bench_ingest(seconds: float, tmp: Path, preset: str = "s3", quick: bool = False,
                 events_executor: bool = False) -> dict[str, Any]:
    """Learner process (async, exploration) against a publisher process: as fast as possible, then paced below
    the learner's measured rate. ``events_executor``: what-if, the learner spun by EventsExecutor (bench harness)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from symphony_ros.core.config import config_dir
    from symphony_ros.graph import NodeSpec
    from symphony_ros import contract
    from symphony_ros.nodes.common import qos_profile
    from symphony_ros_interfaces.msg import LearnerStatus
    la0 = os.getloadavg()
    n_exp = 50_000 if quick else 200_000      # more than both streams: the learner stays in exploration
    sym = {"symphony.n_exp": n_exp, "symphony.buffer_times": 1}
    if quick:
        sym.update({"symphony.hidden_dim": 32, "symphony.heads_per_critic": 8, "symphony.batch_size": 16})
    spec = NodeSpec("learner", "learner", "", config_dir() / "learner.yaml",
                    dict(preset=preset, mode="async", device="cpu", obs_dim=OBS, act_dim=ACT, checkpoint_dir="",
                         status_rate_hz=20.0, seed=0, **sym))
    log_path = tmp / f"ingest_learner{'_events' if events_executor else ''}.log"
    log = open(log_path, "wb")
    cmd = [sys.executable, str(Path(__file__).resolve()), "_node_events", "learner"] if events_executor else \
        [sys.executable, "-m", "symphony_ros.nodes.learner"]
    learner = subprocess.Popen([*cmd, *spec.ros_args(), "-r", "__ns:=/"], env=_node_env(), stdout=log,
                               stderr=subprocess.STDOUT)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node("bench_ingest_monitor", context=ctx)
        status: list[tuple[float, Any]] = []
        node.create_subscription(LearnerStatus, contract.LEARNER_STATUS.name,
                                 lambda m: status.append((time.time(), m)), qos_profile(contract.LEARNER_STATUS))
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        deadline = time.monotonic() + 120
        while not status and time.monotonic() < deadline:      # learner configured (buffer allocated) and active
            ex.spin_once(timeout_sec=0.1)
        if not status:
            raise RuntimeError(f"no learner_status within 120 s (learner exit code {learner.poll()}); log:\n"
                               + log_path.read_text()[-2000:] + "\npy-spy dump of the learner:\n"
                               + (_py_spy_dump(learner.pid) if learner.poll() is None else ""))
        cap = int(status[-1][1].buffer_capacity)
        blast = _stream(ex, status, seconds, 0.0, cap // 2, tmp / "ingest_blast.log")
        cap_rate = blast["drain_rate_after_publishing"] or blast["received_rate"] or 1000.0
        cap_rate = min(cap_rate, blast["received_rate_while_publishing"] or cap_rate)
        paced_rate = round(0.8 * cap_rate, -1) or 100.0
        left = cap - int(status[-1][1].transitions_stored) - 10
        paced = _stream(ex, status, seconds, paced_rate, max(1, left), tmp / "ingest_paced.log")
        ex.shutdown()
        node.destroy_node()
    finally:
        _stop([learner])
        rclpy.try_shutdown(context=ctx)
    executor = "EventsExecutor (what-if harness)" if events_executor else \
        "SingleThreadedExecutor (symphony_ros.nodes.learner)"
    return dict(preset=preset, mode="async", executor=executor, n_exp=n_exp, buffer_capacity=cap, seconds=seconds,
                status_period_s=0.05, transitions_qos_depth=qos_profile(contract.TRANSITIONS).depth, blast=blast, paced=paced,
                loadavg_start=list(la0), loadavg_end=list(os.getloadavg()))


# ================================================================================================ report
def _fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def report(res: dict[str, Any]) -> None:
    m = res["machine"]
    print()
    print(f"bench_graph: CPU {m['cpu_model']} x {m['cpu_count']}, torch {m['torch_version']}, python {m['python']}, "
          f"rclpy wheel {m.get('rclpy_wheel', '?')}, private netns {m['private_netns']}")
    la0, la1 = res["loadavg_start"], res["loadavg_end"]
    print(f"load average (1/5/15 min): start {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f}, end "
          f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f}  (shared machine: compare ratios from the same run)")
    if res.get("cost"):
        print("\n1. Cost per environment step while learning (lockstep, cpu, interleaved chunks)")
        hdr = ("preset", "thr", "G", "steps", "headless s/step", "graph s/step", "overhead", "min-chunk ovh",
               "chunk ratio med [min, max]", "upd/step h|g", "load 1m start/end")
        rows = []
        for c in res["cost"]:
            rows.append((c["preset"], str(c["threads"]), str(c["G"]), str(c["steps"]),
                         f"{c['headless_s_per_step']:.4f}", f"{c['graph_s_per_step']:.4f}",
                         f"{c['overhead_pct']:+.1f} %", f"{c['min_chunk_overhead_pct']:+.1f} %",
                         f"{c['chunk_ratio_median']:.3f} [{c['chunk_ratio_min']:.3f}, {c['chunk_ratio_max']:.3f}]",
                         f"{c['headless_updates_per_step']:.2f}|{c['graph_updates_per_step']:.2f}",
                         f"{c['loadavg_start'][0]:.2f}/{c['loadavg_end'][0]:.2f}"))
        _table(hdr, rows)
        print("   CPU per step (ms): headless process | graph process, of it the executor (main) thread:")
        for c in res["cost"]:
            v = c["variants"]["as_is"]
            e = v["executor_entities"]
            print(f"     {c['preset']} thr {c['threads']}: {c['headless_cpu_ms_per_step']:.1f} | "
                  f"{v['process_cpu_ms_per_step']:.1f}, main thread {v['main_thread_cpu_ms_per_step']:.1f} "
                  f"({v['spin_once_calls_per_step']:.1f} spin_once calls/step over {sum(e.values())} wait-set "
                  f"entities: {', '.join(f'{k} {x}' for k, x in e.items() if x)}); DDS weight copies ignored by the "
                  f"in-process actor: {v['counters']['weights_ignored']}")
        wi = [c for c in res["cost"] if len(c["variants"]) > 1]
        if wi:
            print("\n   what-if (diagnostic graph variants, NOT the package as shipped; same interleaved run):")
            hdr = ("preset", "thr", "variant", "s/step", "overhead", "min-chunk ovh", "chunk ratio med",
                   "main-thread CPU ms/step")
            rows = []
            for c in wi:
                rows.append((c["preset"], str(c["threads"]), "headless", f"{c['headless_s_per_step']:.4f}", "",
                             "", "", ""))
                for name, v in c["variants"].items():
                    rows.append((c["preset"], str(c["threads"]), name, f"{v['s_per_step']:.4f}",
                                 f"{v['overhead_pct']:+.1f} %", f"{v['min_chunk_overhead_pct']:+.1f} %",
                                 f"{v['chunk_ratio_median']:.3f}",
                                 f"{v['main_thread_cpu_ms_per_step']:.1f}"))
            _table(hdr, rows)
        for c in res["cost"]:
            if c.get("breakdown"):
                b = c["breakdown"]
                print(f"\n   where a graph step goes ({c['preset']}, {c['threads']} thr; separate pass of {b['steps']} "
                      f"steps with timing wrappers; {b['wall_ms_per_step']:.1f} ms/step wall, of it "
                      f"{b['spin_once_ms_per_step']:.1f} in the main thread's spin_once; inclusive times, "
                      f"nested calls also counted in their callers; [thread]):")
                for k, v in list(b["items"].items())[:22]:
                    print(f"     {v['ms_per_step']:9.2f} ms/step  {v['calls_per_step']:5.2f} calls/step  {k}")
    if res.get("latency"):
        L = res["latency"]
        print(f"\n2. env_step -> joint_commands round trip (ED actor, hidden {L['actor_hidden']}, obs {L['obs']}, "
              f"act {L['act']}, async, {L['steps']} steps after {L['warmup']} warm-up; real Humanoid-v5 obs)")
        hdr = ("where", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms")
        rows = []
        for key, label in (("cross_process", "actor in its own process"),
                           ("cross_process_with_transitions", "  same, Transitions subscribed too"),
                           ("split_inbound", "    env_step pub -> actor callback"),
                           ("split_rest", "    actor callback -> command here"),
                           ("whatif_cross_process_events_actor", "what-if: actor process on EventsExecutor"),
                           ("in_process", "actor in this process"),
                           ("actor_forward", "actor forward only (1 thr)")):
            s = L.get(key)
            if s:
                rows.append((label, str(s["n"]), f"{s['p50_ms']:.3f}", f"{s['p90_ms']:.3f}", f"{s['p99_ms']:.3f}",
                             f"{s['max_ms']:.3f}", f"{s['mean_ms']:.3f}"))
        _table(hdr, rows)
        if L.get("in_process_breakdown"):
            print("   in-process actor, per answered env_step (timing wrappers, separate pass; inclusive ms):")
            for k, v in L["in_process_breakdown"].items():
                print(f"     {v['ms_per_step']:7.3f} ms  {v['calls_per_step']:5.2f} calls/step  {k}")
        if L.get("cross_process"):
            p99 = L["cross_process"]["p99_ms"]
            print(f"   target p99 < 2 ms across processes: {'MET' if p99 < 2.0 else 'NOT MET'} ({p99:.3f} ms)")
    for ikey in ("ingest", "ingest_whatif_events"):
        if not res.get(ikey):
            continue
        I = res[ikey]
        if ikey == "ingest_whatif_events":
            print("\n   what-if (diagnostic, NOT the package as shipped): the same LearnerNode spun by "
                  "rclpy.experimental.EventsExecutor")
        else:
            print(f"\n3. Learner ingest ({I['preset']} learner process, async, exploration phase: stores and "
                  f"acknowledges only; publisher process, Humanoid-size Transitions, {I['seconds']:g} s per run; "
                  f"transitions QoS reliable, keep last {I['transitions_qos_depth']})")
        hdr = ("publisher", "sent", "sent /s", "received", "stored", "lost", "recv /s (all in)", "stored /s",
               "recv /s while publishing", "recv /s draining")
        rows = []
        for key, label in (("blast", "as fast as possible"), ("paced", "paced")):
            r = I[key]
            if key == "paced":
                label = f"paced at {r['target_rate']:.0f}/s"
            rows.append((label, str(r["sent"]), _fmt(r["publish_rate"], 0), str(r["received"]), str(r["stored"]),
                         str(r["lost"]), _fmt(r["received_rate"], 0), _fmt(r["stored_rate"], 0),
                         _fmt(r["received_rate_while_publishing"], 0), _fmt(r["drain_rate_after_publishing"], 0)))
        _table(hdr, rows)
        for key in ("blast", "paced"):
            r = I[key]
            ok = r["lost"] == 0 and r["stored"] == r["sent"]
            print(f"   {key}: none lost: {'YES' if ok else 'NO (' + str(r['lost']) + ' of ' + str(r['sent']) + ')'}"
                  + (f"; publish() refused {r['publish_refused']} times ('{r['publish_refused_error']}'), retried"
                     if r.get("publish_refused") else ""))


def _table(hdr, rows) -> None:
    w = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(hdr)]
    print("   " + "  ".join(str(h).ljust(w[i]) for i, h in enumerate(hdr)))
    for r in rows:
        print("   " + "  ".join(r[i].ljust(w[i]) for i in range(len(hdr))))


# ================================================================================================ main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_blast":
        return _blast_main(argv[1:])
    if argv and argv[0] == "_node_events":
        return _node_events_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny networks, few steps (< 60 s)")
    ap.add_argument("--sections", default="cost,latency,ingest")
    ap.add_argument("--presets", default="s3,ed", help="presets of the cost section")
    ap.add_argument("--threads", default="1,2", help="torch threads of the cost section (comma list)")
    ap.add_argument("--steps", type=int, default=60, help="timed learning steps per side")
    ap.add_argument("--warmup", type=int, default=10, help="learning steps before timing")
    ap.add_argument("--chunk", type=int, default=5, help="steps per interleaved chunk")
    ap.add_argument("--n-exp", type=int, default=500, help="exploration steps (small buffer for timing)")
    ap.add_argument("--buffer-times", type=int, default=4)
    ap.add_argument("--latency-steps", type=int, default=1000)
    ap.add_argument("--latency-warmup", type=int, default=200, help="answered env_steps before timing, per pass")
    ap.add_argument("--ingest-seconds", type=float, default=5.0)
    ap.add_argument("--breakdown", action="store_true", help="also time where a graph step goes (separate pass)")
    ap.add_argument("--whatif", action="store_true", help="also time diagnostic graph variants (EventsExecutor, no "
                    "DDS weight copy to the in-process actor, both) at the first --threads value")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    ensure_private_netns()
    import torch
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    small: dict[str, Any] = {}
    if args.quick:
        args.steps, args.warmup, args.chunk = min(args.steps, 6), min(args.warmup, 2), min(args.chunk, 3)
        args.n_exp, args.latency_steps, args.ingest_seconds = min(args.n_exp, 60), min(args.latency_steps, 200), \
            min(args.ingest_seconds, 1.5)
        args.latency_warmup = min(args.latency_warmup, 10)
        threads = threads[:1]
        small = dict(hidden_dim=32, heads_per_critic=8, batch_size=16)
    res: dict[str, Any] = dict(loadavg_start=list(os.getloadavg()), machine=machine_info(), args={
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    la = res["loadavg_start"]
    print(f"bench_graph: load average {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}, ROS_DOMAIN_ID "
          f"{os.environ['ROS_DOMAIN_ID']}, private netns {_private_netns()}", flush=True)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_graph_") as d:
        tmp = Path(d)
        if "cost" in sections:
            res["cost"] = []
            for th in threads:
                for p in presets:
                    ov = dict(small, n_exp=args.n_exp, buffer_times=args.buffer_times, eval_episodes=0)
                    print(f"[cost] {p}, {th} torch thread(s) ...", flush=True)
                    c = bench_cost(p, th, args.steps, args.warmup, args.chunk, ov, args.breakdown, tmp,
                                   whatif=args.whatif and th == threads[0])
                    print(f"[cost] {p} thr {th}: headless {c['headless_s_per_step']:.4f} s/step, graph "
                          f"{c['graph_s_per_step']:.4f} s/step, overhead {c['overhead_pct']:+.1f} %", flush=True)
                    res["cost"].append(c)
        if "latency" in sections:
            print("[latency] ...", flush=True)
            res["latency"] = bench_latency(args.latency_steps, args.latency_warmup, tmp,
                                           hidden=32 if args.quick else None, whatif=args.whatif)
        if "ingest" in sections:
            print("[ingest] ...", flush=True)
            res["ingest"] = bench_ingest(args.ingest_seconds, tmp, quick=args.quick)
            if args.whatif:
                print("[ingest] what-if: learner on EventsExecutor ...", flush=True)
                res["ingest_whatif_events"] = bench_ingest(args.ingest_seconds, tmp, quick=args.quick,
                                                           events_executor=True)
    res["loadavg_end"] = list(os.getloadavg())
    res["wall_s"] = time.perf_counter() - t_all
    torch.set_num_threads(os.cpu_count() or 1)
    report(res)
    print(f"\nwall time {res['wall_s']:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1, default=str))
        print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
