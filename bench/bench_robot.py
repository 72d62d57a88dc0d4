#!/usr/bin/env python3
"""The robot path, measured: the graph of `symphony-ros train --robot ... --sim` (simulated driver + task node + actor
in one process, the learner in its own) on the shipped descriptions, watched from outside by an observer node.

Parts (``--parts``, default all):

* ``reward``: humanoid_walk computed from the driver's view (torso odometry, the command) against gymnasium's
  Humanoid-v5 reward on the SAME trajectories (gymnasium's own step; random and zero actions): per-step difference,
  its decomposition (torso vs centre-of-mass velocity, gymnasium's contact cost), fall agreement. No ROS.
* ``pendulum``: inverted_pendulum + pendulum_balance in real time (50 Hz), a small ED: the training-episode curve.
* ``humanoid``: mujoco_humanoid + humanoid_walk in real time (66.7 Hz), ED scaled down for the CPU: the curve for as
  long as ``--humanoid-minutes`` allows.

For the real-time parts the observer (its own process, the bench) records when each joint_states, env_step and
controller command arrives: the rates held, and the latency from a joint_states to the next command on the
controller topic (p50/p99, both seen by the same observer, so transport is counted once each way).

    python bench/bench_robot.py                      # ~15 min: reward, 4 min pendulum, 8 min humanoid
    python bench/bench_robot.py --quick              # ~2 min smoke run
Writes bench/results/robot_cpu.json and .txt (and the episodes.csv of each run next to them).
Network hygiene: re-runs itself inside `unshare -n` when it can; LOCALHOST discovery; its own ROS_DOMAIN_ID.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
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
RESULTS = ROOT / "bench" / "results"
PENDULUM_SET = ["hidden_dim=64", "heads_per_critic=16", "batch_size=48", "lr=1e-3", "n_exp=500", "buffer_times=5"]
HUMANOID_SET = ["hidden_dim=128", "heads_per_critic=32", "batch_size=96", "n_exp=2000", "buffer_times=10"]


def _reexec_in_netns() -> None:
    if os.environ.get("SYMPHONY_BENCH_NETNS") == "1" or shutil.which("unshare") is None:
        return
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        print("note: cannot create a network namespace; DDS stays on loopback by discovery range only",
              file=sys.stderr)
        return
    env = dict(os.environ, SYMPHONY_BENCH_NETNS="1")
    cmd = ["unshare", "-n", "bash", "-c", 'ip link set lo up && exec "$@"', "bash", sys.executable, *sys.argv]
    sys.exit(subprocess.run(cmd, env=env).returncode)


# ============================================================================================= reward comparison
def reward_comparison(episodes: int, seed: int) -> dict:
    from symphony_ros.envs.bridge import MujocoBridge
    from symphony_ros.robot.description import load_description
    from symphony_ros.robot.mujoco_robot import MujocoRobot
    from symphony_ros.tasks import RobotState, load_task
    from symphony_ros.tasks.base import Odometry
    d = load_description("mujoco_humanoid")
    task = load_task("humanoid_walk", d)
    out = {}
    for policy in ("random", "zero"):
        bridge = MujocoBridge("Humanoid-v5", action_mode="rescale", seed=seed)
        robot = MujocoRobot(d, env=bridge.env)
        rng = np.random.default_rng(seed)
        ours, gym, dv, contact, agree, steps = [], [], [], [], 0, 0
        for ep in range(episodes):
            bridge.reset(seed=seed + ep)
            for _ in range(1000):
                a = rng.uniform(-1, 1, 17) if policy == "random" else np.zeros(17)
                command = bridge.mapping(a)
                _, r, terminated, truncated, info = bridge.env.step(command)
                o = robot.odometry()
                st = RobotState(0, np.zeros(17), np.zeros(17), np.zeros(17),
                                odometry=Odometry(o.position, o.orientation_xyzw, o.linear_velocity,
                                                  o.angular_velocity))
                ours.append(task.reward(st, st, command))
                gym.append(float(r))
                dv.append(float(st.base_linear_velocity[0]) - float(info["x_velocity"]))
                contact.append(-float(info["reward_contact"]))
                agree += int(task.fallen(st)[0] == terminated)
                steps += 1
                if terminated or truncated:
                    break
        bridge.close()
        ours_a, gym_a, diff = np.array(ours), np.array(gym), np.array(ours) - np.array(gym)
        out[policy] = dict(
            episodes=episodes, steps=steps, reward_ours_mean=float(ours_a.mean()), reward_gym_mean=float(gym_a.mean()),
            diff_mean=float(diff.mean()), diff_abs_mean=float(np.abs(diff).mean()),
            diff_abs_p99=float(np.percentile(np.abs(diff), 99)),
            correlation=float(np.corrcoef(ours_a, gym_a)[0, 1]) if ours_a.std() > 0 and gym_a.std() > 0 else None,
            velocity_term_diff_mean=float(1.25 * np.mean(dv)), velocity_term_diff_std=float(1.25 * np.std(dv)),
            contact_cost_mean=float(np.mean(contact)),
            explained_max_residual=float(np.abs(diff - (1.25 * np.array(dv) + np.array(contact))).max()),
            fall_agreement=agree / steps)
    return out


# ============================================================================================= real-time runs
class Observer:
    """Its own rclpy context: arrival times of joint_states, env_step and the controller's commands."""

    def __init__(self, controller_topic: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from symphony_ros_interfaces.msg import EnvStep

        from symphony_ros import contract as C
        from symphony_ros.nodes.common import qos_profile
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node("bench_robot_observer", context=self.ctx)
        self.js: list[float] = []
        self.env: list[float] = []
        self.cmd: list[float] = []
        now = time.perf_counter
        self.node.create_subscription(JointState, "/joint_states", lambda m: self.js.append(now()),
                                      qos_profile(C.JOINT_STATES))
        self.node.create_subscription(EnvStep, "/" + C.ENV_STEP.name, lambda m: self.env.append(now()),
                                      qos_profile(C.ENV_STEP))
        self.node.create_subscription(Float64MultiArray, "/" + controller_topic, lambda m: self.cmd.append(now()),
                                      qos_profile(C.JOINT_COMMANDS))
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ex.spin_once(timeout_sec=0.02)

    def close(self) -> None:
        import rclpy
        self.ex.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)

    def figures(self, rate_hz: float, t_from: float) -> dict:
        js = np.array([t for t in self.js if t >= t_from])
        env = np.array([t for t in self.env if t >= t_from])
        cmd = np.array([t for t in self.cmd if t >= t_from])
        out: dict = dict(rate_hz=rate_hz)
        for name, t in (("joint_states", js), ("env_step", env), ("commands", cmd)):
            span = t[-1] - t[0] if t.size > 1 else float("nan")
            out[f"{name}_hz"] = float((t.size - 1) / span) if t.size > 1 else 0.0
        if js.size > 1:
            gaps = np.diff(js) * 1e3
            out["joint_states_gap_ms_p50"], out["joint_states_gap_ms_p99"] = map(float, np.percentile(gaps, [50, 99]))
            out["joint_states_gaps_over_1_5_periods"] = int((gaps > 1.5e3 / rate_hz).sum())
        # latency: each joint_states that became an env step (one arrived before the next joint_states; between
        # episodes the task node publishes none) to the first command after it, before the next joint_states
        lat, stepped = [], 0
        if js.size > 1 and cmd.size and env.size:
            ci, ei = np.searchsorted(cmd, js), np.searchsorted(env, js)
            for k in range(js.size - 1):
                if not (ei[k] < env.size and env[ei[k]] < js[k + 1]):
                    continue
                stepped += 1
                i = ci[k]
                if i < cmd.size and cmd[i] < js[k + 1]:
                    lat.append((cmd[i] - js[k]) * 1e3)
        lat_a = np.array(lat)
        out["stepped_share"] = float(stepped / max(1, js.size - 1))
        out["answered_share"] = float(lat_a.size / max(1, stepped))
        if lat_a.size:
            out["latency_ms_p50"], out["latency_ms_p99"], out["latency_ms_max"] = \
                map(float, np.percentile(lat_a, [50, 99, 100]))
        return out


