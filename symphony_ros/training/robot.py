"""``symphony-ros train --robot <description> --task <task>``: the robot graph (:func:`symphony_ros.graph.
build_robot_graph`) without ``ros2 launch``: the robot side ([simulated driver] + task + actor) in this process, the
learner in a child process (``python -m symphony_ros.nodes.learner``, the same node launch starts), over real DDS.

Why two processes: the robot side is real time, and a learner saturating the CPU in the same Python process takes
the GIL from it (measured: 31% of the simulated driver's 50 Hz periods late with the learner in-process, against a
handful in separate processes); on a robot the learner runs in its own process or on another machine anyway.

There is no noise-free evaluation on a robot: the progress bar and ``episodes.csv`` / ``episode_returns.png`` show
the TRAINING episodes' returns (what the robot did, noise included), written after every episode.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.checkpoint import atomic_write_bytes
from ..core.config import SymphonyConfig
from .session import StopFlag

EPISODE_FIELDS = ("episode", "return", "steps_stored", "updates", "wall_time_s")


PLOT_EVERY_S = 60.0      # the PNG is redrawn at most this often (drawing takes ~0.1 s: not on every episode)


def write_episodes(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    """episodes.csv (atomically): one row per training episode."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EPISODE_FIELDS)
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(out / "episodes.csv", buf.getvalue().encode())


def plot_episodes(out: Path, rows: Sequence[dict[str, Any]], title: str) -> None:
    """episode_returns.png: return per training episode and its 10-episode running mean."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if rows:
        r = np.array([row["return"] for row in rows], np.float64)
        x = np.array([row["steps_stored"] for row in rows])
        k = min(10, len(r))
        ax.plot(x, r, ".", ms=3, alpha=0.5, label="training episode return")
        ax.plot(x[k - 1:], np.convolve(r, np.ones(k) / k, mode="valid"), label=f"{k}-episode mean")
        ax.legend(loc="upper left")
    ax.set_xlabel("transitions stored")
    ax.set_ylabel("return")
    ax.set_title(title)
    fig.tight_layout()
    buf2 = io.BytesIO()
    fig.savefig(buf2, format="png")
    plt.close(fig)
    atomic_write_bytes(out / "episode_returns.png", buf2.getvalue())


def run_robot(args, cfg: SymphonyConfig, overrides: dict[str, Any]) -> int:
    """The embedded robot graph until Ctrl-C or ``--max-steps`` stored transitions. Returns the exit code."""
    import time

    from ..contract import keep_dds_on_loopback
    keep_dds_on_loopback()
    try:
        import rclpy  # noqa: F401
        import symphony_ros_interfaces.msg  # noqa: F401
    except ImportError as exc:
        print(f"symphony-ros train --robot: the robot graph needs rclpy and symphony_ros_interfaces ({exc}); run "
              "tools/setup.sh or source your ROS 2 workspace")
        return 2
    import signal
    import subprocess

    from symphony_ros_interfaces.msg import LearnerStatus

    from .. import contract as C
    from ..graph import build_robot_graph
    from ..nodes.common import qos_profile
    from .embedded import EmbeddedGraph
    from .progress import ProgressReporter
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = build_robot_graph(description=args.robot, task=args.task, task_params=args.task_params or "",
                              episode_time_s=args.episode_time, preset=args.preset, config=cfg, device=args.device,
                              sim=args.sim, checkpoint_dir=str(out / "checkpoints"), max_steps=args.max_steps,
                              seed=args.seed, overrides=overrides, soft_start_s=args.soft_start,
                              safe_ramp_s=args.safe_ramp, recovery_delay_s=args.recovery_delay)
    learner_spec = next(s for s in specs if s.executable == "learner")
    robot_specs = [s for s in specs if s.executable != "learner"]
    import torch
    torch.set_num_threads(1)     # the robot side does one small forward per step: one thread, no spin-waiting
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # torch intra-op threads of the learner process: all cores but one (the robot side's), unless given. More threads
    # than free cores make OpenMP spin-wait against the real-time side (measured: UTD 0.16 instead of 2 on 2 cores)
    threads = args.learner_threads or max(1, (os.cpu_count() or 2) - 1)
    env["OMP_NUM_THREADS"] = str(threads)
    learner_proc = subprocess.Popen(learner_spec.command(), env=env)
    graph = None
    rows: list[dict[str, Any]] = []
    title = f"Symphony {cfg.preset.upper()} on robot {args.robot}, task {args.task} (training episodes)"
    status: list[Any] = [None]
    flag = StopFlag()
    bar = ProgressReporter(args.max_steps or None, 0, enabled=not args.no_progress)
    try:
        graph = EmbeddedGraph(config=cfg, out_dir=out, specs=robot_specs)
        task = graph.tasks[0]
        probe = graph.nodes[0].create_subscription(LearnerStatus, C.LEARNER_STATUS.name,
                                                   lambda m: status.__setitem__(0, m),
                                                   qos_profile(C.LEARNER_STATUS))
        t0 = plotted = time.perf_counter()
        with flag:
            while not flag.stop:
                graph.spin_once(0.05)
                if learner_proc.poll() is not None:
                    print(f"symphony-ros train --robot: the learner process exited ({learner_proc.returncode})")
                    break
                st = status[0]
                stored = int(st.transitions_stored) if st is not None else 0
                updates = int(st.updates) if st is not None else 0
                returns = task.engine.n.returns if task.engine else []
                while len(rows) < len(returns):
                    rows.append(dict(episode=len(rows), **{"return": round(returns[len(rows)], 4)},
                                     steps_stored=stored, updates=updates,
                                     wall_time_s=round(time.perf_counter() - t0, 2)))
                    write_episodes(out, rows)
                if rows and time.perf_counter() - plotted > PLOT_EVERY_S:
                    plot_episodes(out, rows, title)
                    plotted = time.perf_counter()
                last = float(np.mean([r["return"] for r in rows[-10:]])) if rows else float("nan")
                lat = [x for a in graph.actors for x in list(a.latencies_ms)[-200:]]
                bar.update(stored, updates, episodes=len(rows), ret10=last,
                           utd=float(st.utd) if st is not None else float("nan"),
                           cmd_ms=float(np.median(lat)) if lat else float("nan"))
                if args.max_steps and stored >= args.max_steps:
                    break
        graph.nodes[0].destroy_subscription(probe)
    finally:
        bar.close()
        if graph is not None:
            graph.shutdown()                     # the actor sends its safe command
            if rows:
                plot_episodes(out, rows, title)
        if learner_proc.poll() is None:          # the learner writes its checkpoint on SIGINT
            learner_proc.send_signal(signal.SIGINT)
            try:
                learner_proc.wait(timeout=learner_spec.stop_timeout_s)
            except subprocess.TimeoutExpired:
                learner_proc.kill()
    st = status[0]
    print(f"episodes {len(rows)}  transitions stored {st.transitions_stored if st else 0}  updates "
          f"{st.updates if st else 0}  outputs: {out / 'episodes.csv'}, {out / 'episode_returns.png'}, checkpoints "
          f"in {out / 'checkpoints'}")
    return flag.exit_code
