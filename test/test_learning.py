"""One short learning test: the whole headless loop learns InvertedPendulum-v5 (real MuJoCo), and the same run with
updates disabled does not (negative control).

Numbers (2-core CPU, torch 2.13, seed 1): the scaled-down preset below first evaluates at 1000/1000 after ~6,000
environment steps (≈ 1 min of CPU); an untrained actor evaluates at ~20-60. Threshold: best noise-free evaluation
return ≥ 500 within 9,000 steps; the control (G = 0) must stay below 150.
"""
import pytest

from symphony_ros.core.config import load_preset
from symphony_ros.training.headless import HeadlessTrainer

SMALL = dict(hidden_dim=64, heads_per_critic=16, batch_size=48, lr=1e-3, n_exp=1000, buffer_times=5,
             eval_every=1000, eval_episodes=5)
THRESHOLD = 500.0
MAX_STEPS = 9000


def _run(tmp_path, **extra):
    cfg = load_preset("s3", dict(SMALL, **extra))
    trainer = HeadlessTrainer("InvertedPendulum-v5", cfg, tmp_path, max_steps=MAX_STEPS, device="cpu", seed=1,
                              action_mode="rescale", progress=False, stop_at_return=900.0)
    return trainer.run()


@pytest.mark.timeout(900)
def test_symphony_learns_inverted_pendulum(tmp_path):
    res = _run(tmp_path / "learn")
    best = max(r["return_mean"] for r in res.evaluations)
    print("evaluations:", [(r["step"], round(r["return_mean"], 1)) for r in res.evaluations])
    assert best >= THRESHOLD, f"best evaluation {best:.1f} < {THRESHOLD} after {res.total_steps} steps"
    assert res.updates == 3 * (res.total_steps - SMALL["n_exp"])            # G = 3 updates per learning step
    assert (tmp_path / "learn" / "evaluations.csv").is_file() and (tmp_path / "learn" / "learning_curve.png").is_file()


@pytest.mark.timeout(600)
def test_negative_control_without_updates_stays_below_threshold(tmp_path):
    res = _run(tmp_path / "control", updates_per_step=0)
    best = max(r["return_mean"] for r in res.evaluations)
    print("evaluations:", [(r["step"], round(r["return_mean"], 1)) for r in res.evaluations])
    assert res.updates == 0 and res.total_steps == MAX_STEPS
    assert best < 150.0, f"an actor that never updates reached {best:.1f}"
