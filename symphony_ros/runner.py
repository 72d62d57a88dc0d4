"""Embedded runner: ``symphony-ros train`` runs the training graph (sim bridge(s), actor(s), learner, optional
recorder) in ONE process on one executor, over real DDS, with no launch_ros and no ROS install beyond the pip extra.

It builds exactly the nodes ``launch/train_sim.launch.py`` starts (both call :func:`symphony_ros.graph.build_graph`),
shares the learner's weights with the in-process actors directly (the ``policy_weights`` topic still serves any other
actor), shows a progress bar, evaluates the current actor noise-free every ``eval_every`` stored transitions on a
separate environment (the lockstep graph waits meanwhile), and writes at exit a checkpoint, ``evaluations.csv`` and
``learning_curve.png``.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .core.config import SymphonyConfig, parse_overrides
from .envs.gym_env import ActionMapping, evaluate, make_env, policy_input
from .graph import build_graph
from .reporting import plot_learning_curve, write_evaluations_csv
from .trainer import _StopFlag

log = logging.getLogger(__name__)


def _node_class(executable: str):
    if executable == "sim_bridge":
        from .nodes.sim_bridge import SimBridgeNode
        return SimBridgeNode
    if executable == "actor":
        from .nodes.actor import ActorNode
        return ActorNode
    if executable == "learner":
        from .nodes.learner import LearnerNode
        return LearnerNode
    if executable == "recorder":
        from .nodes.recorder import RecorderNode
        return RecorderNode
    raise ValueError(f"unknown node executable '{executable}'")


class EmbeddedGraph:
    """The graph's nodes in one process. ``start()`` creates them, ``spin_once()`` advances the executor."""

    def __init__(self, *, preset: str, env: str, out_dir: str | Path, device: str = "auto", mode: str = "lockstep",
                 max_steps: int = 0, robots: int = 1, seed: int = 0, overrides: dict[str, Any] | None = None,
                 record: bool = False, from_bag: list[str] | None = None, context=None) -> None:
        import rclpy
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.specs = build_graph(preset=preset, env=env, device=device, mode=mode, max_steps=max_steps,
                                 robots=robots, checkpoint_dir=str(self.out / "checkpoints"), record=record,
                                 bag_dir=str(self.out / "bag"), seed=seed, overrides=overrides,
                                 from_bag=from_bag)
        self.context = context
        self._owns_context = context is None
        if context is None:
            self.context = rclpy.context.Context()
            rclpy.init(context=self.context)
        from rclpy.executors import SingleThreadedExecutor
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes = []
        for s in self.specs:
            node = _node_class(s.executable)(cli_args=s.ros_args(), namespace=s.namespace or None,
                                             context=self.context)
            self.nodes.append(node)
            self.executor.add_node(node)
        self.bridges = [n for s, n in zip(self.specs, self.nodes) if s.executable == "sim_bridge"]
        self.actors = [n for s, n in zip(self.specs, self.nodes) if s.executable == "actor"]
        self.learner = next(n for s, n in zip(self.specs, self.nodes) if s.executable == "learner")
        self.recorder = next((n for s, n in zip(self.specs, self.nodes) if s.executable == "recorder"), None)
        self._weights_lock = threading.Lock()
        self.latest_weights: tuple[int, str, np.ndarray] | None = None

        def share(version: int, layout: str, data: np.ndarray) -> None:
            with self._weights_lock:
                self.latest_weights = (version, layout, data)
            for actor in self.actors:
                actor.set_weights(version, layout, data)
        self.learner.set_weights_listener(share)

    def spin_once(self, timeout_s: float = 0.05) -> None:
        self.executor.spin_once(timeout_sec=timeout_s)

    @property
    def steps(self) -> int:
        return sum(b.steps for b in self.bridges)

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


