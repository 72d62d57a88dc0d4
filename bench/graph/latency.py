"""2. env_step -> joint_commands round trip, as the sim bridge sees it.

This process plays the bridge (a real gymnasium Humanoid-v5 env, observations 348, actuators 17) and publishes
EnvStep; the ED actor (policy file exported from a fresh ED actor, mode async, simulation true, no learner) runs in its
own process (``python -m symphony_ros.nodes.actor``); the figure is the time from publish to the arrival of the
command. A second pass also subscribes the actor's Transitions (as a learner does) and splits the round trip at the
Transition's stamp. Also: the actor in this process on one executor (the embedded graph's arrangement) with a
profiled pass (:class:`FunctionProfiler`), and the bare actor forward. ``--whatif``: the actor process on
EventsExecutor.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .common import ACT, ENV_ID, OBS, lat_stats, loadavg, start_node, stop
from .profiler import FunctionProfiler, top


def export_ed_actor(path: Path, hidden: int | None = None) -> Path:
    import torch
    from symphony_ros.core.config import load_preset
    from symphony_ros.core.policy import build_actor, export_actor
    cfg = load_preset("ed", {"hidden_dim": hidden} if hidden else None)
    torch.manual_seed(0)
    return export_actor(path, build_actor(OBS, ACT, cfg), cfg, version=1)


def actor_spec(policy_file: Path):
    from symphony_ros.core.config import config_dir
    from symphony_ros.graph import NodeSpec
    # obs_timeout_s: the async watchdog would otherwise send unsolicited safe commands before the first env_step
    return NodeSpec("actor", "actor", "", config_dir() / "actor.yaml",
                    dict(preset="ed", mode="async", simulation=True, policy_file=str(policy_file), seed=0,
                         obs_timeout_s=3600.0))


class BridgeProbe:
    """Plays the sim bridge: a real Humanoid-v5 env, EnvStep out, joint_commands in, one command per env_step.
    ``split``: also takes the actor's Transitions (raw CDR, deserialised after the run); their header stamp is the
    actor's wall clock inside its env_step callback, before the policy forward and the command publish."""

    def __init__(self, context, split: bool = False) -> None:
        import rclpy
        from std_msgs.msg import Float64MultiArray
        from symphony_ros import contract
        from symphony_ros.envs.gym_env import make_env
        from symphony_ros.nodes.common import qos_profile
        from symphony_ros_interfaces.msg import EnvStep, Transition
        self.node = rclpy.create_node("bench_bridge", context=context)
        self.pub = self.node.create_publisher(EnvStep, contract.ENV_STEP.name, qos_profile(contract.ENV_STEP))
        self.got: list[tuple[float, Any]] = []
        self.cmd_sub = self.node.create_subscription(
            Float64MultiArray, contract.JOINT_COMMANDS.name, lambda m: self.got.append((time.perf_counter(), m)),
            qos_profile(contract.JOINT_COMMANDS))
        self.env = make_env(ENV_ID, episode_limit=1000, seed=0)
        self.EnvStep = EnvStep
        self.episode = -1
        self.raw_transitions: list[bytes] = []
        self.sent_stamps: dict[tuple[int, int], tuple[int, float]] = {}
        if split:
            self.node.create_subscription(Transition, contract.TRANSITIONS.name, self.raw_transitions.append,
                                          qos_profile(contract.TRANSITIONS), raw=True)

    def reset(self):
        import numpy as np
        self.episode += 1
        obs, _ = self.env.reset(seed=self.episode)
        return np.asarray(obs, np.float32), 0.0, False, False, 0

    def run(self, executor, steps: int, warmup: int, timeout_s: float = 5.0) -> list[float]:
        """``warmup`` + ``steps`` answered env_steps; returns the round trips (s) of the last ``steps``."""
        import numpy as np
        from symphony_ros.nodes.common import f32_array, set_stamp
        lat: list[float] = []
        obs, rew, term, trunc, k = self.reset()
        answered = 0
        while answered < warmup + steps:
            msg = self.EnvStep()
            stamp = time.time_ns()
            set_stamp(msg.header, stamp)
            msg.episode, msg.step = self.episode, k
            msg.observation = f32_array(obs)
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
        while time.monotonic() < deadline:
            if self.pub.get_subscription_count() >= 1 and self.cmd_sub.get_publisher_count() >= 1:
                return True
            executor.spin_once(timeout_sec=0.05)
        return False


