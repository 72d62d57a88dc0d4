"""The learning campaign's seams (bench/learning/): the headless trainer's time limit, the command-telemetry columns
of evaluations.csv, the action-rate term, and the SAC peer evaluating by the same protocol at the same steps."""
import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from symphony_ros.core.config import load_preset
from symphony_ros.core.schedule import TrainingSchedule
from symphony_ros.envs.gym_env import ActionRatePenalty, make_env
from symphony_ros.training.evaluation import EVAL_FIELDS, read_evaluations_csv
from symphony_ros.training.headless import HeadlessTrainer

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(hidden_dim=32, heads_per_critic=8, batch_size=24, n_exp=100, buffer_times=3, eval_every=150,
            eval_episodes=1, updates_per_step=1)
OLD_FIELDS = ["step", "train_step", "updates", "return_mean", "return_std", "episode_length_mean", "episodes",
              "wall_time_s"]


def test_trainer_respects_the_env_time_limit_unless_the_paper_limit_is_asked(tmp_path):
    cfg = load_preset("s3", dict(TINY, n_exp=10_000, episode_limit=120, zero_policy_window=10))
    own = HeadlessTrainer("Reacher-v5", cfg, tmp_path / "own", max_steps=130, device="cpu", progress=False,
                          checkpoint_at_exit=False)
    assert own.episode_limit == 50 and own.evaluator.env.spec.max_episode_steps == 50
    assert own.run().episodes == 3                      # 50 + 50 + 30 steps (Reacher never terminates)
    paper = HeadlessTrainer("Reacher-v5", cfg, tmp_path / "paper", max_steps=130, device="cpu", progress=False,
                            checkpoint_at_exit=False, paper_episode_limit=True)
    assert paper.episode_limit == 120 and paper.evaluator.env.spec.max_episode_steps == 120
    assert paper.run().episodes == 2                    # 120 + 10


def test_zero_policy_window_counts_back_from_the_limit_that_applies():
    sched = TrainingSchedule(load_preset("s3", dict(episode_limit=1000, zero_policy_window=50)))
    gains = dict(learning=True, simulation=True, deterministic=False)
    assert sched.execution_gains(948, **gains) == (1.0, 1.0) and sched.execution_gains(949, **gains) == (0.0, 1.0)
    assert sched.execution_gains(48, **gains, episode_limit=100) == (1.0, 1.0)
    assert sched.execution_gains(49, **gains, episode_limit=100) == (0.0, 1.0)
    # a window as long as the episode (Reacher: 50 steps) would leave no policy step: it does not apply
    assert all(sched.execution_gains(t, **gains, episode_limit=50) == (1.0, 1.0) for t in range(50))


def test_evaluations_csv_keeps_old_columns_first_and_adds_command_telemetry(tmp_path):
    cfg = load_preset("s3", TINY)
    tr = HeadlessTrainer("InvertedPendulum-v5", cfg, tmp_path, max_steps=160, device="cpu", progress=False,
                         action_mode="rescale", checkpoint_at_exit=False)
    tr.run()
    with open(tmp_path / "evaluations.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:len(OLD_FIELDS)] == OLD_FIELDS and tuple(header) == EVAL_FIELDS
    rows = read_evaluations_csv(tmp_path / "evaluations.csv")
    assert [int(r["step"]) for r in rows] == [149, 160]
    first = rows[0]
    for k in ("train_saturation", "train_abs_delta", "train_hf_share", "train_reach", "train_sign_flips",
              "eval_saturation", "eval_reach", "sigma_mean", "beta_mean"):
        assert math.isfinite(first[k]), k
    # training commands (rescale: a = tanh(.) mapped onto [-3, 3]) stay inside the bound; noise makes them move
    assert 0 < first["train_reach"] <= 1.0 and first["train_abs_delta"] > 0
    assert 0 < first["sigma_mean"] < 1 and 0 < first["beta_mean"] < 1
    # the window restarts at each evaluation: the 11 training steps after step 149 are a new window
    assert math.isfinite(rows[1]["train_reach"])


def test_read_evaluations_csv_reads_an_old_file_and_blank_cells(tmp_path):
    p = tmp_path / "old.csv"
    p.write_text(",".join(OLD_FIELDS + ["sigma_mean"]) + "\n2499,0,0,10.5,1.0,30.0,25,12.0,\n")
    row = read_evaluations_csv(p)[0]
    assert row["return_mean"] == 10.5 and math.isnan(row["sigma_mean"])


def test_action_rate_penalty_is_the_mean_squared_share_of_the_range_per_step():
    env = ActionRatePenalty(make_env("InvertedPendulum-v5", seed=0), 0.5)    # bounds [-3, 3]
    env.reset(seed=0)
    r0, r1, r2 = (env.step(np.array([c]))[1] for c in (0.0, 3.0, -3.0))
    assert r0 == pytest.approx(1.0)                       # the first command of an episode costs nothing
    assert r1 == pytest.approx(1.0 - 0.5 * 0.25)          # half the range crossed
    assert r2 == pytest.approx(1.0 - 0.5 * 1.0)           # the whole range crossed
    env.reset(seed=1)
    assert env.step(np.array([3.0]))[1] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ActionRatePenalty(make_env("InvertedPendulum-v5"), -1.0)


def test_sac_peer_evaluates_by_the_same_protocol_at_the_same_steps(tmp_path):
    pytest.importorskip("stable_baselines3", reason="stable-baselines3 not installed (pip extra 'bench')")
    sys.path.insert(0, str(ROOT / "bench" / "learning"))
    from sac_peer import train_sac
    cfg = load_preset("s3", dict(TINY, n_exp=200, eval_every=100))
    train_sac("InvertedPendulum-v5", cfg, tmp_path / "sac", seed=0, max_steps=320)
    tr = HeadlessTrainer("InvertedPendulum-v5", cfg, tmp_path / "sym", max_steps=320, device="cpu", progress=False,
                         action_mode="rescale", checkpoint_at_exit=False)
    tr.run()
    sac = read_evaluations_csv(tmp_path / "sac" / "evaluations.csv")
    sym = read_evaluations_csv(tmp_path / "sym" / "evaluations.csv")
    assert [r["step"] for r in sac] == [r["step"] for r in sym] == [200, 299, 320]
    assert [r["episodes"] for r in sac] == [r["episodes"] for r in sym]
    with open(tmp_path / "sac" / "evaluations.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == EVAL_FIELDS
    assert all(math.isfinite(r["train_abs_delta"]) and math.isfinite(r["eval_reach"]) for r in sac)
