"""1. Seconds per environment step while learning: the headless trainer against the embedded lockstep graph.

Same preset, device (cpu), torch threads and process: (a) ``HeadlessTrainer.run`` (act, env.step, store, G updates;
no checkpoints: ``checkpoint_every`` beyond the run and ``checkpoint_at_exit=False``) and (b) ``EmbeddedGraph``
(sim_bridge, actor and learner on one executor, real DDS; the learner's periodic checkpoints off through its
``checkpoint_every_s`` parameter). Both are warmed up past exploration, then timed in interleaved chunks whose order
rotates every round, so load from other processes hits both alike. Overhead = graph / headless - 1 over the summed
chunk times; "min-chunk" = fastest graph chunk / fastest headless chunk - 1 (robust to load spikes). Also: CPU time per
step of the process and of the executor (main) thread, spin_once calls per step, the wait-set size.

``--breakdown``: a separate graph whose threads run under :class:`FunctionProfiler` (and a profiled headless pass)
shows where a step goes. ``--whatif``: diagnostic graph variants in the same interleaved run, NOT the package as
shipped: ``events_executor`` (the graph's ``executor`` argument: ``rclpy.experimental.EventsExecutor``),
``no_weights_copy`` (a node-specific remapping in the context's arguments moves the in-process actor's
``policy_weights`` subscription to an unused topic: it gets every snapshot from the learner directly and no DDS copy),
``both``.
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from .common import ENV_ID, loadavg, set_param, spin_until
from .profiler import FunctionProfiler, top

WHATIF = ("events_executor", "no_weights_copy", "both")
UNUSED_WEIGHTS_TOPIC = "/bench_graph/no_weights_copy"


class Graph:
    """An EmbeddedGraph of one variant on a context of its own (``domain_id``: several graphs at once, no
    cross-talk)."""

    def __init__(self, preset: str, overrides: dict[str, Any], out: Path, variant: str = "as_is",
                 domain_id: int | None = None) -> None:
        import rclpy
        from symphony_ros import contract
        from symphony_ros.training.embedded import EmbeddedGraph
        if out.exists():   # a learner resumes from the checkpoints it finds there: every graph starts fresh
            raise RuntimeError(f"{out} exists: each bench graph needs a fresh output directory")
        self.variant = variant
        self.context = rclpy.context.Context()
        args = None
        if variant in ("no_weights_copy", "both"):
            args = ["bench_graph", "--ros-args", "-r", f"actor:{contract.POLICY_WEIGHTS.name}:={UNUSED_WEIGHTS_TOPIC}"]
        rclpy.init(args=args, context=self.context, **({} if domain_id is None else dict(domain_id=domain_id)))
        executor = None
        if variant in ("events_executor", "both"):
            from rclpy.experimental import EventsExecutor
            executor = EventsExecutor(context=self.context)
        self.g = EmbeddedGraph(preset=preset, env=ENV_ID, out_dir=out, device="cpu", mode="lockstep",
                               overrides=overrides, context=self.context, executor=executor)
        if args is not None:
            topics = [s.topic_name for a in self.g.actors for s in a.subscriptions]
            if UNUSED_WEIGHTS_TOPIC not in topics:
                raise RuntimeError(f"the remapping of the actor's policy_weights did not take effect: {topics}")
        # no periodic checkpoints in the timed part (the parameter is read on activate)
        set_param(self.g.learner, "checkpoint_every_s", 0.0)
        self.g.learner.trigger_deactivate()
        self.g.learner.trigger_activate()
        self.engine = self.g.learner.learner
        self.spins = 0

    def warm_up(self, learning_steps: int, timeout: float = 600) -> float:
        """Spin through exploration and ``learning_steps`` learning steps; returns the seconds it took."""
        t = time.perf_counter()
        n = self.engine.config.n_exp + learning_steps
        set_param(self.g.actors[0], "learner_timeout_s", 0.0)   # paused between chunks: the learner is not dead
        if not spin_until(self.g.spin_once, lambda: self.engine.learning and self.g.steps >= n, timeout):
            raise RuntimeError(f"graph {self.variant} did not reach learning + warm-up: steps {self.g.steps}, "
                               f"stored {self.engine.stored}")
        set_param(self.g.bridges[0], "republish_s", 0.0)   # no re-publication of the env_step waiting between chunks
        return time.perf_counter() - t

    def chunk(self, n: int) -> float:
        """Seconds for ``n`` graph steps. A chunk ends quiescent: the bridge stepped inside a command callback, which
        came after the learner's ack (its worker is idle); the new env_step waits in the actor's queue."""
        target = self.g.steps + n
        t0 = time.perf_counter()
        while self.g.steps < target:
            self.g.spin_once(0.02)
            self.spins += 1
        return time.perf_counter() - t0

    def entities(self) -> dict[str, int]:
        """What the executor puts into its wait set on every spin_once (all nodes of the graph)."""
        kinds = ("subscriptions", "timers", "services", "clients", "guards", "waitables")
        return {k: sum(len(list(getattr(n, k, ()))) for n in self.g.nodes) for k in kinds}

    def close(self) -> None:
        import rclpy
        self.g.shutdown()
        rclpy.try_shutdown(context=self.context)


def headless_trainer(cfg, out: Path, warmup: int):
    from symphony_ros.training.headless import HeadlessTrainer
    return HeadlessTrainer(ENV_ID, cfg, out, max_steps=cfg.n_exp + warmup, device="cpu", seed=0, progress=False,
                           checkpoint_every=10 ** 12, checkpoint_at_exit=False)


def headless_chunk(tr, n: int) -> float:
    """Seconds for ``n`` more headless steps (each ``run()`` starts a new episode, as it did before)."""
    tr.max_steps = tr.total_steps + n
    t0 = time.perf_counter()
    tr.run()
    return time.perf_counter() - t0


def bench_cost(preset: str, threads: int, steps: int, warmup: int, chunk: int, overrides: dict[str, Any],
               breakdown: bool, tmp: Path, whatif: bool = False) -> dict[str, Any]:
    """Headless vs embedded lockstep graph, seconds per env step while learning (see the module docstring)."""
    import torch
    from symphony_ros.core.config import load_preset
    torch.set_num_threads(threads)
    cfg = load_preset(preset, overrides)
    la0 = loadavg()
    tr = headless_trainer(cfg, tmp / f"headless_{preset}_{threads}", warmup)
    t = time.perf_counter()
    tr.run()                                   # exploration + warm-up learning steps
    headless_setup = time.perf_counter() - t
    if not tr.agent.learning:
        raise RuntimeError("the headless trainer did not reach learning")
    base = int(os.environ["ROS_DOMAIN_ID"])
    variants = ["as_is", *(WHATIF if whatif else ())]
    graphs: dict[str, Graph] = {}
    setup: dict[str, float] = {}
    try:
        for i, v in enumerate(variants):
            t = time.perf_counter()
            graphs[v] = Graph(preset, overrides, tmp / f"graph_{preset}_{threads}_{v}", v,
                              None if i == 0 else (base + 17 * i) % 100)
            graphs[v].warm_up(warmup)
            setup[v] = time.perf_counter() - t
        names = ["headless", *variants]
        times: dict[str, list[float]] = {k: [] for k in names}
        cpu_main = dict.fromkeys(names, 0.0)
        cpu_proc = dict.fromkeys(names, 0.0)
        upd0 = {"headless": tr.agent.updates, **{v: g.engine.updates for v, g in graphs.items()}}
        steps0 = {v: g.g.steps for v, g in graphs.items()}
        done, r = 0, 0
        while done < steps:                    # interleaved chunks, the order rotates every round
            n = min(chunk, steps - done)
            k = r % len(names)
            for name in names[k:] + names[:k]:
                c0, p0 = time.thread_time(), time.process_time()
                times[name].append(headless_chunk(tr, n) if name == "headless" else graphs[name].chunk(n))
                cpu_main[name] += time.thread_time() - c0
                cpu_proc[name] += time.process_time() - p0
            done += n
            r += 1
        hl = sum(times["headless"]) / steps
        res: dict[str, Any] = dict(
            preset=preset, threads=threads, G=cfg.updates_per_step, steps=steps, chunk=chunk, warmup=warmup,
            overrides=overrides, headless_s_per_step=hl,
            headless_updates_per_step=(tr.agent.updates - upd0["headless"]) / steps,
            headless_cpu_ms_per_step=1e3 * cpu_proc["headless"] / steps, headless_chunks_s=times["headless"],
            headless_setup_s=headless_setup)
        out = {}
        for v, g in graphs.items():
            actor, st = g.g.actors[0], g.engine.stats()
            gr = sum(times[v]) / steps
            ratios = [a / b for a, b in zip(times[v], times["headless"])]
            out[v] = dict(
                s_per_step=gr, overhead_pct=100.0 * (gr / hl - 1.0),
                min_chunk_overhead_pct=100.0 * (min(times[v]) / min(times["headless"]) - 1.0),
                chunk_ratio_median=statistics.median(ratios), chunk_ratio_min=min(ratios),
                chunk_ratio_max=max(ratios), chunks_s=times[v],
                updates_per_step=(st.updates - upd0[v]) / (g.g.steps - steps0[v]), steps_timed=g.g.steps - steps0[v],
                main_thread_cpu_ms_per_step=1e3 * cpu_main[v] / steps,
                process_cpu_ms_per_step=1e3 * cpu_proc[v] / steps, setup_s=setup[v],
                spin_once_calls_per_step=g.spins / steps, executor_entities=g.entities(),
                executor=type(g.g.executor).__name__,
                counters=dict(safe_commands=actor.safe_commands_sent, bad_actions=actor.bad_actions,
                              weights_ignored=actor.weights_ignored, duplicates_ignored=actor.duplicates_ignored,
                              transitions_sent=actor.transitions_sent, learner_received=st.received,
                              learner_stored=st.stored))
        v0 = out["as_is"]
        res.update(graph_s_per_step=v0["s_per_step"], overhead_pct=v0["overhead_pct"],
                   min_chunk_overhead_pct=v0["min_chunk_overhead_pct"], chunk_ratio_median=v0["chunk_ratio_median"],
                   chunk_ratio_min=v0["chunk_ratio_min"], chunk_ratio_max=v0["chunk_ratio_max"],
                   graph_updates_per_step=v0["updates_per_step"], variants=out)
    finally:
        for g in graphs.values():
            g.close()
    res["breakdown"] = step_breakdown(preset, overrides, tr, warmup, min(steps, 3 * chunk),
                                      tmp / f"graph_{preset}_{threads}_breakdown") if breakdown else None
    res.update(loadavg_start=la0, loadavg_end=loadavg())
    return res


def step_breakdown(preset: str, overrides: dict[str, Any], tr, warmup: int, n: int, out: Path) -> dict[str, Any]:
    """Where a step goes: ``n`` steps of a separate graph built while :class:`FunctionProfiler` is installed for new
    threads (so the learner's worker thread is profiled too), then ``n`` headless steps of ``tr``, profiled."""
    prof = FunctionProfiler()
    prof.install_for_new_threads()
    try:
        g = Graph(preset, overrides, out, "as_is")
    finally:
        prof.uninstall_for_new_threads()
    try:
        g.warm_up(warmup)
        spins0 = g.spins
        prof.start()
        try:
            t0 = time.perf_counter()
            g.chunk(n)
            wall = time.perf_counter() - t0
        finally:
            prof.stop()
        items = prof.items(n)
        spins = (g.spins - spins0) / n
    finally:
        g.close()
    hprof = FunctionProfiler()
    hprof.start()
    try:
        hwall = headless_chunk(tr, n)
    finally:
        hprof.stop()
    return dict(steps=n, method="sys.setprofile + threading.setprofile (bench/graph/profiler.py), inclusive times",
                wall_ms_per_step=1e3 * wall / n, spin_once_calls_per_step=spins, items=top(items, 40),
                headless_wall_ms_per_step=1e3 * hwall / n, headless_items=top(hprof.items(n), 25))
