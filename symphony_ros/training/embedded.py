"""Embedded front-end: ``symphony-ros train`` runs the training graph (sim bridge(s), actor(s), learner, optional
recorder) in ONE process on one executor, over real DDS, with no launch_ros and no ROS install beyond the pip extra.

It builds exactly the nodes the launch file starts (both call :func:`symphony_ros.graph.build_graph`), hands them the
config resolved once, shares the learner's weights with the in-process actors directly (the ``policy_weights`` topic
still serves any other actor), shows the progress bar, evaluates the current actor noise-free when the loop rules say
so (:class:`~symphony_ros.training.evaluation.Evaluator`; the lockstep graph waits meanwhile), and at exit writes a
checkpoint, ``evaluations.csv`` and ``learning_curve.png``.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import SymphonyConfig, load_preset
from ..core.policy import ActorPolicy, actor_from_layout, load_flat_actor
from ..graph import build_graph
from .evaluation import Evaluator
from .progress import ProgressReporter
from .session import StopFlag


class StartupError(RuntimeError):
    """A node of the embedded graph could not start; the message names it and says why (one line)."""

log = logging.getLogger(__name__)


def _node_class(executable: str):
    if executable == "sim_bridge":
        from ..nodes.sim_bridge import SimBridgeNode
        return SimBridgeNode
    if executable == "actor":
        from ..nodes.actor import ActorNode
        return ActorNode
    if executable == "learner":
        from ..nodes.learner import LearnerNode
        return LearnerNode
    if executable == "recorder":
        from ..nodes.recorder import RecorderNode
        return RecorderNode
    if executable == "task":
        from ..nodes.task import TaskNode
        return TaskNode
    if executable == "mujoco_driver":
        from ..nodes.mujoco_driver import MujocoDriverNode
        return MujocoDriverNode
    raise ValueError(f"unknown node executable '{executable}'")


class EmbeddedGraph:
    """The graph's nodes in one process. The constructor creates them; ``spin_once()`` advances the executor.
    ``config`` (resolved once by the caller) wins over ``preset`` + ``overrides``. ``executor``: an rclpy executor
    created on ``context`` to spin the nodes on (default: a SingleThreadedExecutor; bench/bench_graph.py tries
    ``rclpy.experimental.EventsExecutor``). ``specs``: a graph built by the caller (the robot graph,
    :func:`symphony_ros.graph.build_robot_graph`) instead of the sim graph from ``env``."""

    def __init__(self, *, env: str = "Humanoid-v5", out_dir: str | Path, preset: str = "s3",
                 config: SymphonyConfig | None = None, device: str = "auto", mode: str = "lockstep",
                 max_steps: int = 0, robots: int = 1, seed: int = 0, overrides: dict[str, Any] | None = None,
                 record: bool = False, from_bag: list[str] | None = None, action_mode: str = "paper",
                 recorder_parameters: dict[str, Any] | None = None, context=None, executor=None,
                 specs: list | None = None) -> None:
        import rclpy
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.config = config if config is not None else load_preset(preset, overrides)
        self.specs = specs if specs is not None else build_graph(
            config=self.config, preset=preset, env=env, device=device, mode=mode, max_steps=max_steps, robots=robots,
            checkpoint_dir=str(self.out / "checkpoints"), record=record, bag_dir=str(self.out / "bag"), seed=seed,
            overrides=overrides, from_bag=from_bag, action_mode=action_mode, recorder_parameters=recorder_parameters)
        self.context = context
        self._owns_context = context is None
        if context is None:
            self.context = rclpy.context.Context()
            rclpy.init(context=self.context)
        from rclpy.executors import SingleThreadedExecutor
        self.executor = executor if executor is not None else SingleThreadedExecutor(context=self.context)
        self.nodes = []
        try:
            for s in self.specs:
                cls = _node_class(s.executable)
                extra = dict(config=self.config) if s.executable in ("actor", "learner") else {}
                node = cls(cli_args=s.ros_args(), namespace=s.namespace or None, context=self.context, **extra)
                self.nodes.append(node)
                self.executor.add_node(node)
                error = getattr(node, "startup_error", None)
                if error:
                    raise StartupError(f"{s.namespace or ''}/{s.name}: {error}")
        except BaseException:
            self.shutdown()
            raise
        self.bridges = [n for s, n in zip(self.specs, self.nodes) if s.executable == "sim_bridge"]
        self.tasks = [n for s, n in zip(self.specs, self.nodes) if s.executable == "task"]
        self.actors = [n for s, n in zip(self.specs, self.nodes) if s.executable == "actor"]
        self.learner = next((n for s, n in zip(self.specs, self.nodes) if s.executable == "learner"), None)
        self.recorder = next((n for s, n in zip(self.specs, self.nodes) if s.executable == "recorder"), None)
        self._weights_lock = threading.Lock()
        self.latest_weights: tuple[int, str, np.ndarray] | None = None

        def share(version: int, layout: str, data: np.ndarray) -> None:
            with self._weights_lock:
                self.latest_weights = (version, layout, data)
            engine = self.learner.learner
            for actor in self.actors:
                actor.set_weights(version, layout, data, learner_id=engine.learner_id if engine else "")
        if self.learner is not None:   # else the actors get policy_weights over DDS (a learner in another process)
            self.learner.set_weights_listener(share)

    def spin_once(self, timeout_s: float = 0.05) -> None:
        self.executor.spin_once(timeout_sec=timeout_s)

    @property
    def steps(self) -> int:
        """Env steps: the sim bridges' steps, or the task nodes' published steps (robot graph)."""
        return sum(b.steps for b in self.bridges) + sum(t.engine.n.steps for t in self.tasks if t.engine)

    def weights(self) -> tuple[int, str, np.ndarray] | None:
        with self._weights_lock:
            return self.latest_weights

    def shutdown(self) -> None:
        import rclpy
        for node in reversed(self.nodes):
            try:
                if hasattr(node, "shutdown_and_checkpoint"):
                    node.shutdown_and_checkpoint()
            except Exception as exc:  # keep shutting the others down
                log.error("shutdown of %s failed: %s", node.get_name(), exc)
        for node in self.nodes:
            self.executor.remove_node(node)
            node.destroy_node()
        self.executor.shutdown()
        if self._owns_context:
            rclpy.try_shutdown(context=self.context)


def _policy_of(weights: tuple[int, str, np.ndarray], cfg: SymphonyConfig) -> ActorPolicy:
    version, layout, data = weights
    actor = actor_from_layout(layout, cfg)
    load_flat_actor(actor, layout, data)
    return ActorPolicy(actor, version=version)


PAPER_STEPS_TO_5000 = 240_000    # S3 on Humanoid, the paper's Table V (docs/algorithm.md#results)
COST_WINDOW_S = 60.0             # the learning steps/s behind the one-line cost estimate are measured this long


class CostLine:
    """After ``COST_WINDOW_S`` of learning: learning steps/s here and what the paper's run would take at that pace
    (one line, once). On Humanoid: the time to S3's 5,000 (Table V, 240k steps)."""

    def __init__(self, env: str, device: str) -> None:
        self.env, self.device = env, device
        self._t0: float | None = None
        self._s0 = 0
        self.said = False

    def sample(self, now: float, stored: int, learning: bool) -> str | None:
        if self.said or not learning:
            return None
        if self._t0 is None:
            self._t0, self._s0 = now, stored
            return None
        if now - self._t0 < COST_WINDOW_S:
            return None
        self.said = True
        sps = (stored - self._s0) / (now - self._t0)
        line = f"this machine ({self.device}): {sps:.1f} learning steps/s"
        if self.env.startswith("Humanoid") and sps > 0:
            hours = PAPER_STEPS_TO_5000 / sps / 3600
            line += (f": the paper's return 5,000 on Humanoid (S3, ~{PAPER_STEPS_TO_5000 // 1000}k steps) would take "
                     f"~{hours:.0f} h here" + ("; to watch it learn within 5 minutes: symphony-ros demo"
                                               if self.device == "cpu" else ""))
        return line