def cross_process(spec, steps: int, warmup: int, tmp: Path, events: bool, split: bool) -> dict[str, Any]:
    """The actor in its own process (``events``: the what-if harness on EventsExecutor); this process plays the
    bridge. Returns the round-trip statistics (+ the pass with the Transitions subscribed when ``split``)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    log = tmp / ("latency_actor_events.log" if events else "latency_actor.log")
    proc = start_node(spec, log, events_executor=events)
    out: dict[str, Any] = {}
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    try:
        for with_tr in ([False, True] if split else [False]):
            probe = BridgeProbe(ctx, split=with_tr)
            ex = SingleThreadedExecutor(context=ctx)
            ex.add_node(probe.node)
            if not probe.wait_matched(ex, 60.0):
                raise RuntimeError("actor process did not match: " + log.read_text()[-2000:])
            time.sleep(0.5)      # let the actor finish activation after discovery
            lat = probe.run(ex, steps, warmup)
            if not with_tr:
                out["round_trip"] = lat_stats(lat)
                out["samples_ms"] = [round(v * 1e3, 4) for v in lat]
            else:
                sp = probe.split()
                out["with_transitions"] = lat_stats(lat)
                if sp["inbound"]:
                    out["split_inbound"] = lat_stats(sp["inbound"])
                    out["split_rest"] = lat_stats(sp["rest"])
            ex.shutdown()
            probe.node.destroy_node()
    finally:
        stop([proc])
        rclpy.try_shutdown(context=ctx)
    return out


def actor_forward(policy: Path, steps: int) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The bare network forward (as ActorPolicy.act runs it, 1 torch thread like the actor's main()), and
    ActorPolicy.act (forward + numpy conversion), per call."""
    import numpy as np
    import torch
    from symphony_ros.core.policy import ActorPolicy, load_actor_file
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
    pol, xn, pa = ActorPolicy(actor, seed=0), np.random.default_rng(0).standard_normal(OBS).astype(np.float32), []
    for i in range(steps + 50):
        t = time.perf_counter()
        pol.act(xn, act_gain=1.0, noise_gain=1.0)
        if i >= 50:
            pa.append(time.perf_counter() - t)
    return lat_stats(fw), lat_stats(pa), actor.hidden


def in_process(spec, steps: int, warmup: int) -> dict[str, Any]:
    """The actor node in this process, on one executor with the probe (the embedded graph's arrangement); then a
    profiled pass of up to 300 steps: where the actor's time goes per answered env_step."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from symphony_ros.nodes.actor import ActorNode
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    try:
        node = ActorNode(cli_args=spec.ros_args(), context=ctx)
        probe = BridgeProbe(ctx)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        ex.add_node(probe.node)
        if not probe.wait_matched(ex, 30.0):
            raise RuntimeError("in-process actor did not match")
        out = dict(in_process=lat_stats(probe.run(ex, steps, warmup)))
        n_bd = min(steps, 300)
        prof = FunctionProfiler()
        prof.start()
        try:
            probe.run(ex, n_bd, 0)
        finally:
            prof.stop()
        out["in_process_breakdown"] = {k.rsplit(" [", 1)[0]: v for k, v in top(prof.items(n_bd), 20).items()}
        out["in_process_breakdown_wall_ms_per_step"] = 1e3 * prof.wall_s / n_bd
        ex.shutdown()
        node.destroy_node()
        probe.node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
    return out


def bench_latency(steps: int, warmup: int, tmp: Path, hidden: int | None = None,
                  whatif: bool = False) -> dict[str, Any]:
    import torch
    la0 = loadavg()
    policy = export_ed_actor(tmp / "ed_actor.pt", hidden)
    spec = actor_spec(policy)
    out: dict[str, Any] = dict(preset="ed", obs=OBS, act=ACT, steps=steps, warmup=warmup, policy_file=str(policy))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out["actor_forward"], out["actor_policy_act"], out["actor_hidden"] = actor_forward(policy, steps)
        cp = cross_process(spec, steps, warmup, tmp, events=False, split=True)
        out["cross_process"] = cp["round_trip"]
        out["cross_process_samples_ms"] = cp["samples_ms"]
        for k in ("with_transitions", "split_inbound", "split_rest"):
            if k in cp:
                out[("cross_process_" if k == "with_transitions" else "") + k] = cp[k]
        if whatif:
            out["whatif_cross_process_events_actor"] = cross_process(spec, steps, warmup, tmp, events=True,
                                                                     split=False)["round_trip"]
        out.update(in_process(spec, steps, warmup))
    finally:
        torch.set_num_threads(old_threads)
    out["loadavg_start"], out["loadavg_end"] = la0, loadavg()
    return out