def _episodes(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except OSError:
        return []


def realtime_run(name: str, robot: str, task: str, sets: list[str], minutes: float, domain: int,
                 episode_time: float) -> dict:
    from symphony_ros.robot.description import load_description
    d = load_description(robot)
    out_dir = Path(tempfile.mkdtemp(prefix=f"bench_robot_{name}_"))
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "symphony_ros.cli", "train", "--robot", robot, "--task", task, "--sim",
           "--preset", "ed", "--device", "cpu", "--out", str(out_dir), "--no-progress", "--soft-start", "0",
           "--safe-ramp", "0", "--recovery-delay", "0.1", "--episode-time", str(episode_time), "--seed", "1"]
    for s in sets:
        cmd += ["--set", s]
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    obs = Observer(d.controller_topic)
    log = open(out_dir / "run.log", "wb")
    t_start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    load0 = os.getloadavg()
    try:
        obs.spin_for(minutes * 60)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
        obs_fig = obs.figures(d.control_rate_hz, t_start + 10.0)   # after start-up
        obs.close()
        log.close()
    rows = _episodes(out_dir / "episodes.csv")
    returns = np.array([r["return"] for r in rows])
    k = min(10, len(returns))
    mean10 = np.convolve(returns, np.ones(k) / k, mode="valid") if k else np.array([])
    dest = RESULTS / f"robot_{name}_cpu_episodes.csv"
    if (out_dir / "episodes.csv").exists():
        shutil.copy(out_dir / "episodes.csv", dest)
    text = (out_dir / "run.log").read_text(errors="replace")
    verdicts = [ln.split("]: ", 1)[-1] for ln in text.splitlines() if "holds " in ln or "CANNOT" in ln
                or "keeping up" in ln]
    return dict(date=time.strftime("%Y-%m-%d %H:%M"), robot=robot, task=task, minutes=minutes, sets=sets,
                episode_time_s=episode_time,
                episodes=len(rows), stored=int(rows[-1]["steps_stored"]) if rows else 0,
                updates=int(rows[-1]["updates"]) if rows else 0,
                first10_mean=float(returns[:10].mean()) if len(returns) else None,
                last10_mean=float(returns[-10:].mean()) if len(returns) else None,
                best10_mean=float(mean10.max()) if mean10.size else None,
                curve=[(int(r["steps_stored"]), round(r["return"], 1), round(r["wall_time_s"], 1))
                       for r in rows[:: max(1, len(rows) // 40)]],
                observer=obs_fig, verdicts=verdicts[:4], load_before=load0, load_after=os.getloadavg(),
                episodes_csv=str(dest.relative_to(ROOT)), exit_code=proc.returncode)


# ============================================================================================= main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="reward,pendulum,humanoid")
    ap.add_argument("--pendulum-minutes", type=float, default=4.0)
    ap.add_argument("--humanoid-minutes", type=float, default=8.0)
    ap.add_argument("--reward-episodes", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="1 min per real-time part, 2 reward episodes")
    ap.add_argument("--json", default=str(RESULTS / "robot_cpu.json"))
    args = ap.parse_args()
    _reexec_in_netns()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("MUJOCO_GL", "disable")
    if args.quick:
        args.pendulum_minutes = args.humanoid_minutes = 1.0
        args.reward_episodes = 2
    domain = int(os.environ.get("ROS_DOMAIN_ID", str(30 + os.getpid() % 60)))
    parts = args.parts.split(",")
    prev = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    res: dict = dict(machine=dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                                  load_at_start=os.getloadavg()), date=time.strftime("%Y-%m-%d %H:%M"))
    if "reward" in parts:
        res["reward"] = reward_comparison(args.reward_episodes, seed=7)
        print(json.dumps(res["reward"], indent=1))
    if "pendulum" in parts:
        res["pendulum"] = realtime_run("pendulum", "inverted_pendulum", "pendulum_balance", PENDULUM_SET,
                                       args.pendulum_minutes, domain, 20.0)
        print(json.dumps({k: v for k, v in res["pendulum"].items() if k != "curve"}, indent=1))
    if "humanoid" in parts:
        res["humanoid"] = realtime_run("humanoid", "mujoco_humanoid", "humanoid_walk", HUMANOID_SET,
                                       args.humanoid_minutes, (domain + 1) % 100, 15.0)
        print(json.dumps({k: v for k, v in res["humanoid"].items() if k != "curve"}, indent=1))
    for part in ("reward", "pendulum", "humanoid"):   # parts not run this time keep their last figures
        if part not in res and part in prev:
            res[part] = prev[part]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"bench_robot {res['date']} ({res['machine']['cpus']} cores, load at start "
             f"{res['machine']['load_at_start'][0]:.2f})"]
    for part in ("pendulum", "humanoid"):
        if part in res:
            r, o = res[part], res[part]["observer"]
            lines.append(f"{part} ({r.get('date', res['date'])}): {r['minutes']:g} min, {r['episodes']} episodes, "
                         f"{r['stored']} stored, "
                         f"{r['updates']} updates; return first10 {r['first10_mean']} last10 {r['last10_mean']} "
                         f"best10 {r['best10_mean']}; joint_states {o.get('joint_states_hz', 0):.1f} Hz of "
                         f"{o['rate_hz']:.1f}, commands {o.get('commands_hz', 0):.1f} Hz, joint_states->command "
                         f"p50 {o.get('latency_ms_p50', float('nan')):.2f} / p99 "
                         f"{o.get('latency_ms_p99', float('nan')):.2f} ms ({o['answered_share']:.0%} of stepped "
                         f"states answered before the next one); load "
                         f"{r['load_before'][0]:.2f} -> {r['load_after'][0]:.2f}")
    if "reward" in res:
        for pol, r in res["reward"].items():
            lines.append(f"reward ({pol} actions, {r['steps']} steps): ours {r['reward_ours_mean']:.3f} vs gymnasium "
                         f"{r['reward_gym_mean']:.3f} per step, |diff| mean {r['diff_abs_mean']:.3f} p99 "
                         f"{r['diff_abs_p99']:.3f}, correlation {r['correlation']}; velocity term (torso vs COM) "
                         f"{r['velocity_term_diff_mean']:+.3f} ± {r['velocity_term_diff_std']:.3f}, contact cost "
                         f"{r['contact_cost_mean']:.4f}; unexplained {r['explained_max_residual']:.1e}; falls agree "
                         f"{r['fall_agreement']:.1%}")
    Path(args.json).with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