def run_embedded(args, cfg: SymphonyConfig, overrides: dict[str, Any]) -> int:
    """``symphony-ros train`` (no --headless), with the config resolved once by the CLI. Returns the exit code."""
    from ..contract import keep_dds_on_loopback
    keep_dds_on_loopback()   # one process: no need to leave loopback
    try:
        import rclpy  # noqa: F401
        import symphony_ros_interfaces.msg  # noqa: F401
    except ImportError as exc:
        print(f"symphony-ros train: the ROS 2 graph needs rclpy and symphony_ros_interfaces ({exc}); run "
              f"tools/setup.sh, source your ROS 2 workspace, or use --headless")
        return 2
    from ..cli.bags import recorder_parameters
    graph = EmbeddedGraph(config=cfg, preset=args.preset, env=args.env, out_dir=args.out, device=args.device,
                          mode=args.mode, max_steps=args.max_steps, robots=args.robots, seed=args.seed,
                          overrides=overrides, record=args.record, from_bag=getattr(args, "from_bag", None),
                          action_mode=args.action_mode, recorder_parameters=recorder_parameters(args))
    out = Path(args.out)
    evaluator = Evaluator(args.env, cfg, out, seed=args.seed, action_mode=args.action_mode,
                          episode_limit=cfg.episode_limit,   # the graph's sim bridge imposes it too
                          title=f"Symphony {cfg.preset.upper()} on {args.env} (ROS 2 graph)")
    learner = graph.learner.learner
    schedule = learner.agent.schedule
    bar = ProgressReporter(args.max_steps or None, learner.stored, enabled=not args.no_progress)
    cost = CostLine(args.env, str(learner.device))
    stop_at = getattr(args, "stop_at_return", None)
    budget_s = float(getattr(args, "time_budget", 0) or 0)
    import time
    t_start = time.monotonic()

    def evaluate() -> None:
        weights = graph.weights()
        if weights is not None:
            pol = _policy_of(weights, cfg)
            evaluator.evaluate(learner.stored, learner.updates,
                               lambda x: pol.act(x, act_gain=1.0, noise_gain=0.0))

    try:
        with StopFlag() as flag:
            while not flag.stop:
                graph.spin_once(0.1)   # wakes on any event; a long timeout means fewer idle wake-ups
                if schedule.evaluation_due(learner.stored, learner.learning, evaluator.last_step):
                    evaluate()
                    if stop_at is not None and evaluator.last_return >= stop_at:
                        bar.note(f"evaluation return {evaluator.last_return:.1f} reached {stop_at:g}: stopping")
                        break
                said = cost.sample(time.monotonic(), learner.stored, learner.learning)
                if said:
                    bar.note(said)
                if budget_s and time.monotonic() - t_start > budget_s:
                    bar.note(f"time budget of {budget_s:.0f} s used: stopping")
                    break
                lat = [x for a in graph.actors for x in list(a.latencies_ms)[-200:]]
                bar.update(learner.stored, learner.updates, utd=learner.utd, eval=evaluator.last_return,
                           sigma=learner.sigma_mean, beta=learner.beta_mean,
                           cmd_ms=float(np.median(lat)) if lat else float("nan"))
                if args.max_steps and learner.done:
                    break
    finally:
        bar.close()
        graph.shutdown()
    if not flag.stop and schedule.final_evaluation_due(learner.stored, learner.learning, evaluator.last_step):
        evaluate()
    print(f"steps {graph.steps}  transitions stored {learner.stored}  updates {learner.updates}  "
          f"checkpoints in {out / 'checkpoints'}")
    return flag.exit_code
