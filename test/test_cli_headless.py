"""`symphony-ros train --headless` end to end as users run it: outputs, errors, Ctrl-C, --resume, export."""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symphony_ros.core.checkpoint import CheckpointManager, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "hidden_dim=32", "--set", "heads_per_critic=8", "--set", "batch_size=24", "--set", "n_exp=200",
        "--set", "buffer_times=3", "--set", "eval_every=300", "--set", "eval_episodes=2"]


def _cli(*args, timeout: float = 300, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "symphony_ros.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, **kw)


def test_headless_writes_csv_png_checkpoint_and_resumes(tmp_path):
    out = tmp_path / "run"
    r = _cli("train", "--headless", "--env", "InvertedPendulum-v5", "--out", str(out), "--max-steps", "700",
             "--no-progress", *TINY)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((out / "evaluations.csv").open()))
    assert [int(x["step"]) for x in rows] == [299, 599, 700]   # before the 300th and 600th step, and at the end
    assert {"step", "return_mean", "return_std", "episode_length_mean"} <= set(rows[0])
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    path = CheckpointManager(out / "checkpoints").latest()
    payload = load_checkpoint(path, kind="training")
    assert payload["trainer"]["total_steps"] == 700 and payload["agent"]["updates"] == 3 * (700 - 200)
    assert payload["buffer"]["meta"]["filled"] and payload["buffer"]["meta"]["reward_scale"] > 0   # incremental

    r = _cli("train", "--headless", "--env", "InvertedPendulum-v5", "--out", str(out), "--max-steps", "900",
             "--no-progress", "--resume", *TINY)
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stderr
    payload = load_checkpoint(CheckpointManager(out / "checkpoints").latest(), kind="training")
    assert payload["trainer"]["total_steps"] == 900 and payload["agent"]["updates"] == 3 * (900 - 200)

    actor_file = tmp_path / "actor.pt"
    r = _cli("export", str(path), "--out", str(actor_file))
    assert r.returncode == 0 and load_checkpoint(actor_file, kind="actor")["version"] == 3 * (700 - 200)


def test_clear_errors_for_bad_input(tmp_path):
    r = _cli("train", "--headless", "--preset", "s9", "--out", str(tmp_path))
    assert r.returncode == 2 and "unknown preset 's9'" in r.stderr
    r = _cli("train", "--headless", "--set", "gamma=2", "--out", str(tmp_path))
    assert r.returncode == 2 and "'gamma'" in r.stderr and "out of range" in r.stderr
    r = _cli("train", "--headless", "--env", "CartPole-v1", "--out", str(tmp_path), *TINY)
    assert r.returncode == 2 and "continuous" in r.stderr
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt_000000000100.pt").write_bytes(b"not a checkpoint")
    r = _cli("train", "--headless", "--env", "InvertedPendulum-v5", "--out", str(tmp_path), "--resume", *TINY)
    assert r.returncode == 2 and "corrupt" in r.stderr


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "symphony_ros.cli", "train", "--headless", "--env",
                             "InvertedPendulum-v5", "--out", str(out), "--max-steps", "100000", "--no-progress",
                             *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "evaluations.csv").exists():   # wait until it is learning
        time.sleep(0.2)
    assert (out / "evaluations.csv").exists()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: checkpoint saved" in err and "Traceback" not in err
    payload = load_checkpoint(CheckpointManager(out / "checkpoints").latest(), kind="training")
    steps = payload["trainer"]["total_steps"]
    assert 300 <= steps < 100000 and payload["agent"]["updates"] == 3 * (steps - 200)


def test_demo_runs_the_ros_graph_and_ends_with_a_curve_and_a_verdict(tmp_path):
    """`symphony-ros demo` plumbing (a tiny budget: learning itself is the fast learning test's job): the ROS 2
    graph runs, evaluations.csv and learning_curve.png are written, the last line is the verdict."""
    pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
    pytest.importorskip("symphony_ros_interfaces.msg", reason="symphony_ros_interfaces not built")
    out = tmp_path / "demo"
    r = _cli("demo", "--out", str(out), "--minutes", "1", "--no-progress", "--set", "n_exp=200",
             "--set", "eval_every=200", "--set", "eval_episodes=1", "--set", "hidden_dim=16",
             "--set", "heads_per_critic=4", "--set", "batch_size=12", timeout=400)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert lines[0].startswith("symphony-ros demo: InvertedPendulum-v5") and lines[-1].startswith("verdict: ")
    assert any(v in lines[-1] for v in ("LEARNED", "LEARNING", "NOT LEARNED YET"))
    assert (out / "evaluations.csv").is_file() and (out / "learning_curve.png").is_file()