def run_embedded(args, cfg: SymphonyConfig) -> int:
    """``symphony-ros train`` (no --headless). Returns the process exit code."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")   # one process: no need to leave loopback
    try:
        import rclpy  # noqa: F401
        import symphony_ros_interfaces.msg  # noqa: F401
    except ImportError as exc:
        print(f"symphony-ros train: the ROS 2 graph needs rclpy and symphony_ros_interfaces ({exc}); run "
              f"tools/setup.sh, source your ROS 2 workspace, or use --headless")
        return 2
    overrides = parse_overrides(args.overrides)
    graph = EmbeddedGraph(preset=args.preset, env=args.env, out_dir=args.out, device=args.device, mode=args.mode,
                          max_steps=args.max_steps, robots=args.robots, seed=args.seed, overrides=overrides,
                          record=args.record, from_bag=getattr(args, "from_bag", None))
    evaluator = _Evaluator(args.env, cfg, Path(args.out), seed=args.seed)
    learner = graph.learner.learner
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=args.max_steps or None, unit="step", dynamic_ncols=True, smoothing=0.1)
    last_eval, t0, last_t, last_updates, next_eval = float("nan"), time.perf_counter(), 0.0, 0, cfg.eval_every
    interrupted = False
    try:
        with _StopFlag() as flag:
            while not flag.stop:
                graph.spin_once(0.1)   # wakes on any event; a long timeout means fewer idle wake-ups
                stored = learner.stored
                if learner.learning and stored >= next_eval and cfg.eval_episodes > 0 and graph.latest_weights:
                    with graph._weights_lock:
                        weights = graph.latest_weights
                    last_eval = evaluator(stored, learner.updates, weights)["return_mean"]
                    next_eval = (stored // cfg.eval_every + 1) * cfg.eval_every
                now = time.perf_counter()
                if bar is not None and now - last_t > 0.5:
                    dt = now - last_t if last_t else now - t0
                    ups = (learner.updates - last_updates) / max(dt, 1e-9)
                    lat = [x for a in graph.actors for x in list(a.latencies_ms)[-200:]]
                    bar.set_postfix(dict(ups=f"{ups:.0f}", utd=f"{learner.utd:.2f}", eval=f"{last_eval:.1f}",
                                         sigma=f"{learner.sigma_mean:.3f}", beta=f"{learner.beta_mean:.3f}",
                                         cmd_ms=f"{np.median(lat):.1f}" if lat else "-"), refresh=False)
                    bar.update(graph.steps - bar.n)
                    last_t, last_updates = now, learner.updates
                if args.max_steps and learner.done:
                    break
            interrupted = flag.stop
    finally:
        if bar is not None:
            bar.close()
        graph.shutdown()
    if graph.latest_weights is not None and cfg.eval_episodes > 0 and not interrupted and learner.learning \
            and (not evaluator.rows or evaluator.rows[-1]["step"] != learner.stored):
        evaluator(learner.stored, learner.updates, graph.latest_weights)
    print(f"steps {graph.steps}  transitions stored {learner.stored}  updates {learner.updates}  "
          f"checkpoints in {Path(args.out) / 'checkpoints'}")
    return 130 if interrupted else 0


class _Evaluator:
    """Noise-free evaluation of a weight snapshot on its own environment; keeps evaluations.csv and the PNG."""

    def __init__(self, env_id: str, cfg: SymphonyConfig, out: Path, seed: int = 0) -> None:
        from .core.policy import build_actor
        self.env = make_env(env_id, episode_limit=cfg.episode_limit, seed=seed + 10_000)
        self.mapping = ActionMapping(self.env.action_space.low, self.env.action_space.high, "paper")
        self.cfg, self.out, self.seed, self.env_id = cfg, out, seed, env_id
        self.rows: list[dict[str, Any]] = []
        self._build = build_actor
        self.t0 = time.perf_counter()

    def __call__(self, step: int, updates: int, weights: tuple[int, str, np.ndarray]) -> dict[str, Any]:
        import json

        import torch

        from .core.policy import load_flat_actor
        version, layout, data = weights
        lay = json.loads(layout)
        actor = self._build(lay["obs_dim"], lay["act_dim"], self.cfg)
        load_flat_actor(actor, layout, data)

        def act_fn(obs, prev):
            with torch.no_grad():
                x = torch.as_tensor(policy_input(obs, prev)).reshape(1, -1)
                return actor(x, act=1.0, noise=0.0)[0][0].numpy()

        res = evaluate(self.env, act_fn, self.mapping, self.cfg.eval_episodes,
                       prev_action=self.cfg.prev_action_in_obs, seed=self.seed + 20_000 + step)
        row = dict(step=step, train_step=step, updates=updates, return_mean=res.return_mean,
                   return_std=res.return_std, episode_length_mean=res.episode_length_mean, episodes=res.episodes,
                   wall_time_s=round(time.perf_counter() - self.t0, 2))
        self.rows.append(row)
        write_evaluations_csv(self.out / "evaluations.csv", self.rows)
        plot_learning_curve(self.out / "learning_curve.png", self.rows,
                            f"Symphony {self.cfg.preset.upper()} on {self.env_id} (ROS 2 graph)")
        return row
