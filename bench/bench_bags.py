"""Bag benchmarks: what the recorder keeps up with, and how long the analysis of a long run takes.

    python bench/bench_bags.py flood    [--rates 1000,3000,...]     recorder process vs a publisher at fixed rates
    python bench/bench_bags.py graph    [--seconds 20]               the embedded graph (realtime, default control
                                                                     rate) recording itself: dropped messages
    python bench/bench_bags.py analysis [--minutes 60 --rate 50]     write a synthetic Humanoid bag, time analyze()
    python bench/bench_bags.py all

DDS parts: run in a private network namespace (README: Tests):
    unshare -n bash -c 'ip link set lo up; . .venv/bin/activate; ROS_DOMAIN_ID=66 python bench/bench_bags.py all'
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
if os.environ.get("ROS_DISTRO", "").lower() == "humble":   # Humble predates the discovery range
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
os.environ.setdefault("ROS_DOMAIN_ID", str(30 + os.getpid() % 60))

HUMANOID_OBS, HUMANOID_ACT = 348, 17


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


# ---------------------------------------------------------------------------------------------- flood
_HARNESS = "import sys; from symphony_ros.cli import main; sys.exit(main(sys.argv[1:]))"


def _flood_level(rate: float, seconds: float, bag: Path) -> dict:
    """One recorder process (`symphony-ros record`, its default QoS per topic) against a publisher sending the
    Humanoid control-step mix (env_step, joint_states, imu, joint_commands, transitions, learner_ack) at ``rate``
    messages/s with the contract QoS. Returns published/recorded per topic."""
    import rclpy
    from sensor_msgs.msg import Imu, JointState
    from std_msgs.msg import Float64MultiArray
    from symphony_ros import contract as ct
    from symphony_ros.nodes.common import qos_profile as qos
    from symphony_ros_interfaces.msg import EnvStep, LearnerAck, Transition
    from symphony_ros.bags.reader import BagReader
    rec = subprocess.Popen([sys.executable, "-c", _HARNESS, "record", "-o", str(bag)], env=_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rclpy.init()
    try:
        node = rclpy.create_node("flood")
        spec = [("/env_step", EnvStep, qos(ct.ENV_STEP)), ("/joint_states", JointState, qos(ct.JOINT_STATES)),
                ("/imu", Imu, qos(ct.JOINT_STATES)), ("/joint_commands", Float64MultiArray, qos(ct.JOINT_COMMANDS)),
                ("/transitions", Transition, qos(ct.TRANSITIONS)), ("/learner_ack", LearnerAck, qos(ct.LEARNER_ACK))]
        pubs = [node.create_publisher(cls, name, qos) for name, cls, qos in spec]
        obs = np.random.default_rng(0).standard_normal(HUMANOID_OBS).astype(np.float32).tolist()
        act = [0.1] * HUMANOID_ACT
        msgs = [EnvStep(observation=obs), JointState(name=[f"j{i}" for i in range(HUMANOID_ACT)], position=act,
                                                     velocity=act, effort=act),
                Imu(), Float64MultiArray(data=act),
                Transition(observation=obs, action=act, next_observation=obs), LearnerAck()]
        end = time.monotonic() + 30
        while not all(p.get_subscription_count() for p in pubs):
            if time.monotonic() > end:
                raise RuntimeError("the recorder did not subscribe")
            time.sleep(0.05)
        time.sleep(0.5)
        n = int(rate * seconds)
        published = {name: 0 for name, _, _ in spec}
        t0 = time.perf_counter()
        for i in range(n):
            due = t0 + i / rate
            while time.perf_counter() < due:
                pass
            k = i % len(pubs)
            pubs[k].publish(msgs[k])
            published[spec[k][0]] += 1
        pub_s = time.perf_counter() - t0
        time.sleep(2.0)
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=60)
    finally:
        rclpy.try_shutdown()
        if rec.poll() is None:
            rec.kill()
    r = BagReader(bag)
    recorded = {t: r.topics[t].count if t in r.topics else 0 for t in published}
    return dict(rate=rate, achieved=n / pub_s, published=published, recorded=recorded,
                dropped=sum(published.values()) - sum(recorded.values()),
                bytes=sum(p.stat().st_size for p in bag.glob("*.mcap")))


def bench_flood(rates: list[float], seconds: float, out: Path) -> list[dict]:
    results = []
    for rate in rates:
        res = _flood_level(rate, seconds, out / f"flood_{int(rate)}")
        results.append(res)
        drops = {t: res["published"][t] - res["recorded"][t] for t in res["published"]
                 if res["published"][t] != res["recorded"][t]}
        print(f"flood {rate:7.0f} msg/s ({rate / 6:6.0f} Humanoid steps/s, achieved {res['achieved']:.0f}/s): "
              f"published {sum(res['published'].values())}, dropped {res['dropped']}"
              + (f" {drops}" if drops else "") + f"; {res['bytes'] / sum(res['recorded'].values()) * 6 / 1024:.1f} "
              "KiB per step", flush=True)
    return results


# ---------------------------------------------------------------------------------------------- graph
def bench_graph(seconds: float, out: Path, env: str = "Humanoid-v5", tiny: bool = True) -> dict:
    """The embedded graph in realtime mode (the sim bridge steps at the env's default control rate, 66.7 Hz for
    Humanoid), recording itself; compares what the nodes sent with what the bag holds."""
    from symphony_ros.bags.analysis import analyze
    from symphony_ros.bags.reader import BagReader
    from symphony_ros.runner import EmbeddedGraph
    overrides = dict(hidden_dim=64, heads_per_critic=16, batch_size=64, n_exp=500, buffer_times=4,
                     eval_episodes=0) if tiny else dict(eval_episodes=0)
    g = EmbeddedGraph(preset="s3", env=env, out_dir=out / "graph", device="auto", mode="async", max_steps=0,
                      overrides=overrides, record=True)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            g.spin_once(0.005)
        steps = g.steps
        actor = g.actors[0]
        sent_tr = actor.transitions_sent
        sent_cmd = actor.commands_sent
        updates = g.learner.learner.updates
        t1 = time.monotonic()
        while time.monotonic() - t1 < 0.3:     # let the recorder take what was sent before the count
            g.spin_once(0.005)
    finally:
        g.shutdown()
    bag = out / "graph" / "bag"
    r = BagReader(bag)
    res = analyze(r)
    robot = res["robots"].get("/", {})
    tm = robot.get("timing", {})
    from symphony_ros.bags.from_bag import iter_transitions
    first = next(iter_transitions(r), None)
    out_res = dict(seconds=seconds, first_transition=(first.episode, first.step) if first else None,
                   unanswered=tm.get("unanswered_steps"), transitions_missing=tm.get("transitions_missing"),
                   bridge_steps=steps, env_steps_recorded=tm.get("env_step", {}).get("count"),
                   transitions_sent=sent_tr, commands_sent=sent_cmd,
                   commands_recorded=r.topics["/joint_commands"].count if "/joint_commands" in r.topics else 0,
                   transitions_recorded=r.topics.get("/transitions").count if "/transitions" in r.topics else 0,
                   updates=updates, messages=r.message_count,
                   rate_hz=robot.get("commands", {}).get("control_rate_hz"), dropped_steps=tm.get("dropped_steps"),
                   jitter_ms=tm.get("env_step", {}).get("interval_ms", {}).get("std"))
    print(f"graph ({env}, realtime, {seconds:.0f} s, {'tiny nets' if tiny else 's3 nets'}, {updates} updates): "
          f"bridge stepped {steps}, bag env_step {out_res['env_steps_recorded']}; transitions sent {sent_tr}, "
          f"recorded {out_res['transitions_recorded']}; joint_commands sent {sent_cmd}, recorded "
          f"{out_res['commands_recorded']}; {r.message_count} messages "
          f"({r.message_count / seconds:.0f}/s); control rate {out_res['rate_hz'] or 0:.1f} Hz, jitter std "
          f"{out_res['jitter_ms'] or 0:.2f} ms, dropped steps {out_res['dropped_steps']}, unanswered steps "
          f"{out_res['unanswered']}, transitions missing {out_res['transitions_missing']}, first transition in the "
          f"bag (episode, step) {out_res['first_transition']}")
    return out_res


# ---------------------------------------------------------------------------------------------- analysis
def write_synthetic(bag: Path, minutes: float, rate: float, episode_len: int = 1000) -> int:
    """A bag shaped like a Humanoid run at ``rate`` Hz: env_step, joint_states, imu, joint_commands, transitions,
    learner_ack every step, learner_status at 1 Hz (written with the recorder's BagRecorder)."""
    from symphony_ros.bags import typestore as T
    from symphony_ros.bags.recorder import BagRecorder
    rng = np.random.default_rng(0)
    n = int(minutes * 60 * rate)
    dt = int(1e9 / rate)
    topics = {"/env_step": T.ENV_STEP, "/joint_states": T.JOINT_STATE, "/imu": T.IMU,
              "/joint_commands": T.FLOAT64_MULTI_ARRAY, "/transitions": T.TRANSITION, "/learner_ack": T.LEARNER_ACK,
              "/learner_status": T.LEARNER_STATUS}
    names = [f"joint{i}" for i in range(HUMANOID_ACT)]
    obs_pool = rng.standard_normal((64, HUMANOID_OBS)).astype(np.float32)
    ts = T.get_typestore()
    imu = T.serialize(T.make(T.IMU))
    ack = T.serialize(T.make(T.LEARNER_ACK))
    t = 1_700_000_000 * 10**9
    with BagRecorder(bag, max_bag_size=512 << 20) as rec:
        for name, ty in topics.items():
            rec.add_topic(name, ty)
        a = np.zeros(HUMANOID_ACT)
        for i in range(n):
            ep, step = divmod(i, episode_len + 1)
            obs = obs_pool[i % 64]
            jitter = int(rng.normal(0, 0.5e6))
            rec.write("/env_step", ts.serialize_cdr(T.make(T.ENV_STEP, episode=ep, step=step, observation=obs,
                                                           reward=0.0 if step == 0 else 5.0 + 0.001 * step,
                                                           truncated=step == episode_len), T.ENV_STEP), t + jitter)
            rec.write("/joint_states", ts.serialize_cdr(T.make(T.JOINT_STATE, name=names, position=a, velocity=a,
                                                               effort=a), T.JOINT_STATE), t + jitter + 1000)
            rec.write("/imu", imu, t + jitter + 2000)
            if step < episode_len:
                a = np.clip(0.7 * a + rng.normal(0, 0.5, HUMANOID_ACT), -1, 1)
                rec.write("/joint_commands", ts.serialize_cdr(T.make(T.FLOAT64_MULTI_ARRAY, data=a),
                                                              T.FLOAT64_MULTI_ARRAY), t + jitter + 1_500_000)
            if step > 0:
                rec.write("/transitions", ts.serialize_cdr(T.make(T.TRANSITION, episode=ep, step=step,
                                                                  observation=obs, action=a.astype(np.float32),
                                                                  next_observation=obs, reward=5.0),
                                                           T.TRANSITION), t + jitter + 1_600_000)
                rec.write("/learner_ack", ack, t + jitter + 1_700_000)
            if i % int(rate) == 0:
                rec.write("/learner_status", ts.serialize_cdr(T.make(T.LEARNER_STATUS, updates=3 * i,
                                                                     sigma_mean=0.5, beta_mean=0.3,
                                                                     reward_scale=5.0), T.LEARNER_STATUS), t + 10)
            t += dt
    return n


def bench_analysis(minutes: float, rate: float, out: Path, keep: bool = False) -> dict:
    from symphony_ros.bags.analysis import write_report
    bag = out / "synthetic"
    t0 = time.perf_counter()
    n = write_synthetic(bag, minutes, rate)
    write_s = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in bag.iterdir())
    t0 = time.perf_counter()
    rep = write_report([bag], out / "report")
    analyze_s = time.perf_counter() - t0
    res = rep["results"][0]
    out_res = dict(minutes=minutes, rate=rate, steps=n, messages=res["message_count"], bag_mb=size / 2**20,
                   write_s=write_s, analysis_s=res["analysis_time_s"], report_s=analyze_s)
    print(f"analysis: {minutes:g} min of {rate:g} Hz Humanoid data = {n} steps, {res['message_count']} messages, "
          f"{size / 2**20:.0f} MiB (written in {write_s:.1f} s); analyze() {res['analysis_time_s']:.1f} s, with the "
          f"HTML/JSON report {analyze_s:.1f} s")
    if not keep:
        shutil.rmtree(bag, ignore_errors=True)
    return out_res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("flood", "graph", "analysis", "all"))
    p.add_argument("--rates", default="1000,3000,6000,12000", help="flood: messages/s levels")
    p.add_argument("--level-seconds", type=float, default=3.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--full-nets", action="store_true", help="graph: the s3 network sizes (needs a GPU to keep up)")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--out", default="")
    p.add_argument("--keep", action="store_true")
    a = p.parse_args(argv)
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="bench_bags_"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        if a.what in ("flood", "all"):
            bench_flood([float(x) for x in a.rates.split(",")], a.level_seconds, out)
        if a.what in ("graph", "all"):
            bench_graph(a.seconds, out, tiny=not a.full_nets)
        if a.what in ("analysis", "all"):
            bench_analysis(a.minutes, a.rate, out, keep=a.keep)
    finally:
        if not a.out and not a.keep:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
