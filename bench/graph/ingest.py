"""3. Learner ingest: how many transitions per second a learner process stores, and whether it loses any.

A learner process (``python -m symphony_ros.nodes.learner``: S3, async, n_exp larger than the stream, so it stays in
exploration and only stores and acknowledges) and a publisher process (:func:`blast_main`) sending Humanoid-size
Transition messages for ``--ingest-seconds``: first as fast as it can, then paced at 80 % of the learner's measured
rate. ``learner_status`` (20 Hz) gives the counts; the check is received == stored == sent. ``--whatif``: the same
LearnerNode spun by EventsExecutor (:func:`common.events_main`).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import ACT, ENTRY, OBS, loadavg, node_env, py_spy_dump, start_node, stop


def blast_main(argv: list[str]) -> int:
    """Publisher process: Transition messages of Humanoid size for --seconds, as fast as possible (--rate 0) or paced
    at --rate per second, after the learner's subscription matched. A publish() that the reliable writer refuses
    (its history full of unacknowledged samples) is counted and retried. Waits until all are acknowledged, prints a
    JSON line with the counts."""
    import numpy as np
    import rclpy
    from rclpy.duration import Duration
    from rclpy.impl.implementation_singleton import rclpy_implementation as rclpy_impl
    from symphony_ros import contract
    from symphony_ros.nodes.common import f32_array, qos_profile, set_stamp
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
    pool = [(f32_array(rng.standard_normal(OBS, dtype=np.float32)), f32_array(rng.uniform(-1, 1, ACT)))
            for _ in range(64)]
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
        set_stamp(msg.header, time.time_ns())
        msg.episode, msg.step = sent // 1000, sent % 1000
        msg.observation, msg.action, msg.next_observation = o, act, o2
        msg.reward = 0.5
        msg.terminated = msg.truncated = False
        try:
            pub.publish(msg)
        except rclpy_impl.RCLError as exc:   # reliable writer history full of unacknowledged samples: retry
            refused += 1
            refused_msg = str(exc).splitlines()[0][:200]
            time.sleep(0.001)
            continue
        sent += 1
    t_pub = time.perf_counter() - t0
    t_end_wall = time.time()
    acked = pub.wait_for_all_acked(Duration(seconds=60))
    print(json.dumps(dict(sent=sent, refused=refused, refused_error=refused_msg, publish_s=t_pub, acked=bool(acked),
                          acked_s=time.perf_counter() - t0, t_start_wall=t_start_wall, t_end_wall=t_end_wall)),
          flush=True)
    time.sleep(0.5)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def stream(ex, status: list, seconds: float, rate: float, max_n: int, log: Path) -> dict[str, Any]:
    """One publisher process run against the running learner; counts are deltas over this run."""
    m0 = status[-1][1]
    r0, s0, j0 = m0.transitions_received, m0.transitions_stored, m0.transitions_rejected
    n_status0 = len(status)
    with open(log, "ab") as err:
        blaster = subprocess.Popen([sys.executable, str(ENTRY), "_blast", "--seconds", str(seconds), "--rate",
                                    str(rate), "--max", str(max_n)], env=node_env(), stdout=subprocess.PIPE,
                                   stderr=err, text=True)
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
        return next((t for t, m in run if getattr(m, attr) - base >= n), None)

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


def bench_ingest(seconds: float, tmp: Path, preset: str = "s3", quick: bool = False,
                 events_executor: bool = False) -> dict[str, Any]:
    """Learner process (async, exploration) against a publisher process: as fast as possible, then paced below
    the learner's measured rate."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from symphony_ros import contract
    from symphony_ros.core.config import config_dir
    from symphony_ros.graph import NodeSpec
    from symphony_ros.nodes.common import qos_profile
    from symphony_ros_interfaces.msg import LearnerStatus
    la0 = loadavg()
    n_exp = 50_000 if quick else 200_000      # more than both streams: the learner stays in exploration
    sym = {"symphony.n_exp": n_exp, "symphony.buffer_times": 1}
    if quick:
        sym.update({"symphony.hidden_dim": 32, "symphony.heads_per_critic": 8, "symphony.batch_size": 16})
    spec = NodeSpec("learner", "learner", "", config_dir() / "learner.yaml",
                    dict(preset=preset, mode="async", device="cpu", obs_dim=OBS, act_dim=ACT, checkpoint_dir="",
                         status_rate_hz=20.0, seed=0, **sym))
    log_path = tmp / f"ingest_learner{'_events' if events_executor else ''}.log"
    learner = start_node(spec, log_path, events_executor=events_executor)
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
                               + (py_spy_dump(learner.pid) if learner.poll() is None else ""))
        cap = int(status[-1][1].buffer_capacity)
        blast = stream(ex, status, seconds, 0.0, cap // 2, tmp / "ingest_blast.log")
        cap_rate = blast["drain_rate_after_publishing"] or blast["received_rate"] or 1000.0
        cap_rate = min(cap_rate, blast["received_rate_while_publishing"] or cap_rate)
        paced_rate = round(0.8 * cap_rate, -1) or 100.0
        left = cap - int(status[-1][1].transitions_stored) - 10
        paced = stream(ex, status, seconds, paced_rate, max(1, left), tmp / "ingest_paced.log")
        ex.shutdown()
        node.destroy_node()
    finally:
        stop([learner])
        rclpy.try_shutdown(context=ctx)
    executor = "EventsExecutor (what-if harness)" if events_executor else \
        "SingleThreadedExecutor (symphony_ros.nodes.learner)"
    return dict(preset=preset, mode="async", executor=executor, n_exp=n_exp, buffer_capacity=cap, seconds=seconds,
                status_period_s=0.05, transitions_qos_depth=contract.TRANSITIONS.qos.depth, blast=blast,
                paced=paced, loadavg_start=la0, loadavg_end=loadavg())
